"""Whether a browser page's ``Origin`` may talk to this server: the rule every door that browsers
cannot be kept out of by CORS applies (websockets, ``/mcp``).

``same_origin``: no Origin (not a browser), the request's own origin, or a trusted one
(``CSRF_TRUSTED_ORIGINS``, the CORS allowlist, ``ASTEROS_PUBLIC_URL``'s origin). ``cors_allows``:
that, or an origin django-cors-headers would allow (every origin, the listed ones, or the
loopback pattern of the default with auth off).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port (the default port filled in)


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as (scheme, host, port); None for anything else (``null``, a path...)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _matches(entry: str, origin: Origin) -> bool:
    """An exact origin, or Django's ``scheme://*.domain[:port]`` (subdomains, same scheme and port)."""
    if "://*." in entry:
        wanted = parse_origin(entry.replace("://*.", "://", 1))
        return (
            wanted is not None
            and (wanted[0], wanted[2]) == (origin[0], origin[2])
            and origin[1].endswith("." + wanted[1])
        )
    return parse_origin(entry) == origin


def trusted_origins() -> list[str]:
    """Origins other than the request's own whose pages may use a session: ``CSRF_TRUSTED_ORIGINS``,
    the CORS allowlist (``ASTEROS_CORS_ALLOWED_ORIGINS``) and ``ASTEROS_PUBLIC_URL``'s origin."""
    entries = [*getattr(settings, "CSRF_TRUSTED_ORIGINS", ()), *getattr(settings, "CORS_ALLOWED_ORIGINS", ())]
    public_url = getattr(getattr(settings, "ASTEROS", None), "public_url", None)
    if public_url:
        parts = urlsplit(public_url)
        entries.append(f"{parts.scheme}://{parts.netloc}")
    return entries


def same_origin(headers: dict[str, str], scheme: str = "ws") -> bool:
    """No Origin (not a browser), or an Origin equal in scheme, host and port to this request's own
    origin (``Host`` and the socket's scheme) or to a trusted one (``trusted_origins``)."""
    raw = headers.get("origin")
    if raw is None:
        return True
    origin = parse_origin(raw)
    if origin is None:
        return False
    own_scheme = "https" if scheme in ("wss", "https") else "http"
    host = headers.get("host", "")
    if host and parse_origin(f"{own_scheme}://{host}") == origin:
        return True
    return any(_matches(entry, origin) for entry in trusted_origins())


def cors_allows(headers: dict[str, str], scheme: str = "ws") -> bool:
    """The HTTP CORS policy applied to a handshake: no Origin, the request's own or a trusted one
    (``same_origin``), or one django-cors-headers would allow (every origin, the listed ones, or
    the loopback pattern of the default with auth off)."""
    if same_origin(headers, scheme):
        return True
    raw = headers.get("origin", "")
    if parse_origin(raw) is None:
        return False
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False):
        return True
    return any(re.match(pattern, raw) for pattern in getattr(settings, "CORS_ALLOWED_ORIGIN_REGEXES", ()))
