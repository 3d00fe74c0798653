"""Who is on the other end of a websocket, and what they may do.

``WebsocketAuthMiddleware`` wraps the websocket router (``asteros_site/asgi.py``). It finds the
credentials of the handshake and leaves the decision to the consumer, which knows what is being
asked for (a run, an agent, the dashboard):

- an API key in ``Authorization: Bearer <key>`` or ``X-API-Key`` (programs), or in the
  ``Sec-WebSocket-Protocol`` list as ``asteros.key.<key>`` (browsers cannot set headers; offer
  ``asteros`` too and the server answers with ``asteros``, never echoing the key);
- or the Django session of a logged-in user (browser pages). A session is only trusted when the
  handshake's ``Origin`` is absent or equal in scheme, host and port to the request's own origin,
  to one of ``CSRF_TRUSTED_ORIGINS``, of the CORS allowlist or to ``ASTEROS_PUBLIC_URL``'s
  origin: another site's page (``http://127.0.0.1:9999`` for a server on 8080 included) cannot
  borrow it.

With auth off, nothing checks who connects, and browsers apply no CORS to websockets: a handshake
whose ``Origin`` the HTTP CORS policy would refuse (``cors_allows``: with no origin list, loopback
pages only) is refused with 4403, so no other web page can read or drive a local server's runs.

Keys never go in the query string (it ends up in access logs) and are never logged here.
Consumers call ``authorize`` and, when it raises (``AccessDenied``, or the key's
``QuotaExceeded``), classify the error like every door (``interfaces.edge.errors.classify``) and
accept and close at once with ``close_code(status)``: 4401 (not authenticated, or a bad key),
4403 (not allowed) or 4429 (the key's requests per minute are used up; the frame's ``details``
say when to retry), after a ``{"type": "error", ...}`` frame that says why. (Closing before
accepting would reach the client as an HTTP 403 with no code at all.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from cosmos.db import db_call
from interfaces.edge.auth import AccessDenied, KeyPrincipal, principal_allows, principal_sees_everything, require_access
from interfaces.edge.origins import cors_allows, same_origin

KEY_PROTOCOL_PREFIX = "asteros.key."
PUBLIC_PROTOCOL = "asteros"
# A refusal's HTTP status as a close code; a bug of ours is 1011 (RFC 6455: internal error).
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 400: 4400, 409: 4409, 429: 4429, 503: 4503, 500: 1011}


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        out[name.decode("latin-1").lower()] = value.decode("latin-1")
    return out


def key_headers(headers: dict[str, str]) -> dict[str, str]:
    """The key-carrying headers, spelled as ``interfaces.edge.auth`` looks them up."""
    out = {}
    if "authorization" in headers:
        out["Authorization"] = headers["authorization"]
    if "x-api-key" in headers:
        out["X-API-Key"] = headers["x-api-key"]
    return out


def key_from_subprotocols(protocols: Iterable[str]) -> str | None:
    for protocol in protocols:
        if protocol.startswith(KEY_PROTOCOL_PREFIX) and len(protocol) > len(KEY_PROTOCOL_PREFIX):
            return protocol[len(KEY_PROTOCOL_PREFIX) :]
    return None


def answer_subprotocol(protocols: Iterable[str]) -> str | None:
    """The subprotocol to accept with: ``asteros`` when offered, else any offered one but a key."""
    offered = list(protocols)
    if PUBLIC_PROTOCOL in offered:
        return PUBLIC_PROTOCOL
    for protocol in offered:
        if not protocol.startswith(KEY_PROTOCOL_PREFIX):
            return protocol
    return offered[0] if offered else None  # only a key was offered: a browser insists on an answer


class _Credentials:
    """What the middleware found; consumers read it through ``authorize``."""

    __slots__ = ("headers", "origin_allowed", "subprotocol", "user")

    def __init__(self, headers: dict[str, str], user: Any, subprotocol: str | None, origin_allowed: bool) -> None:
        self.headers = headers
        self.user = user
        self.subprotocol = subprotocol
        self.origin_allowed = origin_allowed


class _CredentialsMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await self.inner(scope, receive, send)
        headers = _headers(scope)
        protocols = list(scope.get("subprotocols") or ())
        key = key_from_subprotocols(protocols)
        auth_headers = key_headers(headers)
        if key and not auth_headers:
            auth_headers = {"Authorization": f"Bearer {key}"}
        user = scope.get("user")
        if user is None or not same_origin(headers, scope.get("scheme", "ws")):
            user = AnonymousUser()
        origin_allowed = cors_allows(headers, scope.get("scheme", "ws"))
        scope = {**scope, "asteros": _Credentials(auth_headers, user, answer_subprotocol(protocols), origin_allowed)}
        return await self.inner(scope, receive, send)


def WebsocketAuthMiddleware(inner: Any) -> Any:
    """Sessions and users (Channels' auth stack), then AsterOS's credentials, around ``inner``."""
    return AuthMiddlewareStack(_CredentialsMiddleware(inner))


def credentials(scope: dict) -> _Credentials:
    found = scope.get("asteros")
    if isinstance(found, _Credentials):
        return found
    # A consumer mounted without the middleware (a test): only the scope's own headers count.
    headers = _headers(scope)
    user = scope.get("user") or AnonymousUser()
    return _Credentials(key_headers(headers), user, None, cors_allows(headers, scope.get("scheme", "ws")))


async def authorize(
    scope: dict,
    required: str = "read",
    *,
    resource: str | None = None,
    object_id: str | None = None,
    staff_only: bool = False,
) -> Any:
    """The principal of this connection, allowed ``required`` (a key scope); else AccessDenied
    (or ``QuotaExceeded``: the handshake counts as one request of the key).

    With ``ASTEROS_ENABLE_AUTH`` off anyone the CORS policy allows may connect, as with the HTTP API, except where
    ``staff_only`` (the dashboard): that needs a staff session or a key with the scope and no
    resource limit.
    """
    found = credentials(scope)
    if not settings.ASTEROS.enable_auth and not found.origin_allowed:
        raise AccessDenied(
            403,
            "origin_not_allowed",
            "Auth is off, so only pages of this server, of a trusted origin or of the CORS policy may connect "
            "(ASTEROS_CORS_ALLOWED_ORIGINS; with none, loopback pages only).",
        )
    principal = await db_call(
        require_access, found.headers, found.user, required, resource=resource, object_id=object_id
    )
    if staff_only and not principal_allows(principal, required):
        if principal is None or not getattr(principal, "is_authenticated", False):
            raise AccessDenied(401, "not_authenticated", "Log in as staff (or send an API key) to use this.")
        raise AccessDenied(403, "permission_denied", "Only staff may use the dashboard.")
    if staff_only and not principal_sees_everything(principal, required):
        # The dashboard shows every run of every target: more than such a key may see.
        raise AccessDenied(403, "permission_denied", "An API key limited to some resources may not use the dashboard.")
    return principal


def may(principal: Any, required: str, *, resource: str | None = None, object_id: str | None = None) -> bool:
    """A second check on an open connection (e.g. cancelling needs ``run``)."""
    if not settings.ASTEROS.enable_auth:
        return True
    if not principal_allows(principal, required):
        return False
    return not (resource and isinstance(principal, KeyPrincipal) and not principal.allows_resource(resource, object_id))


def close_code(status: int) -> int:
    """The close code for a refusal with this HTTP status."""
    return CLOSE_CODES.get(status, 4403)
