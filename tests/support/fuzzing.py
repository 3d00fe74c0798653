"""Hypothesis settings for the fuzz tests: bounded in ``make test``, thorough in ``make fuzz``.

``FUZZ_EXAMPLES`` (the environment) sets the examples per fuzz target (per operation for the
schemathesis pass). Unset, each target runs its own small bounded count, derandomized, so
``make test`` is fast and repeatable; ``make fuzz`` sets ``FUZZ_EXAMPLES=200`` and draws new
random examples on every run. Fuzz tests are marked ``@pytest.mark.fuzz`` (``make fuzz`` runs
those only).
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cosmos.runtime.providers import preload_providers

# The engine imports the model SDKs on a background thread when it starts (preload_providers);
# Hypothesis walks sys.modules when it describes a strategy, and a dict that changes size under
# it fails the example ("dictionary changed size during iteration"). Imported here first, on the
# main thread, they are already there when the engine asks.
preload_providers()

BOUNDED_PROFILE = "asteros-bounded"
FUZZ_PROFILE = "asteros-fuzz"


def fuzz_examples() -> int | None:
    """``FUZZ_EXAMPLES`` as a positive int, or None when unset (the bounded run)."""
    raw = os.environ.get("FUZZ_EXAMPLES", "").strip()
    if not raw:
        return None
    value = int(raw)
    if value < 1:
        raise ValueError(f"FUZZ_EXAMPLES={raw!r}: give a positive number of examples per target")
    return value


settings.register_profile(
    BOUNDED_PROFILE,
    derandomize=True,  # the same examples on every run of make test
    database=None,  # nothing written under .hypothesis/
    deadline=None,  # requests touch the database and other threads: no per-example deadline
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.register_profile(FUZZ_PROFILE, parent=settings.get_profile(BOUNDED_PROFILE), derandomize=False)


def fuzz_settings(bounded: int, **overrides: Any) -> settings:
    """Settings for one fuzz target: ``bounded`` examples in make test, ``FUZZ_EXAMPLES`` in make fuzz."""
    examples = fuzz_examples()
    profile = settings.get_profile(FUZZ_PROFILE if examples else BOUNDED_PROFILE)
    return settings(profile, max_examples=examples or bounded, **overrides)


# --- strategies shared by the protocol fuzzers

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
# Any JSON value, small: what a confused client might put anywhere.
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy = JSON_VALUES) -> st.SearchStrategy:
    """``good`` about three times in four, else ``bad``: inputs plausible enough to reach the deeper
    code, and broken often. (``one_of`` would flatten nested choices and weigh them all alike.)"""
    return st.integers(0, 3).flatmap(lambda n: good if n < 3 else bad)


# Bodies that are not JSON objects at all, or not JSON: what a broken client sends.
GARBAGE_BODIES = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"a": NaN}',
            b'{"a": "\\u0000"}',  # valid JSON; PostgreSQL cannot store the NUL
            b"[Infinity]",
            b'{"a": "\\ud800"}',  # a lone surrogate: no UTF-8 encoding, no column holds it
            b'{"a": [1e400]}',  # a float that overflows to inf: not JSON either
            b'{"\\udfff": -1e999}',
            b"\xff\xfe\x00{}",
            b"[" * 5000 + b"]" * 5000,  # nested deeper than json.loads can recurse
            b'{"a": ' * 3000 + b"1" + b"}" * 3000,
        ]
    ),
)


# Query-string integers and cursors a confused client sends: past 64 bits, signed, not numbers.
QUERY_INTEGERS = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.sampled_from(["9223372036854775808", "-1", "1e3", "0x10", "", " 1", "١٢"]),
).map(str)


def _base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _cursor_at(position: str) -> str:
    return _base64(f"p={position}".encode())


CURSORS = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(_base64),
    st.text(alphabet="0123456789-:T+. ", max_size=30).map(_cursor_at),
)


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


def response_bytes(response: Any) -> bytes:
    """The whole body, streams included (an async stream is read to its end through the sync client)."""
    if not response.streaming:
        return response.content
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume asynchronous iterators")
        return b"".join(response)


def sse_frames(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name or None, parsed data) of each SSE frame; comments skipped."""
    frames: list[tuple[str | None, Any]] = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        frames.append((name, json.loads(data)))
    return frames


# --- the database after bad input


def assert_no_half_written_run() -> None:
    """Every run row is whole: queued with its dispatch, running with an owner and a lease, or
    terminal with its events gapless and one final event last."""
    from cosmos.models import TERMINAL_STATUSES, Run, RunStatus
    from tests.support.runs import assert_gapless

    for run in Run.objects.all():
        if run.status == RunStatus.QUEUED:
            assert run.dispatched_at is not None or run.parent_id is not None, run
        elif run.status == RunStatus.RUNNING:
            assert run.worker_id and run.lease_expires_at is not None, run
        else:
            assert run.status in TERMINAL_STATUSES and run.finished_at is not None, run
            assert_gapless(run.id)


def settle_runs(timeout: float = 30) -> None:
    """Wait until every run has ended, then check them all."""
    from cosmos.models import ACTIVE_STATUSES, Run
    from tests.support.runs import wait_for_run

    for run_id in Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("id", flat=True):
        wait_for_run(run_id, timeout=timeout)
    assert_no_half_written_run()
