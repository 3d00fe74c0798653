"""API-key authentication for DRF (and a plain function for SSE, A2A, AG-UI and websockets)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from ..models import KEY_PREFIX, APIKey, hash_key


@dataclass(frozen=True)
class KeyPrincipal:
    """Who is calling with a key. ``is_authenticated`` lets DRF treat it as a user."""

    name: str
    scopes: tuple[str, ...]
    resources: tuple[str, ...] = ()
    key_id: int | None = None
    is_authenticated: bool = True
    is_staff: bool = False

    def has_scope(self, scope: str) -> bool:
        order = {"read": 0, "run": 1, "admin": 2}
        return any(order.get(s, -1) >= order[scope] for s in self.scopes)

    @property
    def caller(self) -> str:
        return f"key:{self.name}"


SETTINGS_PRINCIPAL = KeyPrincipal(name="settings", scopes=("admin",))


def raw_key_from_headers(headers) -> str | None:
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("X-API-Key") or None


def principal_for_key(raw: str | None) -> KeyPrincipal | None:
    """Resolve a raw key to a principal, comparing in constant time. None if not valid."""
    if not raw:
        return None
    configured = settings.ASTEROS.api_key
    if configured and hmac.compare_digest(raw.encode(), configured.encode()):
        return SETTINGS_PRINCIPAL
    if not raw.startswith(KEY_PREFIX):
        return None
    # The lookup is by hash: a timing difference reveals nothing about the key.
    key = APIKey.objects.filter(hashed_key=hash_key(raw), revoked=False).first()
    if key is None:
        return None
    APIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return KeyPrincipal(name=key.name, scopes=tuple(key.scopes), resources=tuple(key.resources), key_id=key.pk)


class APIKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = raw_key_from_headers(request.headers)
        if raw is None:
            return None
        principal = principal_for_key(raw)
        if principal is None:
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        return principal, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="asteros"'
