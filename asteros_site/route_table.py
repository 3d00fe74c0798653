"""Every route of every door, one row each: what ``manage.py asteros routes`` prints.

HTTP routes come from the ASGI router (``/mcp``, the MCP SDK's app) and the project's URLconf (the
REST door generated from the registry, /health, /metrics, A2A, AG-UI, the dashboard and the
admin), websocket routes from
``interfaces.ws.routing``; both in resolution order (the first match wins). Paths are shown with
``{name}`` for a parameter and ``[...]`` for an optional part; a pattern that matches any
continuation ends in ``*``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# HEAD (with GET) and OPTIONS are answered by every view; DRF even adds "head" to a viewset's
# actions once it has served a request, so they are left out for a stable list.
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
UNKNOWN_METHODS = "*"  # a function view: any method reaches it (it may refuse some itself)
WEBSOCKET = "WS"


@dataclass(frozen=True)
class Route:
    methods: str  # e.g. "GET,POST", "WS", or "*" when the view does not say
    path: str  # e.g. "/api/agents/{id}/run"
    name: str  # the route name with its namespaces, e.g. "api:agents-run"
    view: str  # the dotted view or consumer, with a viewset's actions: "...AgentViewSet.run"

    def line(self) -> str:
        return f"{self.methods:<25} {self.path}  {self.name or '-'}  {self.view}"


def all_routes() -> list[Route]:
    from interfaces.ws.routing import websocket_urlpatterns

    return [
        *asgi_routes(),
        *_walk(get_resolver().url_patterns, "", ""),
        *_walk(websocket_urlpatterns, "", "", websocket=True),
    ]


def asgi_routes() -> list[Route]:
    """The HTTP routes the ASGI router serves before Django sees a request (``asteros_site.asgi``)."""
    from interfaces.mcp.asgi import MCPEndpoint, enabled

    return [Route("GET,POST,DELETE", "/mcp[/]", "mcp", _dotted(MCPEndpoint))] if enabled() else []


def _walk(patterns: list, prefix: str, namespace: str, *, websocket: bool = False) -> Iterator[Route]:
    for entry in patterns:
        regex = prefix + _regex_of(entry)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, regex, inner, websocket=websocket)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else ""
            if websocket:
                consumer = getattr(entry.callback, "consumer_class", entry.callback)
                yield Route(WEBSOCKET, readable_path(regex), name, _dotted(consumer))
            else:
                methods, view = _describe_view(entry.callback)
                yield Route(methods, readable_path(regex), name, view)


def _regex_of(entry: URLPattern | URLResolver) -> str:
    regex = entry.pattern.regex.pattern
    regex = regex.removeprefix("^")
    if regex.endswith("\\Z"):
        regex = regex[:-2] + "$"
    return regex


def _describe_view(callback) -> tuple[str, str]:
    actions = getattr(callback, "actions", None)  # a DRF viewset's route: {"get": "list", ...}
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if actions and view_class is not None:
        methods = [method for method in HTTP_METHODS if method in actions]
        return _methods(methods), f"{_dotted(view_class)}.{','.join(actions[m] for m in methods)}"
    if view_class is not None:
        methods = [method for method in HTTP_METHODS if hasattr(view_class, method)]
        return _methods(methods), _dotted(view_class)
    return UNKNOWN_METHODS, _dotted(callback)


def _methods(methods: list[str]) -> str:
    return ",".join(method.upper() for method in methods) or UNKNOWN_METHODS


def _dotted(obj) -> str:
    wrapped = getattr(obj, "__wrapped__", obj)  # a decorated function view: the function itself
    qualname = getattr(wrapped, "__qualname__", None) or type(wrapped).__qualname__
    return f"{getattr(wrapped, '__module__', None) or type(wrapped).__module__}.{qualname}"


def readable_path(regex: str) -> str:
    """``api/^agents/(?P<id>[^/]+)/run$`` -> ``/api/agents/{id}/run``."""
    text, anchored = _simplify(regex)
    return "/" + text + ("" if anchored else "*")


def _simplify(regex: str) -> tuple[str, bool]:
    """The regex as a path, and whether it ends anchored (``$``)."""
    out: list[str] = []
    anchored = False
    index = 0
    while index < len(regex):
        char = regex[index]
        if char == "(":
            end = _closing(regex, index)
            group = regex[index + 1 : end]
            index = end + 1
            if group.startswith("?P<"):
                out.append("{" + group[3 : group.index(">")] + "}")
            else:
                inner, _ = _simplify(group.removeprefix("?:"))
                out.append(inner)
            if regex[index : index + 1] == "?":
                out[-1] = f"[{out[-1]}]"
                index += 1
            continue
        if char == "\\" and index + 1 < len(regex):
            out.append(regex[index + 1])
            index += 2
            continue
        if char == "$":
            anchored = True
        elif char == "?" and out:
            out[-1] = f"[{out[-1]}]"  # "/?": an optional trailing slash
        elif char != "^":
            out.append(char)
        index += 1
    return "".join(out), anchored


def _closing(regex: str, start: int) -> int:
    depth = 0
    index = start
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"Unbalanced group in {regex!r}")
