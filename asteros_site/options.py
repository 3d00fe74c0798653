"""The AsterOS options, read from the environment and validated once at start-up.

Every option of the Go seed's ``Options`` struct is an ``ASTEROS_*`` variable (see the table
in README.md). ``load_options`` is a plain function of a mapping so that tests can check each
bad value without touching ``os.environ``; a bad value raises ``ImproperlyConfigured`` naming
the variable and what it accepts.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from cosmos.secrets import SECRET_ENV_OPTION, SecretReferenceError, parse_secret_env

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Pages served from this machine: http(s)://localhost, 127.0.0.0/8 or [::1], any port.
LOOPBACK_ORIGIN_REGEX = r"^https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$"


@dataclass(frozen=True)
class Options:
    name: str = "AsterOS"
    port: int = 8080
    api_prefix: str = "/api"
    auto_discover: bool = True
    enable_cors: bool = True
    enable_auth: bool = False
    enable_metrics: bool = True
    enable_health: bool = True
    enable_logging: bool = True
    enable_a2a: bool = True
    enable_agui: bool = True
    enable_mcp: bool = True
    # The OpenAI-compatible door (/v1/models, /v1/chat/completions, /v1/responses).
    enable_openai: bool = True
    openai_prefix: str = "/v1"
    # LangGraph's Agent Protocol door (interfaces/agent_protocol), mounted under this prefix.
    enable_agent_protocol: bool = True
    agent_protocol_prefix: str = "/agent-protocol"
    # Schedules fire from this process's embedded beat (embedded mode); distributed mode runs
    # ``celery -A asteros_site beat`` instead. Off: no process fires ticks.
    enable_scheduler: bool = True
    # The resource the domain-root A2A card (/.well-known/agent-card.json) describes:
    # "agent:<id>", "star:<id>", "workflow:<id>" or a bare agent id; unset, the first agent by id.
    a2a_default: str | None = None
    # How long a webhook or A2A push delivery is retried before it is marked failed.
    webhook_retry_seconds: int = 86_400
    # The wait after a delivery's first failed attempt; each later wait doubles (capped at an
    # hour), with jitter. Tests and benchmarks shorten it.
    webhook_first_retry_seconds: float = 5.0
    api_key: str | None = None
    log_level: str = "info"
    max_agents: int = 50
    metrics_public: bool = False
    cors_allowed_origins: tuple[str, ...] = ()
    public_url: str | None = None
    interfaces: tuple[str, ...] = field(default_factory=tuple)
    a2a_remote_allowlist: tuple[str, ...] = ()
    outbound_allowlist: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()
    # The stdio MCP servers an operator allows, by name: ((name, argv), ...).
    mcp_stdio_commands: tuple[tuple[str, tuple[str, ...]], ...] = ()
    database_url: str | None = None
    redis_url: str | None = None
    debug: bool = False
    secret_key: str | None = None
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    max_body_bytes: int = 1_048_576
    lease_seconds: int = 30
    max_attempts: int = 3
    worker_concurrency: int = 300
    # Distributed mode: the API process executes the runs it accepts (the fast path), up to
    # worker_concurrency; the workers take the rest and every run a process lost.
    api_runs: bool = False
    db_threads: int = 4
    db_pool_size: int = 20
    http_threads: int = 8
    header_timeout: int = 20
    body_timeout: int = 30

    @property
    def distributed(self) -> bool:
        return bool(self.redis_url)

    @property
    def cors_policy(self) -> str:
        """Which origins CORS allows: ``off``; ``listed`` (ASTEROS_CORS_ALLOWED_ORIGINS); ``loopback``
        (auth off and no list: no other web page may drive a local server); ``any`` (auth on, no list)."""
        if not self.enable_cors:
            return "off"
        if self.cors_allowed_origins:
            return "listed"
        return "any" if self.enable_auth else "loopback"

    @property
    def mode(self) -> str:
        return "distributed" if self.distributed else "embedded"


def _door_prefix(env: Mapping[str, str], name: str, default: str, api_prefix: str, examples: str) -> str:
    """The URL prefix of a door other than REST: a path of its own, apart from the API's."""
    prefix = env.get(name, default).strip()
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix) or prefix.strip("/") == api_prefix.strip("/"):
        raise ImproperlyConfigured(
            f"{name}={prefix!r} must start with '/', not end with one, hold only letters, digits and "
            f". _ ~ - between slashes, and differ from ASTEROS_API_PREFIX, e.g. {examples}."
        )
    return prefix


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true/false, 1/0, yes/no or on/off.")


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a whole number; use an integer from {low} to {high}."
        ) from None
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r} is out of range; use an integer from {low} to {high}.")
    return value


