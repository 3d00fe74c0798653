"""Built-in tools: calculator, current_time and http_get (off unless an allowlist is configured)."""

from __future__ import annotations

import ast
import asyncio
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .tools import tool

if TYPE_CHECKING:
    import httpx

# ---------------------------------------------------------------------------------------------
# calculator: a whitelist AST evaluator, never eval()

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 10_000
MAX_INT_BITS = 12_000  # ~3,600 digits: below Python's int-to-str limit, and cheap to compute

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _check_size(value: int | float) -> int | float:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError("result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("result is not a finite number")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent is too large (limit {MAX_EXPONENT})")
    # Refuse before computing, not after: 9 ** 9 ** 9 would take minutes.
    big_int = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if big_int and abs(base).bit_length() * exponent > MAX_INT_BITS + 64:
        raise ValueError("result is too large")
    try:
        result = base**exponent
    except OverflowError:
        raise ValueError("result is too large") from None
    if isinstance(result, complex):
        raise ValueError("the result is not a real number")
    return result


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and isinstance(node.op, ast.Mult) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise ValueError("result is too large")
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
        except OverflowError:
            raise ValueError("result is too large") from None
    raise ValueError(f"unsupported element: {type(node).__name__} (only numbers, + - * / // % ** and parentheses)")


def evaluate_expression(expression: str) -> int | float:
    """Evaluate arithmetic safely; raises ValueError for anything else."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise ValueError("not a valid arithmetic expression") from None
    try:
        value = _evaluate(tree)
    except RecursionError:
        raise ValueError("expression is nested too deeply") from None
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return float(f"{value:.12g}")  # hide binary noise such as 0.30000000000000004
    return value


@tool
async def calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression exactly: numbers, + - * / // % ** and parentheses.

    Args:
        expression: The expression, for example "(2 + 3) * 4 ** 2".
    """
    # async on purpose: evaluation is bounded and cheap, so it runs inline instead of in a thread.
    return evaluate_expression(expression)


# ---------------------------------------------------------------------------------------------
# current_time


@tool
def current_time(timezone: str | None = None) -> str:
    """The current date and time in ISO 8601.

    Args:
        timezone: An IANA time zone such as "Europe/Paris"; UTC when omitted.
    """
    if not timezone:
        return datetime.now(UTC).isoformat(timespec="seconds")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    return datetime.now(zone).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# http_get: disabled unless ASTEROS_HTTP_GET_ALLOWLIST (a Django setting) names the hosts it may reach

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_HTTP_TIMEOUT = 10.0
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class HttpGetOptions:
    """What the operator allows ``http_get``: no hosts (the default) keeps the tool off."""

    allowlist: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_HTTP_TIMEOUT


# The runtime reads no settings itself: the cosmos app installs a source at start-up
# (``cosmos.configuration``), read at every call so that a change of settings applies at once.
_options_source: Callable[[], HttpGetOptions] = HttpGetOptions


def set_http_get_options_source(source: Callable[[], HttpGetOptions]) -> None:
    global _options_source
    _options_source = source


def http_get_options() -> tuple[tuple[str, ...], int, float]:
    """(allowlist, max bytes, timeout seconds), from the installed source, at call time."""
    options = _options_source()
    return options.allowlist, options.max_bytes, options.timeout


def host_allowed(url: httpx.URL, allowlist: tuple[str, ...]) -> bool:
    """Exact host, ``host:port``, or ``*.domain`` (subdomains only): ``cosmos.outbound``'s rule."""
    from cosmos.outbound import url_allowed

    return url_allowed(url, allowlist)


@tool(timeout=60)
async def http_get(url: str) -> dict[str, Any]:
    """Fetch a web page or API response with HTTP GET (only hosts on the operator's allowlist).

    Args:
        url: The http:// or https:// address to fetch.
    """
    allowlist, max_bytes, timeout = http_get_options()
    if not allowlist:
        raise PermissionError("http_get is disabled: set ASTEROS_HTTP_GET_ALLOWLIST to the hosts it may fetch")
    import httpx  # only when the tool is on: keeps importing the runtime light

    from cosmos import outbound  # the one outbound client: address checks, caps, one error

    # The body is cut at max_bytes below; the client's own cap (a larger one) stops a huge
    # announced or streamed body from being read at all.
    client = outbound.async_client(
        timeout=timeout, deadline=timeout, max_bytes=max(max_bytes * 16, 1 << 20), follow_redirects=False
    )
    try:
        async with asyncio.timeout(timeout), client:
            return await _fetch(client, httpx.URL(url), allowlist, max_bytes)
    except TimeoutError:
        outbound.logger.warning("outbound request failed: GET %s: took longer than %g s", url, timeout)
        raise outbound.OutboundError() from None


async def _fetch(client: httpx.AsyncClient, current: httpx.URL, allowlist: tuple[str, ...], max_bytes: int) -> dict:
    from cosmos import outbound

    # Redirects are followed by hand so that every hop is checked against the allowlist.
    for _ in range(MAX_REDIRECTS + 1):
        if current.scheme not in ("http", "https"):
            raise PermissionError(f"only http and https URLs are allowed, not {current.scheme!r}")
        if not host_allowed(current, allowlist):
            raise PermissionError(f"host {current.host!r} is not on the http_get allowlist")
        async with client.stream("GET", current) as response:
            location = response.headers.get("location")
            if response.is_redirect and location:
                current = current.join(location)
                continue
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    del body[max_bytes:]
                    truncated = True
                    break
            return {
                "url": str(current),
                "status": response.status_code,
                "content_type": response.headers.get("content-type", ""),
                "content": body.decode(response.encoding or "utf-8", errors="replace"),
                "truncated": truncated,
            }
    outbound.logger.warning("outbound request failed: GET %s: more than %d redirects", current, MAX_REDIRECTS)
    raise outbound.OutboundError()


@tool
def ask_human(question: str, schema: dict | None = None) -> str:
    """Ask a person a question and wait for the answer. Use it when you need a decision, a fact
    or a confirmation only a person can give.

    Args:
        question: The question, as the person will read it.
        schema: Optional JSON schema the answer must match (e.g. {"type": "boolean"}).
    """
    # The loop never runs this: the call interrupts the run, and the answer is its result.
    return "Nobody can be asked from here."
