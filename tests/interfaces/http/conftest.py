"""Fixtures of the HTTP interface tests: auth switched on, keys per scope, error assertions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from interfaces.keys.models import APIKey

SETTINGS_KEY = "settings-key-for-tests-0123456789"


@pytest.fixture
def auth_on(settings_options):
    """ASTEROS_ENABLE_AUTH on, with the setting's key ``SETTINGS_KEY``."""
    return settings_options(enable_auth=True, api_key=SETTINGS_KEY)


@dataclass
class Keys:
    read: str
    run: str
    admin: str
    none: str  # a valid key with no scope at all

    def below(self, scope: str) -> str:
        """A valid key one scope short of ``scope``."""
        return {"read": self.none, "run": self.read, "admin": self.run}[scope]


@pytest.fixture
def keys(db) -> Keys:
    return Keys(
        read=APIKey.generate("reader", ["read"])[1],
        run=APIKey.generate("runner", ["run"])[1],
        admin=APIKey.generate("administrator", ["admin"])[1],
        none=APIKey.generate("nothing", [])[1],
    )


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has ``status`` and the one error shape (and ``code`` when given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
