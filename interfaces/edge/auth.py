"""Who is calling: API keys (the setting's key and admin-managed keys) and staff sessions.

Every endpoint family uses the functions here: DRF through ``APIKeyAuthentication`` and
``interfaces.edge.permissions.ScopePermission``; SSE, A2A, AG-UI and websockets through
``require_access``, which takes plain headers (a mapping, or an ASGI scope's list of byte
pairs) and the session user (``authorize_request`` calls it for an async view: the edge
pipeline's authorize step).

Keys travel as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The setting's key is
compared with ``hmac.compare_digest``; database keys are looked up by their SHA-256, so no
comparison leaks timing about a stored key. Keys never appear in a log line or an error.

Resolving a key counts the request against the key's requests-per-minute quota
(``interfaces.keys.quotas``): every entry point authenticates here, so the quota holds on all of them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from rest_framework import authentication, exceptions

from cosmos.db import db_call
from cosmos.kinds import find_kind
from interfaces.keys import quotas
from interfaces.keys.models import KEY_PREFIX, APIKey, hash_key

SCOPE_ORDER = {"read": 0, "run": 1, "admin": 2}
# last_used_at is written at most this often per key, so a busy key costs no write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def kind_resource(kind: str) -> str | None:
    """The resource name of a run kind in a key's ``resources`` ("agents:chat-agent"): its
    collection in the catalogue (``cosmos.kinds``), or None for a kind nobody registered."""
    found = find_kind(kind)
    return found.collection if found else None


@dataclass(frozen=True)
class KeyPrincipal:
    """Who is calling with a key. ``is_authenticated`` lets DRF treat it as a user."""

    name: str
    scopes: tuple[str, ...]
    resources: tuple[str, ...] = ()
    key_id: int | None = None
    prefix: str = ""
    requests_per_minute: int | None = None
    is_authenticated: bool = True
    is_staff: bool = False

    def has_scope(self, scope: str) -> bool:
        return any(SCOPE_ORDER.get(s, -1) >= SCOPE_ORDER[scope] for s in self.scopes)

    def allows_resource(self, resource: str, object_id: str | None = None) -> bool:
        """``resources`` empty = everything; else ``"agents"``, ``"agents:*"`` or ``"agents:<id>"``."""
        if not self.resources:
            return True
        wanted = {resource, f"{resource}:*"}
        if object_id is not None:
            wanted.add(f"{resource}:{object_id}")
        return any(entry in wanted for entry in self.resources)

    def allowed_ids(self, resource: str) -> set[str] | None:
        """The ids of ``resource`` this key may see, or None for all of them."""
        if not self.resources or resource in self.resources or f"{resource}:*" in self.resources:
            return None
        prefix = f"{resource}:"
        return {entry[len(prefix) :] for entry in self.resources if entry.startswith(prefix)}

    @property
    def caller(self) -> str:
        return f"key:{self.prefix or self.name}"

    def __str__(self) -> str:
        return self.caller


SETTINGS_PRINCIPAL = KeyPrincipal(name="settings", scopes=("admin",), prefix="settings")


class AccessDenied(Exception):
    """Raised by ``require_access``; carries the HTTP status (401 or 403) and an error code."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _header_lookup(headers: Any) -> Mapping[str, str]:
    """Accept a Django/DRF headers mapping, a plain dict or an ASGI scope's ``headers`` list."""
    if isinstance(headers, Mapping):
        return headers
    normalized: dict[str, str] = {}
    for name, value in headers or ():
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        normalized[key.lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return _CaseInsensitive(normalized)


class _CaseInsensitive(dict):
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def raw_key_from_headers(headers: Any) -> str | None:
    lookup = _header_lookup(headers)
    auth = lookup.get("Authorization", "") or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return (lookup.get("X-API-Key") or "").strip() or None


def principal_for_key(raw: str | None) -> KeyPrincipal | None:
    """Resolve a raw key to a principal, comparing in constant time. None if not valid.

    Counts one request of the key; ``quotas.QuotaExceeded`` (429) past its requests per minute.
    """
    if not raw:
        return None
    configured = settings.ASTEROS.api_key
    if configured and hmac.compare_digest(raw.encode(), configured.encode()):
        count_key_request(SETTINGS_PRINCIPAL)
        return SETTINGS_PRINCIPAL
    if not raw.startswith(KEY_PREFIX):
        return None
    # The lookup is by hash: a timing difference reveals nothing about the key.
    key = APIKey.objects.filter(hashed_key=hash_key(raw), revoked=False).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        APIKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    principal = KeyPrincipal(
        name=key.name,
        scopes=tuple(key.scopes or ()),
        resources=tuple(key.resources or ()),
        key_id=key.pk,
        prefix=key.prefix,
        requests_per_minute=key.requests_per_minute,
    )
    count_key_request(principal)
    return principal


def count_key_request(principal: Any) -> None:
    """Count one request of a key against its requests per minute (QuotaExceeded past it).

    Resolving a key does this; websockets call it again for each run a message starts.
    """
    if isinstance(principal, KeyPrincipal) and principal.prefix:
        quotas.count_request(principal.prefix, principal.requests_per_minute)


def session_principal(user: Any) -> Any:
    """A logged-in, active staff user counts as a principal with every scope."""
    if user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False):
        return user
    return None


