"""The one outbound HTTP policy (``cosmos.outbound``), against real servers on 127.0.0.1.

The test settings allowlist 127.0.0.1 (the suite's local servers); every test here sets the
allowlist it means, empty included, through ``allow``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from cosmos import outbound
from cosmos.outbound import FAILURE_MESSAGE, OutboundError, address_problem, host_allowed
from cosmos.runtime.builtin_tools import http_get
from tests.support.model_server import ServerThread

pytestmark = pytest.mark.django_db


async def _site(scope, receive, send) -> None:
    path = scope["path"]
    status, headers, body = 200, [(b"content-type", b"text/plain")], b"hello"
    if path == "/host":
        body = dict(scope["headers"]).get(b"host", b"")
    elif path == "/big":
        body = b"x" * 100_000
    elif path == "/stream-big":  # no content-length: the cap must hold while reading
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(50):
            await send({"type": "http.response.body", "body": b"y" * 10_000, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/loop":
        status, headers, body = 302, [(b"location", b"/loop")], b""
    elif path == "/to":
        url = parse_qs(scope["query_string"].decode())["url"][0]
        status, headers, body = 302, [(b"location", url.encode())], b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Recorder:
    def __init__(self) -> None:
        self.hits: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.hits.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"internal"})


@pytest.fixture
def site() -> Iterator[ServerThread]:
    with ServerThread(_site) as server:
        yield server


@pytest.fixture
def allow(settings_options):
    def set_to(*entries: str) -> None:
        settings_options(outbound_allowlist=tuple(entries))

    set_to()  # nothing allowlisted unless the test says so
    return set_to


def get(url: str, **limits) -> httpx.Response:
    async def go() -> httpx.Response:
        async with outbound.async_client(**limits) as client:
            response = await client.get(url)
            await response.aread()
            return response

    return asyncio.run(go())


def failure(url: str, **limits) -> str:
    with pytest.raises(OutboundError) as caught:
        get(url, **limits)
    return str(caught.value)


def sync_failure(url: str, **limits) -> str:
    with pytest.raises(OutboundError) as caught, outbound.sync_client(**limits) as client:
        client.get(url).read()
    return str(caught.value)


# --- the addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # shared (carrier-grade NAT)
        "169.254.169.254",  # cloud metadata
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address):
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_problem(address) is None


def test_allowlist_entries():
    assert host_allowed("api.example.com", 443, ["api.example.com"])
    assert host_allowed("api.example.com", 8443, ["api.example.com:8443"])
    assert not host_allowed("api.example.com", 443, ["api.example.com:8443"])
    assert host_allowed("a.corp.test", 80, ["*.corp.test"]) and not host_allowed("corp.test", 80, ["*.corp.test"])
    assert host_allowed("::1", 8080, ["[::1]:8080"]) and not host_allowed("::1", 8081, ["[::1]:8080"])
    assert not host_allowed("evilcorp.test", 80, ["*.corp.test"])


# --- loopback, with and without the allowlist


def test_loopback_is_refused_unless_allowlisted(site, allow):
    assert failure(f"{site.url}/") == FAILURE_MESSAGE
    assert sync_failure(f"{site.url}/") == FAILURE_MESSAGE
    allow(f"127.0.0.1:{site.port}")
    assert get(f"{site.url}/").text == "hello"
    with outbound.sync_client() as client:
        assert client.get(f"{site.url}/").text == "hello"
    allow("127.0.0.1:1")  # another port of the same host is not this one
    assert failure(f"{site.url}/") == FAILURE_MESSAGE


def test_a_name_that_resolves_to_a_private_address_is_refused(site, allow):
    allow("127.0.0.1")  # the address is allowlisted, but the name is what the URL asks for
    assert failure(f"http://localhost:{site.port}/") == FAILURE_MESSAGE
    allow("localhost")
    assert get(f"http://localhost:{site.port}/").text == "hello"


def test_the_checked_address_is_the_one_connected_to(site, allow, monkeypatch):
    """A name the resolver maps to 127.0.0.1: refused; allowlisted, the connection goes to the
    address that was checked, with the URL's own name in Host."""
    resolved: list[str] = []

    async def resolver(host, port, **kwargs):
        resolved.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolver)
    assert failure(f"http://rebind.example:{site.port}/host") == FAILURE_MESSAGE
    allow(f"rebind.example:{site.port}")
    assert get(f"http://rebind.example:{site.port}/host").text == f"rebind.example:{site.port}"
    assert resolved == ["rebind.example", "rebind.example"]  # resolved once per connection, by the policy


