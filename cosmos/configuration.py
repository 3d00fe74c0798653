"""What the Django-free runtime (``cosmos.runtime``, ``cosmos.outbound``) reads from Django.

The runtime imports no settings and no app registry itself: the cosmos app calls ``configure()``
from ``ready()``, which installs these readers. Each is read at call time, so a change of
settings (a test's override included) applies at once.
"""

from __future__ import annotations

from django.conf import settings

from . import outbound
from .runtime import builtin_tools


def configure() -> None:
    outbound.set_allowlist_source(outbound_allowlist)
    builtin_tools.set_http_get_options_source(http_get_options)


def outbound_allowlist() -> tuple[str, ...]:
    """``ASTEROS_OUTBOUND_ALLOWLIST`` (with the old A2A allowlist), read at every connection."""
    return tuple(getattr(getattr(settings, "ASTEROS", None), "outbound_allowlist", ()) or ())


def http_get_options() -> builtin_tools.HttpGetOptions:
    """``ASTEROS_HTTP_GET_ALLOWLIST`` (a list, or comma-separated text), ``..._MAX_BYTES``, ``..._TIMEOUT``."""
    allow = getattr(settings, "ASTEROS_HTTP_GET_ALLOWLIST", None) or ()
    if isinstance(allow, str):
        allow = allow.split(",")
    return builtin_tools.HttpGetOptions(
        allowlist=tuple(h.strip().lower() for h in allow if h and h.strip()),
        max_bytes=int(getattr(settings, "ASTEROS_HTTP_GET_MAX_BYTES", None) or builtin_tools.DEFAULT_MAX_BYTES),
        timeout=float(getattr(settings, "ASTEROS_HTTP_GET_TIMEOUT", None) or builtin_tools.DEFAULT_HTTP_TIMEOUT),
    )