def session_user_with_csrf(request: Any, user: Any) -> Any:
    """``user`` (the request's session user), or None when a write lacks a valid CSRF token.

    For views exempt from CSRF because programs call them with keys (AG-UI): as with DRF's
    ``SessionAuthentication``, a session counts on a write only with its token, since another
    site's page can make the browser send the session cookie but cannot read the token.
    """
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE") or not getattr(user, "is_authenticated", False):
        return user
    check = CsrfViewMiddleware(lambda _request: None)
    check.process_request(request)
    return user if check.process_view(request, None, (), {}) is None else None


def principal_allows(principal: Any, scope: str) -> bool:
    if principal is None or not getattr(principal, "is_authenticated", False):
        return False
    if isinstance(principal, KeyPrincipal):
        return principal.has_scope(scope)
    return bool(getattr(principal, "is_staff", False))  # a staff session (browsable API, dashboard)


def principal_sees_everything(principal: Any, scope: str = "read") -> bool:
    """``scope``, and no resource limit: what views across every resource need (``/metrics``,
    the readiness details, the dashboard), since they name every agent and its usage."""
    if not principal_allows(principal, scope):
        return False
    return not (isinstance(principal, KeyPrincipal) and principal.resources)


def authenticate_request(headers: Any, session_user: Any = None) -> Any:
    """The caller of a request: a ``KeyPrincipal``, the session user, or None for anonymous.

    A key that is given but not valid raises ``AccessDenied(401)`` when auth is on; with auth
    off it is ignored. ``headers`` may be a mapping or an ASGI scope's header list.
    """
    raw = raw_key_from_headers(headers)
    if raw is not None:
        principal = principal_for_key(raw)
        if principal is not None:
            return principal
        if settings.ASTEROS.enable_auth:
            raise AccessDenied(401, "authentication_failed", "The API key is not valid.")
    return session_principal(session_user)


def require_access(
    headers: Any,
    session_user: Any = None,
    scope: str = "read",
    *,
    resource: str | None = None,
    object_id: str | None = None,
) -> Any:
    """Authenticate and authorize one request; returns the principal (None when auth is off
    and nobody identified themselves). Raises ``AccessDenied`` with 401 or 403."""
    principal = authenticate_request(headers, session_user)
    if not settings.ASTEROS.enable_auth:
        return principal
    if principal is None:
        raise AccessDenied(401, "not_authenticated", "Authentication credentials were not provided.")
    if not principal_allows(principal, scope):
        raise AccessDenied(403, "permission_denied", f"This needs an API key with the {scope!r} scope.")
    if resource:
        require_use(principal, resource, object_id)
    return principal


def may_use(principal: Any, resource: str, object_id: str | None = None) -> bool:
    """Whether the caller may use a resource (``agents``) or one row of it: anyone with auth off;
    a key limited to some resources, only those (every door's lists and lookups ask this)."""
    if not settings.ASTEROS.enable_auth or not isinstance(principal, KeyPrincipal):
        return True
    return principal.allows_resource(resource, object_id)


def require_use(principal: Any, resource: str, object_id: str | None = None, *, what: str = "") -> None:
    """``may_use`` or a 403 ``permission_denied`` naming ``what`` (default: the resource and id)."""
    if not may_use(principal, resource, object_id):
        named = what or f"{resource} {object_id or ''}".strip()
        raise AccessDenied(403, "permission_denied", f"This API key may not use {named}.")


async def authorize_request(request: Any, scope: str, *, target: Any = None, sessions: bool = True) -> Any:
    """``require_access`` for an async Django view: the caller of ``request``, allowed ``scope``
    on ``target`` (anything with ``resource`` and ``id``; None for no particular one).

    ``sessions``: a logged-in session counts (on a write only with its CSRF token, see
    ``session_user_with_csrf``); False for doors that programs alone call (A2A: keys only).
    """
    user = session_user_with_csrf(request, await request.auser()) if sessions else None
    resource = target.resource if target is not None else None
    object_id = target.id if target is not None else None
    return await db_call(require_access, request.headers, user, scope, resource=resource, object_id=object_id)


def caller_of(principal: Any) -> str:
    """The ``Run.caller`` for a principal: idempotency keys are scoped by it."""
    if principal is None:
        return "anonymous"
    if isinstance(principal, KeyPrincipal):
        return principal.caller
    username = getattr(principal, "get_username", None)
    return f"user:{username()}" if callable(username) else "anonymous"


def principal_scopes(principal: Any) -> Iterable[str]:
    if isinstance(principal, KeyPrincipal):
        return principal.scopes
    return ("read", "run", "admin") if principal_allows(principal, "admin") else ()


class APIKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by API key; with auth off an invalid key is ignored, not refused."""

    def authenticate(self, request):
        raw = raw_key_from_headers(request.headers)
        if raw is None:
            return None
        principal = principal_for_key(raw)
        if principal is None:
            if settings.ASTEROS.enable_auth:
                raise exceptions.AuthenticationFailed("The API key is not valid.")
            return None
        return principal, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="asteros"'
