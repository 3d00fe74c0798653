"""The CORS default: with auth off and ``ASTEROS_CORS_ALLOWED_ORIGINS`` unset, only pages served
from this machine (loopback origins, any port) may drive the server; with auth on, every origin
as before. The banner says which applies."""

from __future__ import annotations

import pytest

from asteros_site.banner import banner
from asteros_site.options import load_options

from .test_cors import cors_settings, preflight

LOOPBACK = (
    "http://localhost:3000",
    "https://localhost",
    "http://127.0.0.1:5173",
    "http://127.1.2.3:8",
    "http://[::1]:9",
)
FOREIGN = (
    "https://evil.example",
    "http://localhost.evil.example",
    "http://127.0.0.1.evil.example",
    "http://10.0.0.5:3000",
    "http://[::2]:9",
    "null",
)


@pytest.fixture
def serve_with(settings):
    def apply(**env: str) -> None:
        for name, value in cors_settings(**env).items():
            setattr(settings, name, value)

    return apply


@pytest.mark.django_db
def test_auth_off_and_no_list_allows_only_loopback_origins(client, serve_with):
    serve_with(ASTEROS_ENABLE_AUTH="false")
    for origin in LOOPBACK:
        assert preflight(client, "/api/agents", origin)["Access-Control-Allow-Origin"] == origin, origin
        answer = client.get("/api/agents", headers={"Origin": origin})
        assert answer.status_code == 200 and answer["Access-Control-Allow-Origin"] == origin
    for origin in FOREIGN:
        assert "Access-Control-Allow-Origin" not in preflight(client, "/api/agents", origin), origin
        assert "Access-Control-Allow-Origin" not in client.get("/api/agents", headers={"Origin": origin}), origin


@pytest.mark.django_db
def test_auth_on_keeps_every_origin(client, serve_with):
    serve_with(ASTEROS_ENABLE_AUTH="true", ASTEROS_API_KEY="k" * 16)
    for origin in ("https://evil.example", "http://localhost:3000"):
        assert preflight(client, "/api/agents", origin)["Access-Control-Allow-Origin"] == "*"


def test_the_banner_says_which_applies(settings):
    cases = {
        (): "loopback origins only",
        (("ASTEROS_ENABLE_AUTH", "true"), ("ASTEROS_API_KEY", "k" * 16)): "every origin",
        (("ASTEROS_CORS_ALLOWED_ORIGINS", "https://app.example"),): "ASTEROS_CORS_ALLOWED_ORIGINS",
        (("ASTEROS_ENABLE_CORS", "false"),): "CORS:      off",
    }
    for env, expected in cases.items():
        settings.ASTEROS = load_options(dict(env))
        assert expected in banner("127.0.0.1", 8080), env
