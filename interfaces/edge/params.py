"""Values a client sends in a path, a query string or a header: whole numbers bounded at the
edge, and run ids (UUIDs) recognized before they reach a lookup.

A number the database cannot hold (``?offset=9223372036854775808``) must be a 400 here, not an
overflow in SQLite or PostgreSQL later: every integer a client sends in a query parameter or a
header goes through ``whole_number``, and no bound is above ``MAX_INT`` (a signed 64-bit integer,
what both databases store).
"""

from __future__ import annotations

import uuid

from cosmos.services.errors import Invalid

MAX_INT = 2**63 - 1
# An offset into a list: far beyond any real list, and ``offset + limit`` still fits ``MAX_INT``.
MAX_OFFSET = 2**31 - 1


def parse_whole_number(raw: str, *, low: int = 0, high: int = MAX_INT) -> int:
    """``raw`` (ASCII digits, an optional sign) as an int within [low, high]; ValueError otherwise."""
    text = raw.strip()
    if not text or len(text) > 20 or not text.lstrip("+-").isdigit() or not text.isascii():
        raise ValueError(raw)
    value = int(text)
    if value < low or value > min(high, MAX_INT):
        raise ValueError(raw)
    return value


def whole_number(raw: str | None, name: str, *, default: int, low: int = 0, high: int = MAX_INT) -> int:
    """A query parameter as a bounded int: ``default`` when absent, a 400 (``invalid``) when bad."""
    if raw is None or raw == "":
        return default
    try:
        return parse_whole_number(raw, low=low, high=high)
    except ValueError:
        high = min(high, MAX_INT)
        raise Invalid(f"'{name}' must be a whole number from {low} to {high}.", details={name: raw}) from None


def canonical_uuid(value: str) -> str | None:
    """``value`` as a canonical UUID string, or None when it is not one (a lookup of a run id
    that is no UUID is a "not found", never a database error)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None
