"""JSON from clients, for every interface: bad JSON of any kind is bad input, never a crash.

Traps of ``json.loads`` that a client can spring with a small body:

- brackets nested about a thousand deep raise ``RecursionError``, not ``ValueError`` (a 500 in
  DRF, an internal error elsewhere);
- ``NaN`` and ``Infinity`` are accepted, but they are not JSON: stored in a JSON column they fail
  later, in the database (SQLite's JSON check, PostgreSQL's ``jsonb``), far from the request;
- ``\\u0000`` is valid JSON, but PostgreSQL stores a NUL character neither in a text column nor
  in ``jsonb``: accepted, it fails at the first write (in distributed mode only).

``loads`` (for the A2A, AG-UI and websocket bodies) and ``JSONParser`` (DRF's, which already
refuses NaN) raise the usual parse errors instead.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "the JSON is nested too deeply"
NUL = "it holds a NUL character (\\u0000), which cannot be stored"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def loads(data: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` for every input above (deep nesting, NaN, NUL)."""
    try:
        value = json.loads(data, parse_constant=_not_json)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if holds_nul(value):
        raise ValueError(NUL)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; deep nesting and NUL characters are a ``ParseError`` (400) too."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - {TOO_DEEP}") from None
        if holds_nul(data):
            raise ParseError(f"JSON parse error - {NUL}")
        return data


def holds_nul(value: Any) -> bool:
    """A NUL in any string or key of parsed JSON (a stack, not recursion: it may nest deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
