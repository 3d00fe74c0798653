"""Durations read in whole units, the same on every page."""

from __future__ import annotations

import pytest

from cosmos.formatting import NONE, format_duration

CASES = [
    (None, NONE),
    (0, "0 ms"),
    (0.0004, "0 ms"),
    (0.85, "850 ms"),
    (0.9995, "1 s"),  # 999.5 ms rounds up to a second, not to "1000 ms"
    (1, "1 s"),
    (1.5, "2 s"),  # half up, as the browser rounds
    (2.5, "3 s"),
    (59.6, "1 min"),
    (123.4, "2 min 3 s"),
    (120, "2 min"),
    (3600, "1 h"),
    (3661, "1 h 1 min"),
    (90061, "1 d 1 h"),
    (-3, "0 ms"),  # a clock that went backwards is no negative duration
]


@pytest.mark.parametrize(("seconds", "expected"), CASES)
def test_durations_are_whole(seconds, expected):
    assert format_duration(seconds) == expected


def test_no_duration_has_a_fraction():
    for tenth in range(0, 40_000, 7):
        text = format_duration(tenth / 10)
        assert "." not in text, text
