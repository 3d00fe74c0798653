"""Credentials by reference: the one place a definition's secret is checked and read.

A credential in a definition (a remote A2A agent's token, an agent's model API key; MCP servers
and webhooks later) is never a value but a *reference*: ``env:NAME``, the name of an
environment variable of the process that makes the call. ``NAME`` must start with
``ASTEROS_SECRET_`` or be listed in ``ASTEROS_SECRET_ENV`` (comma-separated), and it can never
be one of the server's own secrets (``SERVER_SECRETS``: ``SECRET_KEY``, ``DATABASE_URL``,
``ASTEROS_API_KEY``, the model providers' keys, ...; and any ``ASTEROS_*`` option or ``DJANGO_*``
variable), not even through ``ASTEROS_SECRET_ENV`` (listing one there stops start-up).

- ``reference_problem(ref)``: why a reference is refused (``None`` when it is fine): used by
  model validation, so the API and the admin refuse the same things with the same message;
- ``resolve_credential(ref)``: the value, read at call time (``None`` when the variable is not
  set); a refused reference raises ``SecretReferenceError`` here too (defence in depth: a row
  written before the rules, or straight into the database, reaches no server secret);
- ``reference_status(ref)``: ``"set"`` / ``"not set"`` / ``"refused"`` / ``"none"`` for pages and
  APIs, which never show a value.

Django-free apart from reading the allowlist from settings when they are configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

REFERENCE_PREFIX = "env:"
SECRET_PREFIX = "ASTEROS_SECRET_"
SECRET_ENV_OPTION = "ASTEROS_SECRET_ENV"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Variables the server reads for its own credentials (and the options that say where its own
# data lives): no definition may name them.
SERVER_SECRETS = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "ASTEROS_API_KEY",
        "ASTEROS_ADMIN_PASSWORD",
        "DJANGO_SUPERUSER_PASSWORD",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CELERY_BROKER_URL",
        "PGPASSWORD",
    }
)

STATUS_NONE = "none"
STATUS_SET = "set"
STATUS_NOT_SET = "not set"
STATUS_REFUSED = "refused"


class SecretReferenceError(ValueError):
    """A credential reference that is malformed or names a variable that may not be read."""


def parse_secret_env(raw: str | None) -> tuple[str, ...]:
    """The names of ``ASTEROS_SECRET_ENV``; raises ``SecretReferenceError`` for a bad or forbidden one."""
    names = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    for name in names:
        if not ENV_NAME.match(name):
            raise SecretReferenceError(
                f"{SECRET_ENV_OPTION}: {name!r} is not an environment variable name "
                "(letters, digits and '_', not a digit first)."
            )
        if _is_server_secret(name):
            raise SecretReferenceError(
                f"{SECRET_ENV_OPTION} lists {name}, one of the server's own secrets; "
                "definitions can never name those. Give the credential its own variable "
                f"(e.g. {SECRET_PREFIX}...)."
            )
    return names


# The server's own variables by prefix: its ASTEROS_* options (ASTEROS_SECRET_* excepted, which
# exist for definitions) and Django's own.
SERVER_PREFIXES = ("ASTEROS_", "DJANGO_")


def _is_server_secret(name: str) -> bool:
    upper = name.upper()
    if upper in SERVER_SECRETS:
        return True
    return upper.startswith(SERVER_PREFIXES) and not upper.startswith(SECRET_PREFIX)


def allowed_names() -> tuple[str, ...]:
    """The extra names of ``ASTEROS_SECRET_ENV`` (from settings when configured, else the environment)."""
    try:
        from django.conf import settings

        if settings.configured and hasattr(settings, "ASTEROS"):
            return tuple(getattr(settings.ASTEROS, "secret_env", ()) or ())
    except ImportError:  # pragma: no cover - Django is always there in this project
        pass
    try:
        return parse_secret_env(os.environ.get(SECRET_ENV_OPTION))
    except SecretReferenceError:
        return ()


def parse_reference(reference: str, *, allowed: Iterable[str] | None = None) -> str:
    """The variable name of ``env:NAME``, or ``SecretReferenceError`` saying why it is refused."""
    if not isinstance(reference, str) or not reference.startswith(REFERENCE_PREFIX):
        raise SecretReferenceError(
            f"A credential is a reference, never a value: write env:NAME, where NAME is an environment "
            f"variable starting with {SECRET_PREFIX} (or listed in {SECRET_ENV_OPTION})."
        )
    name = reference[len(REFERENCE_PREFIX) :]
    if not ENV_NAME.match(name):
        raise SecretReferenceError(
            f"env:{name}: not an environment variable name (letters, digits and '_', not a digit first)."
        )
    if _is_server_secret(name):
        raise SecretReferenceError(f"env:{name} names one of the server's own secrets; it can never be used.")
    extra = tuple(allowed_names() if allowed is None else allowed)
    if not name.startswith(SECRET_PREFIX) and name not in extra:
        raise SecretReferenceError(
            f"env:{name} is not allowed: the variable must start with {SECRET_PREFIX} "
            f"or be listed in {SECRET_ENV_OPTION}."
        )
    return name


def reference_problem(reference: str | None) -> str | None:
    """Why a (non-empty) reference is refused, or ``None``."""
    if not reference:
        return None
    try:
        parse_reference(reference)
    except SecretReferenceError as exc:
        return str(exc)
    return None


def resolve_credential(reference: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The value a reference names, read now; ``None`` when empty or unset. Refused: ``SecretReferenceError``."""
    if not reference:
        return None
    name = parse_reference(reference)
    value = (os.environ if env is None else env).get(name)
    return value or None


def reference_status(reference: str | None, env: Mapping[str, str] | None = None) -> str:
    """``none``, ``set``, ``not set`` (in this process) or ``refused``; never the value."""
    if not reference:
        return STATUS_NONE
    try:
        value = resolve_credential(reference, env)
    except SecretReferenceError:
        return STATUS_REFUSED
    return STATUS_SET if value else STATUS_NOT_SET
