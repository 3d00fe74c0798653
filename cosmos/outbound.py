"""The one outbound HTTP client: every request the server makes on a user's behalf goes here.

Remote A2A agents (cards and calls), the ``http_get`` tool, and later MCP servers and webhooks
take their ``httpx`` clients from ``async_client()`` / ``sync_client()``. Such a client:

- resolves each host itself and refuses loopback, private, link-local (169.254.169.254 too),
  shared, multicast, unspecified, reserved and cloud-metadata addresses, IPv4 and IPv6 alike
  (IPv4-mapped, NAT64, 6to4 and Teredo IPv6 addresses are judged by the IPv4 address they
  carry), unless the host is on the allowlist (``ASTEROS_OUTBOUND_ALLOWLIST``: ``host``,
  ``host:port``, ``*.domain``; the old ``ASTEROS_A2A_REMOTE_ALLOWLIST`` folds into it);
- checks the address it actually connects to: the check lives in the httpcore network backend
  (``connect_tcp``), which resolves the name, checks every address it got and connects to the
  checked IP, so a name that resolves differently the second time (DNS rebinding) gains
  nothing; httpcore still uses the URL's host for TLS (SNI, certificate) and ``Host``;
- checks again on every redirect (each hop opens its own connection through that backend), at
  most ``max_redirects`` of them;
- caps time (``timeout`` for each connect/read and ``deadline`` for the whole exchange, body
  included), redirects and response size (``max_bytes``, streams included);
- ignores proxy variables from the environment (a proxy would connect for us, unchecked);
- turns every failure (refused address, DNS failure, closed port, a port that does not speak
  HTTP, timeout, too large, too many redirects) into ONE ``OutboundError`` whose message is the
  same for all of them; the reason goes only to the server log (``cosmos.outbound``).

This module has no Django import: ``cosmos.runtime`` uses it directly. The allowlist is read at
call time from a source that the cosmos app installs at start-up (``set_allowlist_source``),
reading ``settings.ASTEROS.outbound_allowlist``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx

logger = logging.getLogger("cosmos.outbound")

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
FAILURE_MESSAGE = "The outbound request failed (refused by policy, unreachable, too slow or too large)."

# Addresses no user request may reach, whatever ``ipaddress`` thinks of them.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(httpx.TransportError):
    """Any failure of an outbound request, with one message for all (the detail is logged)."""

    def __init__(self, message: str = FAILURE_MESSAGE, *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class _Refused(Exception):
    """Raised inside the backend; becomes OutboundError at the transport's edge."""


# ---------------------------------------------------------------------------------------------
# The policy: which hosts are allowlisted, which addresses are refused


_allowlist_source: Callable[[], Iterable[str]] = lambda: ()  # noqa: E731


def set_allowlist_source(source: Callable[[], Iterable[str]]) -> None:
    """Install where the allowlist comes from (read at every connection)."""
    global _allowlist_source
    _allowlist_source = source


def current_allowlist() -> tuple[str, ...]:
    return tuple(entry.strip().lower() for entry in _allowlist_source() or () if entry and entry.strip())


def _bare(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]")


def host_allowed(host: str, port: int | None, allowlist: Iterable[str]) -> bool:
    """``host`` (any port), ``host:port``, or ``*.domain`` (subdomains only); IPv6 as ``[::1]``."""
    host = _bare(host)
    if not host:
        return False
    for entry in allowlist:
        entry = entry.strip().lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
            continue
        if entry.startswith("["):
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":") or None
        elif entry.count(":") == 1:
            name, _, entry_port = entry.partition(":")
        else:
            name, entry_port = entry, None
        if _bare(name) == host and (entry_port is None or (port is not None and str(port) == entry_port)):
            return True
    return False


def url_allowed(url: httpx.URL, allowlist: Iterable[str]) -> bool:
    """Is ``url``'s host (with its port, default ports included) on ``allowlist``?"""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return host_allowed(url.host or "", port, allowlist)


