"""The reusable SSE module: framing, heartbeats, and releasing the source."""

from __future__ import annotations

import asyncio
import json

from interfaces.edge.sse import format_comment, format_event, parse_last_event_id, stream_events


def test_one_frame_is_id_and_one_data_line_lf_only():
    frame = format_event(7, {"type": "TEXT_MESSAGE_CONTENT", "delta": "two\nlines ✓"})
    assert frame.endswith(b"\n\n") and b"\r" not in frame
    lines = frame.decode().split("\n")[:-2]
    assert lines[0] == "id: 7" and len(lines) == 2 and lines[1].startswith("data: ")
    assert json.loads(lines[1][6:]) == {"type": "TEXT_MESSAGE_CONTENT", "delta": "two\nlines ✓"}
    assert format_event(None, "a\nb", event="x") == b"event: x\ndata: a\ndata: b\n\n"
    assert format_comment() == b": keep-alive\n\n"


def test_last_event_id_parsing():
    assert parse_last_event_id(None) is None and parse_last_event_id(" ") is None
    assert parse_last_event_id("12") == 12
    for bad in ("x", "-1", "1.5"):
        try:
            parse_last_event_id(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_heartbeats_while_idle_without_losing_the_pending_event():
    async def slow():
        yield 1, {"type": "RUN_STARTED"}
        await asyncio.sleep(0.35)
        yield 2, {"type": "RUN_FINISHED"}

    frames = [frame async for frame in stream_events(slow(), heartbeat=0.1)]
    assert frames[0].startswith(b"id: 1\n") and frames[-1].startswith(b"id: 2\n")
    assert frames.count(format_comment()) >= 2


async def test_closing_the_stream_closes_the_source():
    closed = asyncio.Event()

    async def endless():
        try:
            seq = 0
            while True:
                seq += 1
                yield seq, {"type": "CUSTOM"}
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    stream = stream_events(endless(), heartbeat=5)
    assert (await anext(stream)).startswith(b"id: 1\n")
    await stream.aclose()
    assert closed.is_set()


async def test_an_encoder_can_translate_or_skip_events():
    async def source():
        for seq in (1, 2, 3):
            yield seq, {"type": "X", "n": seq}

    def only_odd(seq, event):
        return format_event(seq, {"n": event["n"]}, event="odd") if seq % 2 else None

    frames = [frame async for frame in stream_events(source(), encode=only_odd)]
    assert frames == [b'id: 1\nevent: odd\ndata: {"n":1}\n\n', b'id: 3\nevent: odd\ndata: {"n":3}\n\n']
