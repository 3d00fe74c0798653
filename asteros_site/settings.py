"""Django settings. Every option comes from the environment through ``options.load_options``.

Two modes share this file: with nothing configured the project is *embedded* (SQLite, the
in-process bus for live events, Celery's memory:// broker and a worker thread in the serving
process); with ``DATABASE_URL`` and ``REDIS_URL`` it is *distributed* (PostgreSQL, Redis for
the broker and live event fan-out, separate ``celery`` worker processes).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from asteros_site.options import LOOPBACK_ORIGIN_REGEX, load_options

BASE_DIR = Path(__file__).resolve().parent.parent

ASTEROS = load_options(os.environ)

DEBUG = ASTEROS.debug
# A fixed key is only ever used with DEBUG on (``make run``, tests). With DEBUG off and no key
# the setting stays empty: serving refuses to start (options.require_secret_key) and Django
# refuses any signing, while commands that sign nothing (migrate, makemigrations) still work.
SECRET_KEY = ASTEROS.secret_key or ("asteros-insecure-debug-only-key" if DEBUG else "")
ALLOWED_HOSTS = list(ASTEROS.allowed_hosts)
if DEBUG:
    ALLOWED_HOSTS += ["testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_prometheus",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_jsonform",
    "channels",
    "django_celery_beat",
    "cosmos",
    "stars",
    "workflows",
    "interfaces",
    "interfaces.keys",
    "interfaces.connectors",
    "interfaces.webhooks",
    "interfaces.schedules",
    "interfaces.console",
    "interfaces.agent_protocol",
    # After the apps above: its ready() discovers the apps' asteros, tools and workflow_functions
    # modules once they have all registered what those build on (asteros_site/apps.py).
    # Before daphne and staticfiles: its runserver (port 8080, banner, embedded worker) wins.
    "asteros_site",
    "daphne",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "interfaces.edge.middleware.RequestContextMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Messages live in the server-side session, not in a cookie: the admin shows a new API key once
# as a message, and a signed cookie is readable by anything that logs Set-Cookie headers.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "asteros_site.urls"
ASGI_APPLICATION = "asteros_site.asgi.application"
WSGI_APPLICATION = "asteros_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: SQLite when embedded, DATABASE_URL (PostgreSQL) when distributed
if ASTEROS.database_url:
    DATABASES = {"default": dj_database_url.parse(ASTEROS.database_url)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One pool per process: a request checks a connection out for its own duration only.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": ASTEROS.db_pool_size,
        "timeout": 10,
    }
    # With health checks on, Django gives the pool psycopg_pool's ``check_connection``: every
    # connection is checked (one empty query) as it leaves the pool, and one that a database
    # restart or a network cut broke while it sat idle is replaced instead of failing a request
    # (after a 2 s blip, stale pooled connections kept answering 503 long after the database
    # was back). A database that does not answer a connect fails it in seconds, not minutes.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with this process's writers queued on a lock (cosmos/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "cosmos.sqlite"
    # WAL lets the embedded worker write while requests read, and a commit needs no fsync of
    # the whole database; IMMEDIATE transactions take the write lock up front, so a
    # read-then-write transaction waits for it (timeout) instead of failing at once with
    # "database is locked". Requests run on a small pool of persistent threads
    # (asteros_site/handlers.py), so each thread keeps its connection: opening one per request
    # doubled the time of a run's start (each close of a WAL database may checkpoint it).
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    } | DATABASES["default"].get("OPTIONS", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- channels: websockets are served by Channels' consumers, without a channel layer. Live run
# events reach them on the AsterOS bus (cosmos/bus.py): measured, a channels_redis group was
# slower and would carry the same events a second time (docs/architecture.md, "Live events and
# the channel layer"). Channels needs no CHANNEL_LAYERS for consumers that use none.

# --- celery: memory:// when embedded (worker thread in the server), Redis when distributed
CELERY_BROKER_URL = ASTEROS.redis_url or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Runs are long and mostly waiting: take one message at a time per slot.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The broker must not redeliver a message while its run's lease could still be alive. Sending a
# task must not wait for a broker that is down (kombu would retry for ~6 s, inside the request
# that starts the run): one quick retry, then the run stays queued for the reaper to send.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": max(3600, ASTEROS.lease_seconds * 10),
    "max_retries": 1,
    "interval_start": 0,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if not ASTEROS.redis_url:
    # kombu's memory:// without its polling: a put wakes the embedded worker (cosmos/broker.py).
    CELERY_BROKER_TRANSPORT = "cosmos.broker:MemoryTransport"
if (ASTEROS.redis_url or "").startswith("redis://"):
    # kombu's Redis transport with one fix: a worker survives a Redis restart (cosmos/broker.py).
    CELERY_BROKER_TRANSPORT = "cosmos.broker:RedisTransport"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat reads its schedule from the database (django-celery-beat): the reaper below and one row
# per Schedule (interfaces/schedules). It looks at that table at least every 2 s, so a schedule
# created, edited or disabled is seen within about 2 s (docs/schedules.md).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 2
CELERY_BEAT_SCHEDULE = {
    "asteros-reap-expired-leases": {
        "task": "cosmos.reap_expired_runs",
        "schedule": max(2.0, ASTEROS.lease_seconds / 3),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "/admin/login/"

DATA_UPLOAD_MAX_MEMORY_SIZE = ASTEROS.max_body_bytes

# --- CORS (django-cors-headers)
# ASTEROS.cors_policy decides: with auth off and no list, only loopback origins (any port).
CORS_ALLOW_ALL_ORIGINS = ASTEROS.cors_policy == "any"
CORS_ALLOWED_ORIGINS = list(ASTEROS.cors_allowed_origins) if ASTEROS.cors_policy == "listed" else []
CORS_ALLOWED_ORIGIN_REGEXES = [LOOPBACK_ORIGIN_REGEX] if ASTEROS.cors_policy == "loopback" else []
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "x-api-key",
    "x-request-id",
    "a2a-version",
)
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after")

# --- DRF
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "interfaces.edge.auth.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["interfaces.edge.permissions.ScopePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "interfaces.edge.parsers.JSONParser",  # deep nesting is a 400, not a RecursionError
        "interfaces.edge.parsers.FormParser",  # and a NUL in a form field is a 400, not a 500
        "interfaces.edge.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "interfaces.edge.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": f"{ASTEROS.name} API",
    "DESCRIPTION": "Agents, Stars (teams), workflows and their durable runs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from the sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Interrupts have a status and a kind of their own, next to the run's: each enum its own name.
    "ENUM_NAME_OVERRIDES": {
        "InterruptStatusEnum": "cosmos.models.InterruptStatus",
        "InterruptKindEnum": "cosmos.models.InterruptKind",
        "DeliveryStatusEnum": "interfaces.webhooks.models.DeliveryStatus",
    },
}

# --- logging: structured JSON with the request id and run id
ROOT_LOG_LEVEL = ASTEROS.log_level.upper() if ASTEROS.enable_logging else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "cosmos.logging.ContextFilter"},
        "no_server_access_lines": {"()": "cosmos.logging.DropServerAccessLines"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ASTEROS.enable_logging else "plain",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": ROOT_LOG_LEVEL},
    # One access line per request: asteros.access (interfaces/edge/middleware.py). Django's own
    # "django" console handler (a second, plain copy of every django.* record under DEBUG) is
    # dropped; the servers' access lines (runserver's django.channels.server, django.server) and
    # django.request's 4xx warnings repeat that line, so only their errors are kept. Websocket
    # lines of runserver stay: the access line covers HTTP only.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR", "propagate": True},
        "django.channels.server": {"filters": ["no_server_access_lines"]},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},  # the MCP SDK's HTTP client: a line per request
        "mcp": {"level": "WARNING"},  # the SDK: a line per request and per session
        # ...but the /mcp door's start ("StreamableHTTP session manager started") is worth a line.
        "mcp.server.streamable_http_manager": {"level": ROOT_LOG_LEVEL},
    },
}

# --- metrics: prometheus_client multiprocess mode (interfaces/http/metrics.py; docs/http.md) ---
# In distributed mode run metrics are recorded by the worker processes, so every process of a
# machine writes its values to one directory and the API's /metrics scrape sums them. It must be
# set before prometheus_client is first imported, which is after settings in every entry point
# (manage.py, asteros_site.asgi, celery -A asteros_site). Set PROMETHEUS_MULTIPROC_DIR yourself to
# choose the directory (or to use it in embedded mode); empty it whenever all processes restart.
if ASTEROS.distributed and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(BASE_DIR / "prometheus-multiproc")
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
# --- end of the metrics block ---
