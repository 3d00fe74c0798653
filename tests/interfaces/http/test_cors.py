"""CORS (django-cors-headers) as the options configure it, on every interface.

The CORS settings are computed from the environment when ``settings.py`` is imported, so each
test runs the real ``asteros_site/settings.py`` against an environment (``cors_settings``) and
serves requests with what it computed.
"""

from __future__ import annotations

import importlib.util
import os
from unittest import mock

import pytest

from asteros_site import settings as asteros_settings

from .conftest import SETTINGS_KEY

ALLOWED = "https://app.example"
ALSO_ALLOWED = "https://ops.example:8443"
PATHS = ("/api/agents", "/agui/agents/some-agent", "/a2a/agents/some-agent/message:send", "/metrics")
NOT_ALLOWED = ("https://evil.example", "http://app.example", "https://app.example:8443", "null")
CORS_VARIABLES = ("ASTEROS_ENABLE_CORS", "ASTEROS_CORS_ALLOWED_ORIGINS", "ASTEROS_ENABLE_AUTH", "ASTEROS_API_KEY")
AUTH_ON = {"ASTEROS_ENABLE_AUTH": "true", "ASTEROS_API_KEY": SETTINGS_KEY}
KEY = {"Authorization": f"Bearer {SETTINGS_KEY}"}


def cors_settings(**env: str) -> dict:
    """The CORS settings ``asteros_site/settings.py`` computes from this environment."""
    environ = {k: v for k, v in os.environ.items() if k not in CORS_VARIABLES} | env
    # A fresh copy of the settings module, executed under its own name (the loaded one stays).
    spec = importlib.util.spec_from_file_location("asteros_site.settings_for_cors", asteros_settings.__file__)
    computed = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, environ, clear=True):
        spec.loader.exec_module(computed)
    return {name: getattr(computed, name) for name in dir(computed) if name.startswith("CORS_")}


@pytest.fixture
def serve_with(settings, settings_options):
    """Serve with the CORS settings of an environment, auth on."""
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)

    def apply(**env: str) -> None:
        for name, value in cors_settings(**(AUTH_ON | env)).items():
            setattr(settings, name, value)

    return apply


def preflight(client, path: str, origin: str):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, a2a-version",
        },
    )


@pytest.mark.django_db
def test_configured_origins_alone_get_the_headers(client, serve_with):
    serve_with(ASTEROS_CORS_ALLOWED_ORIGINS=f"{ALLOWED}, {ALSO_ALLOWED}")
    for path in PATHS:
        for origin in (ALLOWED, ALSO_ALLOWED):
            # Answered before auth: a browser's preflight carries no key.
            answer = preflight(client, path, origin)
            assert answer.status_code == 200, (path, answer.status_code)
            assert answer["Access-Control-Allow-Origin"] == origin
            allowed_headers = answer["Access-Control-Allow-Headers"]
            for header in ("authorization", "x-api-key", "idempotency-key", "last-event-id", "a2a-version"):
                assert header in allowed_headers, (path, header)
            assert "POST" in answer["Access-Control-Allow-Methods"]
            assert "Access-Control-Allow-Credentials" not in answer, "cookies never cross origins"
        simple = client.get(path, headers={"Origin": ALLOWED, **KEY})
        assert simple["Access-Control-Allow-Origin"] == ALLOWED, path
        assert "x-request-id" in simple["Access-Control-Expose-Headers"]
        assert "origin" in simple["Vary"].lower(), "caches keep answers per origin"
    refused = client.get("/api/agents", headers={"Origin": ALLOWED})
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == ALLOWED, "errors are readable"

    for origin in NOT_ALLOWED:
        for path in PATHS:
            answer = preflight(client, path, origin)
            assert "Access-Control-Allow-Origin" not in answer, (origin, path)
            assert "Access-Control-Allow-Headers" not in answer, (origin, path)
            simple = client.get(path, headers={"Origin": origin, **KEY})
            assert "Access-Control-Allow-Origin" not in simple, (origin, path)


@pytest.mark.django_db
def test_without_configured_origins_every_origin_is_allowed_as_documented(client, serve_with):
    serve_with()  # README: ASTEROS_CORS_ALLOWED_ORIGINS empty = every origin
    for origin in (ALLOWED, *NOT_ALLOWED):
        assert preflight(client, "/api/agents", origin)["Access-Control-Allow-Origin"] == "*", origin
        answer = client.get("/api/agents", headers={"Origin": origin, **KEY})
        assert answer.status_code == 200 and answer["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer


@pytest.mark.django_db
def test_cors_off_sends_no_cors_headers(client, serve_with):
    serve_with(ASTEROS_ENABLE_CORS="false", ASTEROS_CORS_ALLOWED_ORIGINS=ALLOWED)
    for origin in (ALLOWED, "https://evil.example"):
        answer = preflight(client, "/api/agents", origin)
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")], origin
        simple = client.get("/api/agents", headers={"Origin": origin, **KEY})
        assert simple.status_code == 200 and "Access-Control-Allow-Origin" not in simple
