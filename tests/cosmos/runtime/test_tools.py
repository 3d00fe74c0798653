"""Tools: schemas from hints and docstrings, the registry, and the built-ins."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlencode

import pytest

from asteros_site.apps import autodiscover
from cosmos.outbound import OutboundError
from cosmos.runtime.builtin_tools import evaluate_expression, http_get, http_get_options
from cosmos.runtime.tools import (
    Tool,
    ToolContext,
    ToolRegistry,
    parse_docstring,
    tool,
    tool_registry,
)
from tests.support.model_server import ServerThread


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def search(
    query: str,
    limit: int = 5,
    ratio: float | None = None,
    exact: bool = False,
    tags: list[str] | None = None,
    mode: Literal["fast", "deep"] = "fast",
    color: Color = Color.RED,
    weights: dict[str, int] | None = None,
    note: Annotated[str, "free text"] = "",
    context: ToolContext | None = None,
) -> list[str]:
    """Search the catalogue.

    Matches titles and bodies.

    Args:
        query: What to look for.
        limit (int): How many results
            to return at most.
        ratio: Minimum score.

    Returns:
        Titles.
    """
    return []


def test_schema_from_hints_and_docstring() -> None:
    built = Tool.from_function(search)

    assert built.name == "search"
    assert built.description == "Search the catalogue.\n\nMatches titles and bodies."
    assert built.needs_context is True
    props = built.parameters["properties"]
    assert "context" not in props
    assert built.parameters["required"] == ["query"]
    assert props["query"] == {"type": "string", "description": "What to look for."}
    assert props["limit"] == {"type": "integer", "description": "How many results to return at most.", "default": 5}
    assert props["ratio"] == {"type": "number", "description": "Minimum score."}
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["mode"] == {"enum": ["fast", "deep"], "type": "string", "default": "fast"}
    assert props["color"] == {"enum": ["red", "blue"]}
    assert props["weights"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["note"] == {"type": "string", "description": "free text", "default": ""}
    assert built.schema == {"name": "search", "description": built.description, "parameters": built.parameters}
    json.dumps(built.schema)  # serializable as is


def test_docstring_parser_edge_cases() -> None:
    assert parse_docstring("") == ("", {})
    assert parse_docstring("One line.") == ("One line.", {})
    summary, args = parse_docstring(
        "Do it.\n\nArgs:\n    *args: ignored\n    x: the x\n\nRaises:\n    ValueError: never"
    )
    assert summary == "Do it." and args == {"args": "ignored", "x": "the x"}


def test_decorator_options_and_registry() -> None:
    registry_before = set(tool_registry.names())

    @tool(name="shout_loud", timeout=2.5, register=False, description="Shout.")
    async def shout(text: str) -> str:
        return text.upper()

    assert isinstance(shout, Tool) and shout.name == "shout_loud" and shout.timeout == 2.5 and shout.is_async
    assert shout.description == "Shout."
    assert set(tool_registry.names()) == registry_before  # register=False stays private

    registry = ToolRegistry()
    registry.register(shout)
    assert "shout_loud" in registry and registry.get("shout_loud") is shout and registry.get("nope") is None
    first = registry.schemas(("shout_loud", "missing"))
    assert first == (shout.schema,)
    assert registry.schemas(["shout_loud", "missing"]) is first  # cached, lists and tuples alike
    assert registry.resolve(("shout_loud", "missing")).missing == ("missing",)
    registry.unregister("shout_loud")
    assert registry.names() == []


class Rows:
    """A resolver like a database of declared tools: names it knows, and how often it was asked."""

    def __init__(self, *tools: Tool) -> None:
        self.tools = {t.name: t for t in tools}
        self.asked: list[str] = []

    def resolve(self, name: str) -> Tool | None:
        self.asked.append(name)
        return self.tools.get(name)

    def names(self) -> list[str]:
        return list(self.tools)


class Broken:
    def resolve(self, name: str) -> Tool | None:
        raise RuntimeError("no database here")

    def names(self) -> list[str]:
        raise RuntimeError("no database here")


def test_resolvers_answer_for_names_the_registry_does_not_know() -> None:
    registry = ToolRegistry()
    code = registry.register(Tool.from_function(lambda: "code", name="same"))
    declared = Tool.from_function(lambda: "row", name="declared")
    rows = Rows(declared, Tool.from_function(lambda: "row", name="same"))
    registry.add_resolver(Broken())  # a failing resolver is skipped: builds never raise
    registry.add_resolver(rows)

    assert registry.get("same") is code  # code wins
    assert "declared" in registry and registry.get("declared") is declared
    assert registry.get("declared", resolve=False) is None and "nope" not in registry
    assert registry.names() == ["declared", "same"]

    resolved = registry.resolve(("same", "declared", "nope"))
    assert resolved.tools == (code, declared) and resolved.missing == ("nope",)
    rows.asked.clear()
    registry.resolve(("same", "declared"))
    assert rows.asked == ["declared"]  # lists needing a resolver are asked again: the resolver caches
    registry.resolve(("same",))
    registry.resolve(("same",))
    assert rows.asked == ["declared"]  # code-only lists stay cached here

    del rows.tools["declared"]  # e.g. the row was disabled
    assert registry.resolve(("same", "declared")).missing == ("declared",)
    registry.remove_resolver(rows)
    assert registry.names() == ["same"]


class Patterned(Rows):
    def patterns(self) -> list[str]:
        return ["rows:*"]


class BrokenPatterns(Broken):
    def patterns(self) -> list[str]:
        raise RuntimeError("no database here")


def test_patterns_come_from_the_resolvers_that_have_them() -> None:
    registry = ToolRegistry()
    registry.add_resolver(Rows(Tool.from_function(lambda: "row", name="plain")))  # no patterns(): none
    registry.add_resolver(BrokenPatterns())  # a failing resolver is skipped
    registry.add_resolver(Patterned())
    assert registry.patterns() == ["rows:*"]
    assert ToolRegistry().patterns() == []


def test_plain_decorator_registers_and_stays_callable() -> None:
    @tool
    def add_numbers_for_test(a: int, b: int) -> int:
        """Add."""
        return a + b

    try:
        assert "add_numbers_for_test" in tool_registry
        assert add_numbers_for_test(2, 3) == 5
        assert tool_registry.get("add_numbers_for_test").timeout == 30.0
    finally:
        tool_registry.unregister("add_numbers_for_test")


def test_builtins_are_registered() -> None:
    assert {"calculator", "current_time", "http_get"} <= set(tool_registry.names())
    calc = tool_registry.get("calculator")
    assert calc.parameters["required"] == ["expression"]
    assert "context" not in json.dumps(calc.schema)


def test_autodiscover_again_registers_nothing_twice() -> None:
    before = tool_registry.names()
    autodiscover()  # asteros_site's ready() ran it at start-up; the tools modules are imported once
    assert tool_registry.names() == before


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2+3*4", 14),
        ("(2 + 3) * 4 ** 2", 80),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("-3 + +2", -1),
        ("1/4", 0.25),
        ("0.1 + 0.2", 0.3),
        ("6/3", 2),
        ("2 ** -1", 0.5),
        ("2 ** 100", 2**100),
        ("1_000 * 3", 3000),
    ],
)
def test_calculator_arithmetic(expression: str, expected: float) -> None:
    assert evaluate_expression(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "unsupported"),
        ("x + 1", "unsupported element: Name"),
        ("(1).__class__", "unsupported element: Attribute"),
        ("abs(-1)", "unsupported element: Call"),
        ("[1, 2]", "unsupported"),
        ("'a' * 3", "unsupported"),
        ("True + 1", "unsupported"),
        ("1j * 2", "unsupported"),
        ("1 if 1 else 2", "unsupported"),
        ("lambda: 1", "unsupported"),
        ("2 ** 100000", "exponent is too large"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 5000", "too large"),
        ("(10 ** 3000) * (10 ** 3000)", "too large"),
        ("1e308 * 10", "not a finite number"),
        ("2.0 ** 5000", "too large"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "division by zero"),
        ("1 +", "not a valid arithmetic expression"),
        ("1" * 600, "longer than"),
    ],
)
def test_calculator_refuses(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        evaluate_expression(expression)
    assert message in str(caught.value)


async def test_current_time() -> None:
    current_time = tool_registry.get("current_time")
    utc = datetime.fromisoformat(current_time.fn())
    assert utc.utcoffset().total_seconds() == 0
    tokyo = datetime.fromisoformat(current_time.fn(timezone="Asia/Tokyo"))
    assert tokyo.utcoffset().total_seconds() == 9 * 3600
    with pytest.raises(ValueError, match="unknown time zone"):
        current_time.fn(timezone="Mars/Olympus")


# ---------------------------------------------------------------------------------------------
# http_get


async def _web_app(scope, receive, send) -> None:
    """A tiny site: /ok, /big, a redirect inside the allowlist and one leading outside it."""
    path = scope["path"]
    port = scope["server"][1]
    status, headers, body = 200, [(b"content-type", b"text/plain; charset=utf-8")], b"hello from the allowed host"
    if path == "/big":
        body = b"x" * 5000
    elif path == "/redirect-in":
        status, headers, body = 302, [(b"location", b"/ok")], b""
    elif path == "/redirect-out":
        status, headers, body = 302, [(b"location", f"http://localhost:{port}/ok".encode())], b""
    elif path == "/redirect-loop":
        status, headers, body = 302, [(b"location", b"/redirect-loop")], b""
    elif path == "/redirect-to":  # ?status=3xx&url=<where>
        query = parse_qs(scope["query_string"].decode())
        status, headers, body = int(query["status"][0]), [(b"location", query["url"][0].encode())], b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def web():
    with ServerThread(_web_app) as server:
        yield server


@pytest.fixture
def django_settings(monkeypatch: pytest.MonkeyPatch):
    """Django settings to tweak; configured bare when the project's settings are not loaded."""
    django_conf = pytest.importorskip("django.conf")
    if not django_conf.settings.configured:
        django_conf.settings.configure()

    def apply(**values) -> None:
        for name, value in values.items():
            monkeypatch.setattr(django_conf.settings, name, value, raising=False)

    return apply


