"""JSON from clients, for every interface: bad JSON of any kind is bad input, never a crash.

Two traps of ``json.loads`` that a client can spring with a small body:

- brackets nested about a thousand deep raise ``RecursionError``, not ``ValueError`` (a 500 in
  DRF, an internal error elsewhere);
- ``NaN`` and ``Infinity`` are accepted, but they are not JSON: stored in a JSON column they fail
  later, in the database (SQLite's JSON check, PostgreSQL's ``jsonb``), far from the request.

``loads`` (for the A2A, AG-UI and websocket bodies) and ``JSONParser`` (DRF's, which already
refuses NaN) raise the usual parse errors instead.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "the JSON is nested too deeply"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def loads(data: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` for every malformed input (deep nesting, NaN)."""
    try:
        return json.loads(data, parse_constant=_not_json)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deeply is a ``ParseError`` (400) like any bad JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - {TOO_DEEP}") from None