A2A_DEFAULT = re.compile(r"^((agent|star|workflow):)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a number; use a number of seconds from {low:g} to {high:g}."
        ) from None
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r} is out of range; use a number of seconds from {low:g} to {high:g}.")
    return value


def _a2a_default(env: Mapping[str, str]) -> str | None:
    raw = (env.get("ASTEROS_A2A_DEFAULT") or "").strip()
    if not raw:
        return None
    if not A2A_DEFAULT.match(raw):
        raise ImproperlyConfigured(
            f"ASTEROS_A2A_DEFAULT={raw!r} is not a resource; use an agent id, "
            "or agent:<id>, star:<id> or workflow:<id>."
        )
    return raw


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_HOST_ENTRY = re.compile(r"^((\*\.)?[a-z0-9_.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$")


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma list of ``host``, ``host:port`` or ``*.domain`` entries, lower-cased."""
    hosts = tuple(entry.lower() for entry in _list(env, name))
    for entry in hosts:
        tail = entry.rpartition("]")[2] if entry.startswith("[") else entry
        port = tail.rpartition(":")[2] if ":" in tail else ""
        if not _HOST_ENTRY.match(entry) or (port and not 1 <= int(port) <= 65535):
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not a host entry; use host, host:port or *.domain, comma-separated "
                "(no scheme, no path)."
            )
    return hosts


# The bundled offline MCP server of the demo (asteros_site/demo_mcp.py), allowed unless the
# operator sets ASTEROS_MCP_STDIO_COMMANDS (an empty value allows none).
DEMO_STDIO_COMMAND = ("demo", (sys.executable, "-m", "asteros_site.demo_mcp"))
_COMMAND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _stdio_commands(env: Mapping[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``name=command line; name=command line``: the only commands a stdio MCP server may run."""
    name = "ASTEROS_MCP_STDIO_COMMANDS"
    raw = env.get(name)
    if raw is None:
        return (DEMO_STDIO_COMMAND,)
    commands: dict[str, tuple[str, ...]] = {}
    for entry in (part.strip() for part in raw.split(";")):
        if not entry:
            continue
        label, _, line = entry.partition("=")
        label = label.strip()
        try:
            argv = tuple(shlex.split(line))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {entry!r}: {exc}") from None
        if not _COMMAND_NAME.match(label) or not argv:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not name=command; use e.g. files=npx -y @modelcontextprotocol/server-filesystem "
                "/srv/docs, entries separated by ';'."
            )
        commands[label] = argv
    return tuple(commands.items())


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with one of {', '.join(s + '://' for s in schemes)}."
        )
    return raw


MODES = ("embedded", "distributed")


def _check_mode(env: Mapping[str, str], *, distributed: bool) -> None:
    """``ASTEROS_MODE`` (optional) states the mode a deploy expects; DATABASE_URL and REDIS_URL
    choose it. A deploy that says ``distributed`` but lost ``REDIS_URL`` stops instead of
    quietly serving from a local embedded worker."""
    raw = env.get("ASTEROS_MODE")
    if raw is None or not raw.strip():
        return
    mode = raw.strip().lower()
    if mode not in MODES:
        raise ImproperlyConfigured(
            f"ASTEROS_MODE={raw!r} is not a mode; use embedded or distributed (or leave it unset)."
        )
    if mode == "distributed" and not distributed:
        raise ImproperlyConfigured("ASTEROS_MODE=distributed needs DATABASE_URL (PostgreSQL) and REDIS_URL.")
    if mode == "embedded" and distributed:
        raise ImproperlyConfigured("ASTEROS_MODE=embedded but REDIS_URL is set; unset REDIS_URL or say distributed.")