async def test_http_get_is_off_by_default(django_settings, web: ServerThread) -> None:
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST=[])
    assert http_get_options()[0] == ()
    with pytest.raises(PermissionError, match="disabled"):
        await http_get.fn(url=f"{web.url}/ok")


async def test_http_get_allowlist_and_redirects(django_settings, web: ServerThread) -> None:
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST=["127.0.0.1"], ASTEROS_HTTP_GET_MAX_BYTES=1000)

    page = await http_get.fn(url=f"{web.url}/ok")
    assert page["status"] == 200 and page["content"] == "hello from the allowed host" and page["truncated"] is False

    followed = await http_get.fn(url=f"{web.url}/redirect-in")
    assert followed["url"] == f"{web.url}/ok" and followed["content"] == "hello from the allowed host"

    big = await http_get.fn(url=f"{web.url}/big")
    assert big["truncated"] is True and len(big["content"]) == 1000

    with pytest.raises(PermissionError, match="'localhost' is not on the http_get allowlist"):
        await http_get.fn(url=f"{web.url}/redirect-out")
    with pytest.raises(PermissionError, match="not on the http_get allowlist"):
        await http_get.fn(url=f"http://localhost:{web.port}/ok")
    with pytest.raises(OutboundError):  # too many redirects: the outbound policy's one error
        await http_get.fn(url=f"{web.url}/redirect-loop")
    with pytest.raises(PermissionError, match="only http and https"):
        await http_get.fn(url="file:///etc/passwd")


