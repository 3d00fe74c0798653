"""Where a webhook or an A2A push config may point: checked when it is defined.

The outbound policy (``cosmos.outbound``) decides again at every send, on the address actually
connected to; this check only turns what is sure to be refused (a loopback or private address
written in the URL) into a clear error when the URL is saved, instead of a delivery that fails
for a day.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from cosmos import outbound

MAX_URL_LENGTH = 2000
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def receiver_url_problem(url: object) -> str | None:
    """Why ``url`` cannot receive deliveries, or None."""
    if not isinstance(url, str) or not url.strip():
        return "A URL is required."
    if len(url) > MAX_URL_LENGTH:
        return f"The URL is longer than {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An http:// or https:// URL with a host."
    if parts.username or parts.password:
        return "The URL must not carry credentials; use the token or authentication fields."
    host = parts.hostname.lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None and host not in LOCAL_NAMES and not host.endswith(".localhost"):
        return None  # a name: the policy checks what it resolves to, at each send
    if outbound.url_allowed(httpx.URL(url), outbound.current_allowlist()):
        return None
    reason = outbound.address_problem(address) if address is not None else f"{host} is this machine"
    if reason is None:
        return None
    return (
        f"The outbound policy refuses this URL ({reason}); an operator may list the host in ASTEROS_OUTBOUND_ALLOWLIST."
    )
