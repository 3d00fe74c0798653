"""A star's limits, read from ``Star.config`` and checked when the star is saved.

``max_delegations``  delegations the leader may make in one run (delegate mode); default 10.
``max_depth``        how deep stars may nest, the star itself counting as 1 (a worker that leads
                     another star runs that star one level deeper); 1 forbids nesting; default 3.
``member_timeout``   seconds one member's child run may take before it fails ``timeout``; default 600.
``rounds``           round_robin rounds; default 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULTS: dict[str, int | float] = {"max_delegations": 10, "max_depth": 3, "member_timeout": 600, "rounds": 2}
# (lowest, highest, integer only)
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "max_delegations": (1, 1000, True),
    "max_depth": (1, 10, True),
    "member_timeout": (0.01, 86_400, False),
    "rounds": (1, 20, True),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_delegations: int = 10
    max_depth: int = 3
    member_timeout: float = 600
    rounds: int = 2


def config_errors(config: Any) -> list[str]:
    """Human-readable problems of a star's config (empty when it is valid)."""
    if not isinstance(config, Mapping):
        return ["Config must be a JSON object."]
    errors: list[str] = []
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        errors.append(f"Unknown config key(s): {', '.join(unknown)}. Known keys: {', '.join(DEFAULTS)}.")
    for key, (low, high, integer) in BOUNDS.items():
        if key not in config or config[key] is None:
            continue
        error = value_error(key, config[key], low, high, integer)
        if error:
            errors.append(error)
    return errors


def value_error(key: str, value: Any, low: float, high: float, integer: bool) -> str | None:
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
        return f"{key} must be {kind} from {low:g} to {high:g}, not {value!r}."
    if not low <= value <= high:
        return f"{key} must be from {low:g} to {high:g}, not {value!r}."
    return None


def parse_limits(config: Mapping[str, Any] | None, **overrides: Any) -> Limits:
    """The limits of a config (defaults for what it leaves out); raises ValueError if invalid."""
    merged = {**DEFAULTS, **{k: v for k, v in (config or {}).items() if v is not None}}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    errors = config_errors({k: v for k, v in merged.items() if k in DEFAULTS})
    if errors:
        raise ValueError(" ".join(errors))
    return Limits(
        max_delegations=int(merged["max_delegations"]),
        max_depth=int(merged["max_depth"]),
        member_timeout=float(merged["member_timeout"]),
        rounds=int(merged["rounds"]),
    )