def test_a_redirect_to_a_refused_address_is_refused(site, allow):
    inside = Recorder()
    with ServerThread(inside) as other:
        allow(f"127.0.0.1:{site.port}")
        for target in (f"{other.url}/secret", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/"):
            assert failure(f"{site.url}/to?url={target}") == FAILURE_MESSAGE
        assert inside.hits == []
        allow(f"127.0.0.1:{site.port}", f"127.0.0.1:{other.port}")
        assert get(f"{site.url}/to?url={other.url}/secret").text == "internal"
        assert inside.hits == ["/secret"]


# --- one error for every failure


@pytest.fixture
def not_http() -> Iterator[int]:
    """An open port that speaks something else (a greeting, then close), as SSH or Redis would."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def silent() -> Iterator[int]:
    """An open port that accepts and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_every_failure_reads_the_same(site, not_http, silent, allow, caplog):
    closed = closed_port()
    allow("127.0.0.1")  # reachable by policy: the failures below are the network's
    messages = {
        "closed port": failure(f"http://127.0.0.1:{closed}/"),
        "open non-HTTP port": failure(f"http://127.0.0.1:{not_http}/"),
        "silent port": failure(f"http://127.0.0.1:{silent}/", timeout=0.5),
        "no such host": failure("http://no-such-host.invalid/"),
        "too large": failure(f"{site.url}/big", max_bytes=1000),
        "too large, streamed": failure(f"{site.url}/stream-big", max_bytes=100_000),
        "too many redirects": failure(f"{site.url}/loop", max_redirects=3),
        "not http": failure("ftp://127.0.0.1/"),
    }
    allow()
    messages["refused"] = failure(f"http://127.0.0.1:{closed}/")
    messages["metadata"] = failure("http://169.254.169.254/latest/meta-data/")
    assert set(messages.values()) == {FAILURE_MESSAGE}, messages
    # The same for the sync client.
    allow("127.0.0.1")
    assert sync_failure(f"http://127.0.0.1:{closed}/") == sync_failure(f"http://127.0.0.1:{not_http}/")
    # The reasons are in the server log only.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "cosmos.outbound")
    assert "larger than" in logged and "redirects" in logged and "metadata" in logged


def test_the_caps_hold_but_let_what_fits_through(site, allow):
    allow(f"127.0.0.1:{site.port}")
    assert len(get(f"{site.url}/big", max_bytes=100_000).content) == 100_000
    assert get(f"{site.url}/to?url=/", max_redirects=1).text == "hello"


# --- the users: http_get and remote A2A agents go through it


async def test_http_get_refuses_loopback_unless_on_the_outbound_allowlist(site, allow, settings):
    settings.ASTEROS_HTTP_GET_ALLOWLIST = ["127.0.0.1"]
    with pytest.raises(OutboundError):
        await http_get.fn(url=f"{site.url}/")
    allow(f"127.0.0.1:{site.port}")
    assert (await http_get.fn(url=f"{site.url}/"))["content"] == "hello"
    # http_get's own list may name the metadata host: the outbound policy still refuses it,
    # on a redirect from the allowed site too.
    settings.ASTEROS_HTTP_GET_ALLOWLIST = [f"127.0.0.1:{site.port}", "169.254.169.254"]
    with pytest.raises(OutboundError):
        await http_get.fn(url="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(OutboundError):
        await http_get.fn(url=f"{site.url}/to?url=http://169.254.169.254/")


def test_ipv6_loopback_and_bracketed_entries(allow):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    try:
        server = Server(("::1", 0), Handler)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert failure(f"http://[::1]:{port}/") == FAILURE_MESSAGE
        allow(f"[::1]:{port}")
        assert get(f"http://[::1]:{port}/").text == "ok"
    finally:
        server.shutdown()
        server.server_close()


def test_the_options():
    from django.core.exceptions import ImproperlyConfigured

    from asteros_site.options import load_options

    options = load_options({"ASTEROS_OUTBOUND_ALLOWLIST": "10.0.0.7:8443, [::1]:8080, *.corp.test"})
    assert options.outbound_allowlist == ("10.0.0.7:8443", "[::1]:8080", "*.corp.test")
    folded = load_options({"ASTEROS_OUTBOUND_ALLOWLIST": "a.test", "ASTEROS_A2A_REMOTE_ALLOWLIST": "b.test"})
    assert folded.outbound_allowlist == ("a.test", "b.test")  # the old name is still read
    assert load_options({}).outbound_allowlist == ()
    for bad in ("http://a.test", "a.test/path", "a.test:99999"):
        with pytest.raises(ImproperlyConfigured, match="ASTEROS_OUTBOUND_ALLOWLIST"):
            load_options({"ASTEROS_OUTBOUND_ALLOWLIST": bad})
