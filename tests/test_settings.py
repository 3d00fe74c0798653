"""Every AsterOS option is read from the environment and validated: ``load_options`` case by case."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from asteros_site.options import Options, exit_on_bad_options, load_options, require_secret_key, wants_traceback
from tests.support.processes import ROOT

BASE = {"SECRET_KEY": "not-a-real-secret"}


def options(**env: str) -> Options:
    return load_options(BASE | env)


def pick(opts: Options, *names: str) -> dict:
    return {name: getattr(opts, name) for name in names}


VALUES = ("name", "port", "api_prefix", "log_level", "max_agents")
SWITCHES = (
    "auto_discover",
    "enable_cors",
    "enable_metrics",
    "enable_health",
    "enable_logging",
    "enable_a2a",
    "enable_agui",
    "enable_agent_protocol",
)


def test_defaults_match_the_design_table():
    opts = load_options(BASE)
    assert pick(opts, *VALUES) == {
        "name": "AsterOS",
        "port": 8080,
        "api_prefix": "/api",
        "log_level": "info",
        "max_agents": 50,
    }
    assert all(pick(opts, *SWITCHES).values())
    assert not opts.enable_auth and opts.api_key is None
    assert not opts.debug, "DEBUG is off unless asked for (make run turns it on)"
    assert opts.mode == "embedded" and not opts.distributed
    assert opts.database_url is None and opts.redis_url is None
    assert opts.allowed_hosts == ("localhost", "127.0.0.1", "[::1]")


def test_every_value_is_read():
    opts = options(
        ASTEROS_NAME="Orion",
        ASTEROS_PORT="9000",
        ASTEROS_API_PREFIX="/v1/api",
        ASTEROS_AUTO_DISCOVER="no",
        ASTEROS_ENABLE_CORS="off",
        ASTEROS_ENABLE_AUTH="yes",
        ASTEROS_API_KEY="k" * 16,
        ASTEROS_ENABLE_METRICS="0",
        ASTEROS_ENABLE_HEALTH="false",
        ASTEROS_ENABLE_LOGGING="FALSE",
        ASTEROS_ENABLE_A2A="off",
        ASTEROS_ENABLE_AGUI="0",
        ASTEROS_ENABLE_AGENT_PROTOCOL="no",
        ASTEROS_LOG_LEVEL="DEBUG",
        ASTEROS_MAX_AGENTS="7",
        ALLOWED_HOSTS="a.example, b.example",
        DATABASE_URL="postgres://u@db/asteros",
        REDIS_URL="redis://cache:6379/0",
    )
    assert pick(opts, *VALUES) == {
        "name": "Orion",
        "port": 9000,
        "api_prefix": "/v1/api",
        "log_level": "debug",
        "max_agents": 7,
    }
    assert not any(pick(opts, *SWITCHES).values())
    assert opts.enable_auth and opts.api_key == "k" * 16
    assert opts.allowed_hosts == ("a.example", "b.example")
    assert opts.mode == "distributed"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ASTEROS_PORT": "abc"}, ["ASTEROS_PORT", "whole number", "1 to 65535"]),
        ({"ASTEROS_PORT": "0"}, ["ASTEROS_PORT", "out of range"]),
        ({"ASTEROS_PORT": "70000"}, ["ASTEROS_PORT", "out of range"]),
        ({"ASTEROS_MAX_AGENTS": "-1"}, ["ASTEROS_MAX_AGENTS"]),
        ({"ASTEROS_MAX_AGENTS": "many"}, ["ASTEROS_MAX_AGENTS", "whole number"]),
        ({"ASTEROS_LOG_LEVEL": "loud"}, ["ASTEROS_LOG_LEVEL", "'loud'", "debug, info, warning, error, critical"]),
        ({"ASTEROS_ENABLE_AUTH": "true"}, ["ASTEROS_ENABLE_AUTH", "ASTEROS_API_KEY"]),
        ({"ASTEROS_ENABLE_AUTH": "1", "ASTEROS_API_KEY": ""}, ["ASTEROS_ENABLE_AUTH", "ASTEROS_API_KEY"]),
        ({"ASTEROS_API_KEY": "short"}, ["ASTEROS_API_KEY", "16"]),
        ({"ASTEROS_ENABLE_CORS": "maybe"}, ["ASTEROS_ENABLE_CORS", "true/false"]),
        ({"ASTEROS_ENABLE_AUTH": "2"}, ["ASTEROS_ENABLE_AUTH", "true/false"]),
        ({"ASTEROS_AUTO_DISCOVER": "sometimes"}, ["ASTEROS_AUTO_DISCOVER"]),
        ({"ASTEROS_ENABLE_METRICS": "y"}, ["ASTEROS_ENABLE_METRICS"]),
        ({"ASTEROS_ENABLE_HEALTH": "enabled"}, ["ASTEROS_ENABLE_HEALTH"]),
        ({"ASTEROS_ENABLE_LOGGING": "nope"}, ["ASTEROS_ENABLE_LOGGING"]),
        ({"DEBUG": "verbose"}, ["DEBUG", "true/false"]),
        ({"ASTEROS_API_PREFIX": "api"}, ["ASTEROS_API_PREFIX", "start with '/'"]),
        ({"ASTEROS_API_PREFIX": "/api/"}, ["ASTEROS_API_PREFIX"]),
        ({"ASTEROS_API_PREFIX": "/my api"}, ["ASTEROS_API_PREFIX"]),
        ({"ASTEROS_NAME": "x" * 101}, ["ASTEROS_NAME", "100"]),
        ({"ASTEROS_ENABLE_AGENT_PROTOCOL": "maybe"}, ["ASTEROS_ENABLE_AGENT_PROTOCOL", "true/false"]),
        ({"ASTEROS_AGENT_PROTOCOL_PREFIX": "langgraph"}, ["ASTEROS_AGENT_PROTOCOL_PREFIX", "start with '/'"]),
        ({"ASTEROS_AGENT_PROTOCOL_PREFIX": "/lg/"}, ["ASTEROS_AGENT_PROTOCOL_PREFIX"]),
        ({"ASTEROS_AGENT_PROTOCOL_PREFIX": "/l g"}, ["ASTEROS_AGENT_PROTOCOL_PREFIX"]),
        ({"ASTEROS_AGENT_PROTOCOL_PREFIX": "/api"}, ["ASTEROS_AGENT_PROTOCOL_PREFIX", "ASTEROS_API_PREFIX"]),
        ({"REDIS_URL": "redis://localhost:6379/0"}, ["REDIS_URL", "DATABASE_URL"]),
        ({"DATABASE_URL": "mysql://db/asteros"}, ["DATABASE_URL", "postgres://"]),
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3", "REDIS_URL": "http://cache"}, ["REDIS_URL", "redis://"]),
        ({"ASTEROS_PUBLIC_URL": "ftp://example.com"}, ["ASTEROS_PUBLIC_URL", "https://"]),
        ({"ASTEROS_LEASE_SECONDS": "1"}, ["ASTEROS_LEASE_SECONDS"]),
        ({"ASTEROS_MAX_ATTEMPTS": "0"}, ["ASTEROS_MAX_ATTEMPTS"]),
        ({"ASTEROS_WORKER_CONCURRENCY": "lots"}, ["ASTEROS_WORKER_CONCURRENCY"]),
        ({"ASTEROS_DB_THREADS": "0"}, ["ASTEROS_DB_THREADS"]),
        ({"ASTEROS_MAX_BODY_BYTES": "10"}, ["ASTEROS_MAX_BODY_BYTES"]),
        ({"ASTEROS_WEBHOOK_RETRY_SECONDS": "0"}, ["ASTEROS_WEBHOOK_RETRY_SECONDS"]),
        ({"ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS": "soon"}, ["ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS", "seconds"]),
        ({"ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS": "nan"}, ["ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS"]),
        ({"ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS": "7200"}, ["ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS", "3600"]),
        ({"ASTEROS_MODE": "nonsense"}, ["ASTEROS_MODE", "'nonsense'", "embedded or distributed"]),
        ({"ASTEROS_MODE": "distributed"}, ["ASTEROS_MODE=distributed", "DATABASE_URL", "REDIS_URL"]),
        (
            {"ASTEROS_MODE": "embedded", "DATABASE_URL": "postgres://db/a", "REDIS_URL": "redis://r/0"},
            ["ASTEROS_MODE=embedded", "REDIS_URL"],
        ),
    ],
    ids=lambda value: "-".join(f"{k}={v[:12]}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(env, names):
    with pytest.raises(ImproperlyConfigured) as caught:
        options(**env)
    for name in names:
        assert name in str(caught.value)


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "yes", "on", " On "])
def test_true_words(word):
    assert options(DEBUG=word).debug is True


@pytest.mark.parametrize("word", ["0", "false", "no", "off", ""])
def test_false_words(word):
    assert options(DEBUG=word).debug is False


def test_auth_with_a_key_is_accepted():
    opts = options(ASTEROS_ENABLE_AUTH="true", ASTEROS_API_KEY="a-long-enough-key!")
    assert opts.enable_auth and opts.api_key == "a-long-enough-key!"


def test_serving_requires_a_secret_key_when_debug_is_off():
    for env in ({}, {"DEBUG": "false", "SECRET_KEY": ""}):
        opts = load_options(env)
        assert opts.secret_key is None
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set when DEBUG is off"):
            require_secret_key(opts)
    require_secret_key(load_options({"SECRET_KEY": "a-real-one"}))
    require_secret_key(load_options({"DEBUG": "1"}))


@pytest.mark.parametrize("entry_point", ["asteros_site.asgi", "asteros_site.wsgi"])
def test_the_server_entry_points_refuse_an_empty_secret_but_commands_run(entry_point, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "REDIS_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "asteros_site.settings", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    served = subprocess.run(
        [sys.executable, "-c", f"import {entry_point}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    checked = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert served.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in served.stderr
    assert checked.returncode == 0, checked.stderr[-2000:]


def test_debug_runs_without_a_secret_key():
    opts = load_options({"DEBUG": "1"})
    assert opts.debug and opts.secret_key is None


def test_database_alone_stays_embedded():
    assert options(DATABASE_URL="sqlite:////tmp/x.sqlite3").mode == "embedded"
    assert options(DATABASE_URL="postgres://u@db/asteros").mode == "embedded"


def test_the_agent_protocol_options():
    opts = options()
    assert opts.enable_agent_protocol and opts.agent_protocol_prefix == "/agent-protocol"
    opts = options(ASTEROS_ENABLE_AGENT_PROTOCOL="off", ASTEROS_AGENT_PROTOCOL_PREFIX="/v1/langgraph")
    assert not opts.enable_agent_protocol and opts.agent_protocol_prefix == "/v1/langgraph"


def test_empty_numbers_fall_back_to_defaults():
    assert options(ASTEROS_PORT="", ASTEROS_MAX_AGENTS=" ").port == 8080


def test_the_running_settings_come_from_the_options(settings):
    assert isinstance(settings.ASTEROS, Options)
    assert settings.ASTEROS.debug == settings.DEBUG
    assert settings.CELERY_BROKER_URL.startswith(settings.ASTEROS.redis_url or "memory://")
    if settings.ASTEROS.distributed:
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_no_channel_layer_in_either_mode(settings):
    """Live events travel on the bus alone (docs/architecture.md): no second path for them."""
    from channels.layers import get_channel_layer

    assert not hasattr(settings, "CHANNEL_LAYERS")
    assert get_channel_layer() is None


@pytest.mark.services
@pytest.mark.django_db
def test_distributed_mode_uses_postgresql_and_redis(settings):
    import redis
    from django.db import connection

    assert settings.ASTEROS.mode == "distributed"
    assert connection.vendor == "postgresql"
    assert redis.Redis.from_url(settings.ASTEROS.redis_url).ping()
    assert settings.ASTEROS.redis_url == settings.CELERY_BROKER_URL


def test_webhook_retry_options():
    assert (options().webhook_retry_seconds, options().webhook_first_retry_seconds) == (86_400, 5.0)
    chosen = options(ASTEROS_WEBHOOK_RETRY_SECONDS="60", ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS="0.5")
    assert (chosen.webhook_retry_seconds, chosen.webhook_first_retry_seconds) == (60, 0.5)


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "embedded"),
        ({"ASTEROS_MODE": ""}, "embedded"),
        ({"ASTEROS_MODE": " Embedded "}, "embedded"),
        ({"ASTEROS_MODE": "distributed", "DATABASE_URL": "postgres://db/a", "REDIS_URL": "redis://r/0"}, "distributed"),
    ],
)
def test_asteros_mode_states_what_the_urls_choose(env, mode):
    assert options(**env).mode == mode


@pytest.mark.parametrize(
    ("argv", "env", "wanted"),
    [
        (["manage.py", "asteros", "serve"], {}, False),
        (["manage.py", "asteros", "serve", "--traceback"], {}, True),
        (["manage.py", "migrate"], {"ASTEROS_LOG_LEVEL": " DEBUG "}, True),
        (["manage.py", "migrate"], {"ASTEROS_LOG_LEVEL": "info"}, False),
        (["celery", "-A", "asteros_site", "worker", "-l", "debug"], {}, True),
        (["celery", "-A", "asteros_site", "worker", "--loglevel=DEBUG"], {}, True),
        (["celery", "-A", "asteros_site", "worker", "--loglevel", "info"], {}, False),
        (["celery", "worker", "-l"], {}, False),
    ],
)
def test_wants_traceback(argv, env, wanted):
    assert wants_traceback(argv, env) is wanted


def test_exit_on_bad_options_is_one_line_and_status_1(capsys):
    with pytest.raises(SystemExit) as exited, exit_on_bad_options(["manage.py", "migrate"], {}):
        options(ASTEROS_PORT="abc")
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "ImproperlyConfigured: ASTEROS_PORT='abc' is not a whole number; use an integer from 1 to 65535.\n"
    )
    with pytest.raises(ImproperlyConfigured), exit_on_bad_options(["manage.py", "migrate", "--traceback"], {}):
        options(ASTEROS_PORT="abc")


def test_the_openai_door_options():
    opts = load_options(BASE)
    assert opts.enable_openai and opts.openai_prefix == "/v1"
    opts = options(ASTEROS_ENABLE_OPENAI="off", ASTEROS_OPENAI_PREFIX="/openai/v1")
    assert not opts.enable_openai and opts.openai_prefix == "/openai/v1"
    for bad in ("v1", "/v1/", "/", "/v 1", "/api"):
        with pytest.raises(ImproperlyConfigured, match="ASTEROS_OPENAI_PREFIX"):
            options(ASTEROS_OPENAI_PREFIX=bad)
    with pytest.raises(ImproperlyConfigured, match="ASTEROS_ENABLE_OPENAI"):
        options(ASTEROS_ENABLE_OPENAI="maybe")
