"""Clients that follow a run's stream from a real server the way a careful client does: when the
connection drops (a restarted server, a proxy), they reconnect and resume after the last seq they
got (SSE ``Last-Event-ID``, websocket ``?after=N``), retrying while the server is down or answers
503, until the run's final event or a deadline.

They keep every event as received, repeats included, so a test can check that the sequence is
exactly the stored one: nothing lost, nothing repeated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL_TYPES = ("RUN_FINISHED", "RUN_ERROR")
RETRY_SECONDS = 0.2
# Answers that mean "try again": the server is up but a dependency is not (503), or a proxy
# in front of it says the server is gone (502, 504).
RETRY_STATUSES = (502, 503, 504)


@dataclass
class Followed:
    events: list[tuple[int, dict]] = field(default_factory=list)
    connections: int = 0  # successful (re)connections; above 1 means it resumed
    refused: list[str] = field(default_factory=list)  # why an attempt got no stream (e.g. "503 ...")

    @property
    def last_seq(self) -> int:
        return self.events[-1][0] if self.events else 0

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1][1].get("type") in TERMINAL_TYPES


def _parse_frame(frame: bytes) -> tuple[int, dict] | None:
    """(seq, event) of one SSE frame; None for a comment or a frame without data."""
    seq, data = None, []
    for line in frame.decode().split("\n"):
        if line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if seq is None or not data:
        return None
    return seq, json.loads("\n".join(data))


async def follow_sse(url: str, *, timeout: float, after: int = 0, into: Followed | None = None) -> Followed:
    """Follow ``GET url`` (a run's ``events`` link) as SSE until the run's final event; ``into``
    is filled as events arrive (another thread may watch it)."""
    followed = into if into is not None else Followed()
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0)) as client:
        while not followed.finished:
            if time.monotonic() > deadline:
                raise AssertionError(f"SSE {url}: no final event within {timeout:g}s; {_summary(followed)}")
            headers = {"Accept": "text/event-stream"}
            last = followed.last_seq or after
            if last:
                headers["Last-Event-ID"] = str(last)
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        body = (await response.aread()).decode(errors="replace")[:300]
                        if response.status_code not in RETRY_STATUSES:
                            raise AssertionError(f"SSE {url}: {response.status_code} {body}")
                        followed.refused.append(f"{response.status_code} {body}")
                    else:
                        followed.connections += 1
                        await _read_frames(response, followed)
            except httpx.TransportError:
                pass  # dropped or refused: resume after the last seq
            if not followed.finished:
                await asyncio.sleep(RETRY_SECONDS)
    return followed


async def _read_frames(response: httpx.Response, followed: Followed) -> None:
    buffer = b""
    async for chunk in response.aiter_raw():
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            parsed = _parse_frame(frame)
            if parsed is not None:
                followed.events.append(parsed)
                if followed.finished:
                    return


async def follow_ws(
    base_url: str, run_id: str, *, timeout: float, after: int = 0, into: Followed | None = None
) -> Followed:
    """Follow ``ws/runs/{run_id}/?after=N`` until its ``end`` message; ``into`` as for SSE."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    followed = into if into is not None else Followed()
    deadline = time.monotonic() + timeout
    ended = False
    while not ended:
        if time.monotonic() > deadline:
            raise AssertionError(f"ws run {run_id}: no end within {timeout:g}s; {_summary(followed)}")
        url = f"{base_url}/ws/runs/{run_id}/?after={followed.last_seq or after}"
        try:
            async with connect(url, open_timeout=5, close_timeout=1) as socket:
                followed.connections += 1
                async for raw in socket:
                    message = json.loads(raw)
                    if message["type"] == "event":
                        followed.events.append((message["seq"], message["event"]))
                    elif message["type"] == "end":
                        ended = True
                        break
                    elif message["type"] == "error":
                        if message.get("code") != "unavailable":
                            raise AssertionError(f"ws run {run_id}: {message}")
                        followed.refused.append(f"{message['code']} {message.get('message', '')}")
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):
            pass  # dropped or refused: resume after the last seq
        if not ended:
            await asyncio.sleep(RETRY_SECONDS)
    return followed


def _summary(followed: Followed) -> str:
    return (
        f"{len(followed.events)} event(s) up to seq {followed.last_seq}, {followed.connections} connection(s), "
        f"refusals: {followed.refused[-3:]}"
    )


class Followers:
    """Clients following streams on an event loop of their own (a thread), while the test breaks
    things from its own thread::

        with Followers() as followers:
            sse = followers.sse(run["links"]["events"], timeout=60)
            ...  # wait for sse.progress.events, restart a server
            assert sse.result(timeout=60).finished
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stream-followers", daemon=True)

    def __enter__(self) -> Followers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        """Stop clients still at work (a failed test), letting them close their connections."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def sse(self, url: str, *, timeout: float, after: int = 0) -> Following:
        followed = Followed()
        return Following(followed, self._submit(follow_sse(url, timeout=timeout, after=after, into=followed)))

    def ws(self, base_url: str, run_id: str, *, timeout: float, after: int = 0) -> Following:
        followed = Followed()
        coroutine = follow_ws(base_url, run_id, timeout=timeout, after=after, into=followed)
        return Following(followed, self._submit(coroutine))

    def _submit(self, coroutine: Coroutine[Any, Any, Followed]) -> concurrent.futures.Future[Followed]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


@dataclass
class Following:
    """A client at work: ``progress`` fills as events arrive; ``result()`` waits for the end."""

    progress: Followed
    future: concurrent.futures.Future[Followed]

    def result(self, timeout: float) -> Followed:
        return self.future.result(timeout=timeout)

    def wait_for_events(self, count: int, timeout: float) -> None:
        """Block until ``count`` events arrived; the client's own error if it gave up first."""
        deadline = time.monotonic() + timeout
        while len(self.progress.events) < count:
            if self.future.done():
                self.future.result()  # raises what stopped it
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} event(s) within {timeout:g}s; {_summary(self.progress)}")
            time.sleep(0.05)