async def test_http_get_allowlist_with_port_and_wildcard(django_settings, web: ServerThread) -> None:
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST="*.example.test, 127.0.0.1:1")
    with pytest.raises(PermissionError, match="not on the http_get allowlist"):
        await http_get.fn(url=f"{web.url}/ok")  # right host, wrong port
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST=f"*.example.test, 127.0.0.1:{web.port}")
    assert (await http_get.fn(url=f"{web.url}/ok"))["status"] == 200


class Outside:
    """A second real server, off the allowlist, that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = 0

    async def __call__(self, scope, receive, send) -> None:
        self.hits.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"internal data"})


@pytest.fixture
def outside():
    app = Outside()
    with ServerThread(app) as server:
        app.port = server.port
        yield app


async def test_http_get_never_follows_a_redirect_out_of_the_allowlist(
    django_settings, web: ServerThread, outside: Outside
) -> None:
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST=f"127.0.0.1:{web.port}")

    def redirect(url: str, status: int = 302) -> str:
        return f"{web.url}/redirect-to?{urlencode({'status': status, 'url': url})}"

    secret = f"127.0.0.1:{outside.port}/secret"
    leaving = [redirect(f"http://{secret}", status) for status in (301, 302, 303, 307, 308)]  # another port
    leaving += [
        redirect(f"//localhost:{outside.port}/secret"),  # scheme-relative, another host
        redirect(f"http://127.0.0.1:{web.port}@localhost:{outside.port}/secret"),  # the allowed host as userinfo
        redirect(f"http://[::1]:{outside.port}/secret"),
        redirect(redirect(f"http://{secret}")),  # out on the second hop
    ]
    for url in leaving:
        with pytest.raises(PermissionError, match="is not on the http_get allowlist"):
            await http_get.fn(url=url)
    with pytest.raises(PermissionError, match="only http and https"):
        await http_get.fn(url=redirect("file:///etc/passwd"))
    assert outside.hits == [], "a refused redirect never reaches the host it points to"

    # The same redirect, with the outside server on the allowlist, is followed: the refusals
    # above came from the allowlist, and this harness sees the requests that do arrive.
    django_settings(ASTEROS_HTTP_GET_ALLOWLIST=f"127.0.0.1:{web.port}, 127.0.0.1:{outside.port}")
    followed = await http_get.fn(url=redirect(f"http://{secret}"))
    assert followed["url"] == f"http://{secret}" and followed["content"] == "internal data"
    assert outside.hits == ["/secret"]
