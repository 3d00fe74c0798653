"""JSON from clients, for every door: bad JSON of any kind is bad input, never a crash.

One parser (``loads``) decides what JSON the server accepts; DRF's ``JSONParser`` below, the
A2A and AG-UI bodies and websocket frames all go through it. It refuses, at the edge, what
``json.loads`` lets through and something later fails on (a 500 far from the request):

- brackets nested about a thousand deep raise ``RecursionError``, not ``ValueError``; anything
  nested deeper than ``MAX_DEPTH`` is refused before that;
- ``NaN`` and ``Infinity`` are accepted by ``json.loads``, and so is a number too large for a
  float (``1e400`` becomes ``inf``); none of them is JSON, and stored in a JSON column they fail
  later, in the database (SQLite's JSON check, PostgreSQL's ``jsonb``);
- ``\\u0000`` is valid JSON, but PostgreSQL stores a NUL character neither in a text column nor
  in ``jsonb``;
- a lone surrogate (``"\\ud800"``) decodes to a Python string that cannot be encoded as UTF-8:
  every later write or render of it fails.

``loads`` raises ``ValueError``; ``JSONParser`` raises DRF's ``ParseError`` (a 400).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from cosmos.services.errors import ServiceError

MAX_DEPTH = 64  # arrays and objects inside each other; real requests nest a handful deep

TOO_DEEP = f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)"
NUL = "it holds a NUL character (\\u0000), which cannot be stored"
SURROGATE = "it holds a lone UTF-16 surrogate (such as \\ud800), which is not a character"
NOT_FINITE = "it holds a number too large to represent"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(NOT_FINITE)
    return value


def loads(data: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` for every input above."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the body is not UTF-8") from None
    try:
        value = json.loads(data, parse_constant=_not_json, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    problem = unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on ``loads``: every problem above is a ``ParseError`` (400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("JSON parse error - the body is empty")
        try:
            return loads(raw)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing what no column can hold as ``JSONParser`` does (a 400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_unstorable_fields(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser (the browsable API's forms), refusing the same (a 400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_unstorable_fields(parsed.data)
        return parsed


def _refuse_unstorable_fields(data: Any) -> None:
    # A NUL in a form field reaches the database as it is (a lookup, a save) and PostgreSQL
    # refuses it there: a 500 far from the request.
    for key, values in data.lists():
        if problem := unstorable([key, *values]):
            raise ParseError(f"a form field cannot be kept: {problem}")


def unstorable(value: Any) -> str | None:
    """Why parsed JSON cannot be kept (too deep, a NUL, a lone surrogate), or None.

    A stack, not recursion: the value may nest deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL
            if not item.isascii() and _has_surrogate(item):
                return SURROGATE
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json`` (A2A's ``application/a2a+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def require_json_body(content_type: str | None, body: bytes) -> None:
    """A body sent without a JSON ``Content-Type`` is a 415, on every door (DRF's parsers do
    the same for REST): it is not read as JSON just because it parses."""
    if body and not is_json_media_type(content_type):
        shown = (content_type or "").split(";", 1)[0].strip() or "none"
        raise UnsupportedMediaType(
            f"Send the body as JSON (Content-Type: application/json); got Content-Type {shown!r}.",
            details={"content_type": content_type or None},
        )
