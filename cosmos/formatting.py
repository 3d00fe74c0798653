"""How durations read on every page (the admin, the dashboard, the home page): whole units only.

``format_duration(123.4)`` is ``"2 min 3 s"``, ``format_duration(0.85)`` is ``"850 ms"``. The
dashboard's script (interfaces/console/static/asteros/dashboard.js, ``formatDuration``) follows
the same rules for the durations it ticks in the browser; a browser test holds the two together.
"""

from __future__ import annotations

NONE = "\u2013"  # an en dash, as the dashboard shows a missing value
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def _half_up(value: float) -> int:
    # As the browser's Math.round (Python's round() goes to the even neighbour at .5).
    return int(value + 0.5)


def format_duration(seconds: float | None) -> str:
    """Below a second in whole milliseconds; above, the two largest whole units ("1 h 5 min")."""
    if seconds is None:
        return NONE
    seconds = max(0.0, float(seconds))
    millis = _half_up(seconds * 1000)
    if millis < 1000:
        return f"{millis} ms"
    remaining = _half_up(seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count} {unit}")
        if len(parts) == 2:
            break
    # "2 min 0 s" reads as "2 min"
    return " ".join(part for index, part in enumerate(parts) if index == 0 or not part.startswith("0 "))
