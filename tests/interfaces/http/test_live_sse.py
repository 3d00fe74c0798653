"""SSE through a real ASGI server process (``manage.py asteros serve``), read as raw bytes.

The server runs embedded (its own SQLite file, in-process worker) on a free 127.0.0.1 port, once
per server kind (daphne, uvicorn) for the module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ApiProcess

from .test_runs import parse_sse

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def asteros_server(request, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"live-{request.param}")
    api = ApiProcess.embedded(folder, server=request.param, ASTEROS_ENABLE_LOGGING="false").start()
    try:
        created = httpx.post(
            f"{api.url}/api/agents",
            json={
                "id": "live-agent",
                "provider": "scripted",
                "parameters": {"reply_tokens": 8, "tokens_per_second": 25},
            },
        )
        assert created.status_code == 201, created.text
        yield api.url
    finally:
        api.close()


def test_sse_raw_bytes_are_lf_framed_one_data_line_per_event_and_flushed_per_event(asteros_server):
    arrivals: list[tuple[float, bytes]] = []
    with httpx.stream(
        "POST",
        f"{asteros_server}/api/agents/live-agent/run",
        json={"input": "hello"},
        headers={"Accept": "text/event-stream", "Accept-Encoding": "gzip"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in response.headers  # never gzipped
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic(), chunk))
    raw = b"".join(chunk for _, chunk in arrivals)
    frames = parse_sse(raw)
    assert [seq for seq, _ in frames] == list(range(1, len(frames) + 1))
    assert frames[0][1]["type"] == "RUN_STARTED" and frames[-1][1]["type"] == "RUN_FINISHED"
    assert sum(1 for _, e in frames if e["type"] == "TEXT_MESSAGE_CONTENT") >= 2
    # flushed event by event: the first event arrived well before the last one (8 tokens at 25/s)
    first = next(t for t, chunk in arrivals if b"RUN_STARTED" in chunk)
    last = next(t for t, chunk in arrivals if b"RUN_FINISHED" in chunk)
    assert last - first > 0.15


def test_last_event_id_resumes_after_that_event(asteros_server):
    run = httpx.post(f"{asteros_server}/api/agents/live-agent/run?wait=30", json={"input": "again"}, timeout=40).json()
    assert run["status"] == "succeeded"
    full = parse_sse(
        httpx.get(
            f"{asteros_server}/api/runs/{run['id']}/events", headers={"Accept": "text/event-stream"}, timeout=30
        ).content
    )
    resumed = parse_sse(
        httpx.get(
            run["links"]["events"], headers={"Accept": "text/event-stream", "Last-Event-ID": "3"}, timeout=30
        ).content
    )
    assert [seq for seq, _ in resumed] == [seq for seq, _ in full][3:]
    assert resumed[0][0] == 4 and resumed[-1][1]["type"] == "RUN_FINISHED"
    assert [event for _, event in resumed] == [event for _, event in full][3:]


def test_a_stream_started_before_the_events_exist_follows_them_live(asteros_server):
    run = httpx.post(f"{asteros_server}/api/agents/live-agent/run", json={"input": "live"}, timeout=10).json()
    with httpx.stream("GET", run["links"]["stream"], timeout=30) as response:
        raw = b"".join(response.iter_raw())
    frames = parse_sse(raw)
    assert frames[0][0] == 1 and frames[-1][1]["type"] == "RUN_FINISHED"