def defined_address_problem(url: str) -> str | None:
    """Why a model API address a definition chose may not be called, or None.

    The model SDKs connect on their own, not through the outbound policy's client, so a base URL
    an agent or template sets must name a host the operator listed in ASTEROS_OUTBOUND_ALLOWLIST
    (``host``, ``host:port`` or ``*.domain``): nothing a user defines reaches an address, internal
    or not, that the operator did not allow. Checked when the definition is saved and again at
    each call (the list may have changed). The operator's own ANTHROPIC_BASE_URL / OPENAI_BASE_URL
    and the vendors' APIs need no listing."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "Not a valid URL."
    if url_allowed(parsed, current_allowlist()):
        return None
    host = parsed.netloc.decode("ascii", "replace")
    return (
        f"{host} is not on the outbound allowlist: an operator lists it in ASTEROS_OUTBOUND_ALLOWLIST "
        "(e.g. localhost:11434) before agents may call a model there."
    )


def address_problem(address: str | IPAddress) -> str | None:
    """Why a request may not connect to ``address`` (an IP), or ``None`` when it may."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{ip} carries {inner}" if inner else None
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _check_addresses(host: str, port: int, infos: list[Any]) -> list[str]:
    """The addresses to connect to; _Refused when any is refused (one bad candidate is enough)."""
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise _Refused(f"{host} resolved to no address")
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise _Refused(f"{host}:{port} resolves to {problem}")
    return addresses


# ---------------------------------------------------------------------------------------------
# The httpcore network backends: resolve, check, connect to the checked address


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allowlist: Callable[[], tuple[str, ...]] = current_allowlist) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allowlist = allowlist

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        allowed = host_allowed(host, port, self._allowlist())
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(_bare(host), port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise _Refused(f"resolving {host} timed out") from None
        except OSError as exc:
            raise _Refused(f"{host} does not resolve: {exc}") from None
        addresses = (
            list(dict.fromkeys(str(i[4][0]).split("%", 1)[0] for i in infos))
            if allowed
            else _check_addresses(host, port, infos)
        )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise _Refused(f"cannot connect to {host}:{port}: {last!r}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise _Refused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedSyncBackend(httpcore.NetworkBackend):
    def __init__(self, allowlist: Callable[[], tuple[str, ...]] = current_allowlist) -> None:
        self._inner = httpcore.SyncBackend()
        self._allowlist = allowlist

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        allowed = host_allowed(host, port, self._allowlist())
        try:
            infos = socket.getaddrinfo(_bare(host), port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _Refused(f"{host} does not resolve: {exc}") from None
        addresses = (
            list(dict.fromkeys(str(i[4][0]).split("%", 1)[0] for i in infos))
            if allowed
            else _check_addresses(host, port, infos)
        )
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise _Refused(f"cannot connect to {host}:{port}: {last!r}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise _Refused("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# ---------------------------------------------------------------------------------------------
# The transports: the guarded pool, the caps, and one error


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float = DEFAULT_TIMEOUT  # each connect / read / write
    deadline: float | None = None  # the whole exchange, body included (None: the timeout x 4)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    @property
    def total(self) -> float:
        return self.deadline if self.deadline is not None else self.timeout * 4


def _fail(request: httpx.Request, reason: str) -> OutboundError:
    # The reason names the host and what went wrong, never headers (they may carry a token).
    logger.warning("outbound request refused or failed: %s %s: %s", request.method, request.url, reason)
    return OutboundError(request=request)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Refused) else f"{type(exc).__name__}: {exc}"


class _CappedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request, limits: Limits, started: float):
        self._inner, self._request, self._limits, self._started = inner, request, limits, started

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        try:
            async for chunk in self._inner:
                seen += len(chunk)
                if seen > self._limits.max_bytes:
                    raise _Refused(f"the response is larger than {self._limits.max_bytes} bytes")
                if time.monotonic() - self._started > self._limits.total:
                    raise _Refused(f"the exchange took longer than {self._limits.total:g} s")
                yield chunk
        except OutboundError:
            raise
        except (_Refused, httpx.TransportError, httpcore.NetworkError, OSError) as exc:
            raise _fail(self._request, _reason(exc)) from None

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CappedSyncStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, request: httpx.Request, limits: Limits, started: float):
        self._inner, self._request, self._limits, self._started = inner, request, limits, started

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        try:
            for chunk in self._inner:
                seen += len(chunk)
                if seen > self._limits.max_bytes:
                    raise _Refused(f"the response is larger than {self._limits.max_bytes} bytes")
                if time.monotonic() - self._started > self._limits.total:
                    raise _Refused(f"the exchange took longer than {self._limits.total:g} s")
                yield chunk
        except OutboundError:
            raise
        except (_Refused, httpx.TransportError, httpcore.NetworkError, OSError) as exc:
            raise _fail(self._request, _reason(exc)) from None

    def close(self) -> None:
        self._inner.close()


def _check_scheme(request: httpx.Request) -> None:
    if request.url.scheme not in ("http", "https"):
        raise _Refused(f"only http and https URLs are allowed, not {request.url.scheme!r}")


_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's roots), made once: making one reads the CA bundle,
    some 15 ms, and callers that open a client per exchange (MCP sessions) would pay it each time."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context(trust_env=False)  # as the transports made it
    return _ssl_context


# Both transports' connection pools, sized alike.
POOL_SIZES = {"max_connections": 100, "max_keepalive_connections": 20, "keepalive_expiry": 5.0}


class GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self, limits: Limits, allowlist: Callable[[], tuple[str, ...]] = current_allowlist) -> None:
        super().__init__(verify=shared_ssl_context(), trust_env=False, retries=0)
        # httpx has no parameter for httpcore's network backend: rebuild its pool around ours,
        # with the TLS context httpx made.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._pool._ssl_context,
            network_backend=GuardedAsyncBackend(allowlist),
            **POOL_SIZES,
        )
        self.limits = limits

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            _check_scheme(request)
            with anyio.fail_after(self.limits.total):
                response = await super().handle_async_request(request)
        except (_Refused, httpx.TransportError, TimeoutError, OSError) as exc:
            raise _fail(request, _reason(exc)) from None
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limits.max_bytes:
            await response.aclose()
            raise _fail(request, f"the response announces {length} bytes (limit {self.limits.max_bytes})")
        response.stream = _CappedAsyncStream(response.stream, request, self.limits, started)  # type: ignore[arg-type]
        return response