def require_secret_key(options: Options) -> None:
    """Refuse to serve without a real secret when DEBUG is off (no silent default secret).

    Called by every serving entry point (asgi.py, wsgi.py). Commands that sign nothing
    (``migrate``, ``makemigrations``, ``check``, a Celery worker) run without one; anything
    that does sign (sessions, CSRF) meets Django's own refusal of an empty SECRET_KEY.
    """
    if not options.debug and not options.secret_key:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off; `make run` sets DEBUG=1 for local use, "
            "production must provide its own key."
        )


def load_options(env: Mapping[str, str]) -> Options:
    """Read and validate every option; raise ImproperlyConfigured on the first bad one."""
    name = (env.get("ASTEROS_NAME") or "AsterOS").strip()
    if not name or len(name) > 100:
        raise ImproperlyConfigured("ASTEROS_NAME must be a non-empty name of at most 100 characters.")

    api_prefix = env.get("ASTEROS_API_PREFIX", "/api").strip()
    if not api_prefix.startswith("/") or api_prefix.endswith("/") or " " in api_prefix:
        raise ImproperlyConfigured(
            f"ASTEROS_API_PREFIX={api_prefix!r} must start with '/' and not end with one, e.g. /api or /v1/api."
        )

    openai_prefix = _door_prefix(env, "ASTEROS_OPENAI_PREFIX", "/v1", api_prefix, "/v1 or /openai/v1")
    agent_protocol_prefix = _door_prefix(
        env, "ASTEROS_AGENT_PROTOCOL_PREFIX", "/agent-protocol", api_prefix, "/agent-protocol or /langgraph"
    )
    if openai_prefix.strip("/") == agent_protocol_prefix.strip("/"):
        raise ImproperlyConfigured(
            f"ASTEROS_OPENAI_PREFIX and ASTEROS_AGENT_PROTOCOL_PREFIX are both {openai_prefix!r}: "
            "give each door its own."
        )

    log_level = env.get("ASTEROS_LOG_LEVEL", "info").strip().lower()
    if log_level not in LOG_LEVELS:
        raise ImproperlyConfigured(
            f"ASTEROS_LOG_LEVEL={log_level!r} is not a log level; use one of {', '.join(LOG_LEVELS)}."
        )

    api_key = env.get("ASTEROS_API_KEY") or None
    enable_auth = _bool(env, "ASTEROS_ENABLE_AUTH", False)
    if enable_auth and not api_key:
        raise ImproperlyConfigured(
            "ASTEROS_ENABLE_AUTH is on but ASTEROS_API_KEY is not set; set a key (16+ characters) or turn auth off."
        )
    if api_key is not None and len(api_key) < 16:
        raise ImproperlyConfigured("ASTEROS_API_KEY must be at least 16 characters long.")

    debug = _bool(env, "DEBUG", False)
    secret_key = env.get("SECRET_KEY") or None

    database_url = _url(env, "DATABASE_URL", ("postgres", "postgresql", "sqlite", "pgsql"))
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss", "unix"))
    if redis_url and not database_url:
        raise ImproperlyConfigured(
            "REDIS_URL is set but DATABASE_URL is not; distributed mode needs a shared database (PostgreSQL)."
        )

    _check_mode(env, distributed=bool(redis_url))

    lease_seconds = _int(env, "ASTEROS_LEASE_SECONDS", 30, low=2, high=3600)
    try:
        secret_env = parse_secret_env(env.get(SECRET_ENV_OPTION))
    except SecretReferenceError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    a2a_remote_allowlist = _hosts(env, "ASTEROS_A2A_REMOTE_ALLOWLIST")
    # The old A2A allowlist is still read: it folds into the one outbound allowlist.
    outbound_allowlist = tuple(dict.fromkeys((*_hosts(env, "ASTEROS_OUTBOUND_ALLOWLIST"), *a2a_remote_allowlist)))
    return Options(
        name=name,
        port=_int(env, "ASTEROS_PORT", 8080, low=1, high=65535),
        api_prefix=api_prefix,
        auto_discover=_bool(env, "ASTEROS_AUTO_DISCOVER", True),
        enable_cors=_bool(env, "ASTEROS_ENABLE_CORS", True),
        enable_auth=enable_auth,
        enable_metrics=_bool(env, "ASTEROS_ENABLE_METRICS", True),
        enable_health=_bool(env, "ASTEROS_ENABLE_HEALTH", True),
        enable_logging=_bool(env, "ASTEROS_ENABLE_LOGGING", True),
        enable_a2a=_bool(env, "ASTEROS_ENABLE_A2A", True),
        enable_agui=_bool(env, "ASTEROS_ENABLE_AGUI", True),
        enable_mcp=_bool(env, "ASTEROS_ENABLE_MCP", True),
        enable_openai=_bool(env, "ASTEROS_ENABLE_OPENAI", True),
        openai_prefix=openai_prefix,
        enable_agent_protocol=_bool(env, "ASTEROS_ENABLE_AGENT_PROTOCOL", True),
        agent_protocol_prefix=agent_protocol_prefix,
        enable_scheduler=_bool(env, "ASTEROS_ENABLE_SCHEDULER", True),
        a2a_default=_a2a_default(env),
        webhook_retry_seconds=_int(env, "ASTEROS_WEBHOOK_RETRY_SECONDS", 86_400, low=1, high=30 * 86_400),
        webhook_first_retry_seconds=_float(env, "ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS", 5.0, low=0.05, high=3600.0),
        api_key=api_key,
        log_level=log_level,
        max_agents=_int(env, "ASTEROS_MAX_AGENTS", 50, low=1, high=1_000_000),
        metrics_public=_bool(env, "ASTEROS_METRICS_PUBLIC", False),
        cors_allowed_origins=_list(env, "ASTEROS_CORS_ALLOWED_ORIGINS"),
        public_url=_url(env, "ASTEROS_PUBLIC_URL", ("http", "https")),
        interfaces=_list(env, "ASTEROS_INTERFACES"),
        a2a_remote_allowlist=a2a_remote_allowlist,
        outbound_allowlist=outbound_allowlist,
        secret_env=secret_env,
        mcp_stdio_commands=_stdio_commands(env),
        database_url=database_url,
        redis_url=redis_url,
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=_list(env, "ALLOWED_HOSTS", ("localhost", "127.0.0.1", "[::1]")),
        max_body_bytes=_int(env, "ASTEROS_MAX_BODY_BYTES", 1_048_576, low=1024, high=1_073_741_824),
        lease_seconds=lease_seconds,
        max_attempts=_int(env, "ASTEROS_MAX_ATTEMPTS", 3, low=1, high=100),
        worker_concurrency=_int(env, "ASTEROS_WORKER_CONCURRENCY", 300, low=1, high=10_000),
        api_runs=_bool(env, "ASTEROS_API_RUNS", False),
        db_threads=_int(env, "ASTEROS_DB_THREADS", 4, low=1, high=64),
        db_pool_size=_int(env, "ASTEROS_DB_POOL_SIZE", 20, low=2, high=1000),
        http_threads=_int(env, "ASTEROS_HTTP_THREADS", 8, low=1, high=256),
        header_timeout=_int(env, "ASTEROS_HEADER_TIMEOUT", 20, low=1, high=3600),
        body_timeout=_int(env, "ASTEROS_BODY_TIMEOUT", 30, low=1, high=3600),
    )


def wants_traceback(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """``--traceback`` (Django's commands) or debug logging (``ASTEROS_LOG_LEVEL=debug``, Celery's
    ``--loglevel debug``) asks for the whole traceback of a bad option."""
    if "--traceback" in argv or (env.get("ASTEROS_LOG_LEVEL") or "").strip().lower() == "debug":
        return True
    for index, arg in enumerate(argv):
        value = None
        if arg.startswith(("--loglevel=", "-l=")):
            value = arg.partition("=")[2]
        elif arg in ("--loglevel", "-l") and index + 1 < len(argv):
            value = argv[index + 1]
        if value is not None and value.strip().lower() == "debug":
            return True
    return False


@contextmanager
def exit_on_bad_options(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """A bad option stops the process with its one message on stderr and exit status 1.

    Used around the start of ``manage.py`` (every command: ``asteros serve``, ``runserver``,
    ``migrate``...) and of a Celery process. The message already names the variable and what
    it accepts, so the 40-90 lines of import frames under it only hide it; ``wants_traceback``
    keeps them.
    """
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    try:
        yield
    except ImproperlyConfigured as exc:
        if wants_traceback(argv, env):
            raise
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