class GuardedSyncTransport(httpx.HTTPTransport):
    def __init__(self, limits: Limits, allowlist: Callable[[], tuple[str, ...]] = current_allowlist) -> None:
        super().__init__(verify=shared_ssl_context(), trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=self._pool._ssl_context,
            network_backend=GuardedSyncBackend(allowlist),
            **POOL_SIZES,
        )
        self.limits = limits

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            _check_scheme(request)
            response = super().handle_request(request)
        except (_Refused, httpx.TransportError, OSError) as exc:
            raise _fail(request, _reason(exc)) from None
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limits.max_bytes:
            response.close()
            raise _fail(request, f"the response announces {length} bytes (limit {self.limits.max_bytes})")
        response.stream = _CappedSyncStream(response.stream, request, self.limits, started)  # type: ignore[arg-type]
        return response


# ---------------------------------------------------------------------------------------------
# The clients


class _AsyncClient(httpx.AsyncClient):
    """Too many redirects is a failure like any other: the same OutboundError."""

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx.TooManyRedirects:
            raise _fail(request, f"more than {self.max_redirects} redirects") from None
        except httpx.TimeoutException as exc:
            raise _fail(request, _reason(exc)) from None


class _SyncClient(httpx.Client):
    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return super().send(request, **kwargs)
        except httpx.TooManyRedirects:
            raise _fail(request, f"more than {self.max_redirects} redirects") from None
        except httpx.TimeoutException as exc:
            raise _fail(request, _reason(exc)) from None


def _timeout(limits: Limits) -> httpx.Timeout:
    return httpx.Timeout(limits.timeout, connect=min(DEFAULT_CONNECT_TIMEOUT, limits.timeout))


def _client_options(
    timeout: float, deadline: float | None, max_bytes: int, max_redirects: int, follow_redirects: bool
) -> tuple[Limits, dict[str, Any]]:
    """What both clients are built with: the caps, and httpx's own settings for them."""
    limits = Limits(timeout=timeout, deadline=deadline, max_bytes=max_bytes, max_redirects=max_redirects)
    options = {
        "timeout": _timeout(limits),
        "follow_redirects": follow_redirects,
        "max_redirects": max_redirects,
        "trust_env": False,  # a proxy from the environment would connect for us, unchecked
    }
    return limits, options


def async_client(
    *,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    follow_redirects: bool = True,
    allowlist: Callable[[], tuple[str, ...]] = current_allowlist,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` under the outbound policy (see the module's docstring)."""
    limits, options = _client_options(timeout, deadline, max_bytes, max_redirects, follow_redirects)
    return _AsyncClient(transport=GuardedAsyncTransport(limits, allowlist), **options, **kwargs)


def sync_client(
    *,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    follow_redirects: bool = True,
    allowlist: Callable[[], tuple[str, ...]] = current_allowlist,
    **kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` under the outbound policy (see the module's docstring)."""
    limits, options = _client_options(timeout, deadline, max_bytes, max_redirects, follow_redirects)
    return _SyncClient(transport=GuardedSyncTransport(limits, allowlist), **options, **kwargs)
