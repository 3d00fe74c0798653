#!/usr/bin/env python
"""The load generator: a separate process, standard library only, 127.0.0.1 only, always bounded.

    python bench/loadgen.py run  --url http://127.0.0.1:P/api/agents/bench-0/run --body-json '{...}' \
        --concurrency 16 --count 200 --max-seconds 60
    python bench/loadgen.py run  --url http://127.0.0.1:P/agents/bench-0/runs --body-form 'message=hi&stream=true' ...
    python bench/loadgen.py wait --url 'http://127.0.0.1:P/api/agents/bench-0/run?wait=60' --body-json '{"input": "hi"}'
    python bench/loadgen.py wait --url http://127.0.0.1:P/agents/bench-0/runs --body-form 'message=hi&stream=false' ...
    python bench/loadgen.py get  --url http://127.0.0.1:P/api/agents --concurrency 16 --count 100000 --max-seconds 5

``run``: each of ``--concurrency`` clients sends a streaming run request, reads the SSE answer to
its end, and sends the next, until ``--count`` requests were sent or ``--max-seconds`` passed
(then no new request starts; those in flight get ``--request-timeout``). Per request it records
the time to the first text token (the first non-empty text event: AG-UI ``TEXT_MESSAGE_CONTENT``
or Agno ``RunContent``), the time to the last token, the time to the final event (end of the
stream), the events and text bytes delivered, and whether a successful terminal event came
(``RUN_FINISHED`` / ``RunCompleted``). ``wait``: a blocking run request, answered with one JSON
document once the run is over; a success is a 2xx status and a body whose top-level ``status`` is
``succeeded`` (ours, ``?wait=``) or ``COMPLETED`` (Agno's RunOutput, ``stream=false``); any other
status is counted as an error by its name. ``get``: the same loop with a GET, keep-alive;
``post``: a POST whose 2xx status is enough.

A minimal HTTP/1.1 client on asyncio streams (Content-Length, chunked, or read-to-close bodies;
keep-alive), so the generator's own cost per request stays small and equal for both servers.
Prints one line of JSON: the summary (and, with ``--samples``, the per-request records).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

OK_TERMINAL = (b'"RUN_FINISHED"', b'"RunCompleted"')
OK_STATUSES = ("succeeded", "completed")  # ours (?wait) and Agno's RunOutput (stream=false)
ERROR_TERMINAL = (b'"RUN_ERROR"', b'"RunError"', b'"RunCancelled"')
TEXT_EVENTS = (b'"TEXT_MESSAGE_CONTENT"', b'"RunContent"')
EMPTY_CONTENT = (b'"content":""', b'"content": ""')


class HTTPError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes, on_data=None) -> tuple[int, int]:
        """Send ``raw``; feed each body piece to ``on_data(bytes)``; return (status, body bytes)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            self.close()
            raise HTTPError("connection closed before the status line")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        chunked, keep_alive = False, True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.lower() == b"close":
                keep_alive = False
        total = 0
        if chunked:
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise HTTPError("connection closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = await reader.readexactly(size)
                await reader.readexactly(2)
                total += size
                if on_data:
                    on_data(data)
        elif length is not None:
            remaining = length
            while remaining:
                data = await reader.read(min(remaining, 1 << 16))
                if not data:
                    raise HTTPError("connection closed inside the body")
                remaining -= len(data)
                total += len(data)
                if on_data:
                    on_data(data)
        else:
            keep_alive = False
            while data := await reader.read(1 << 16):
                total += len(data)
                if on_data:
                    on_data(data)
        if not keep_alive:
            self.close()
        return status, total


class SSEStats:
    """Counts SSE events as the bytes arrive (events end with a blank line)."""

    __slots__ = ("buffer", "error", "events", "first_token", "last_token", "ok", "start", "text_bytes")

    def __init__(self, start: float) -> None:
        self.start = start
        self.buffer = b""
        self.events = 0
        self.text_bytes = 0
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.ok = False
        self.error = False

    def feed(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data.replace(b"\r\n", b"\n")
        *complete, self.buffer = self.buffer.split(b"\n\n")
        for event in complete:
            if not event.strip() or event.startswith(b":"):
                continue  # a keep-alive comment
            self.events += 1
            if any(marker in event for marker in TEXT_EVENTS) and not any(e in event for e in EMPTY_CONTENT):
                self.text_bytes += len(event)
                if self.first_token is None:
                    self.first_token = now
                self.last_token = now
            elif any(marker in event for marker in OK_TERMINAL):
                self.ok = True
            elif any(marker in event for marker in ERROR_TERMINAL):
                self.error = True


def run_output_problem(status: int, body: bytes) -> str | None:
    """Why a blocking run's answer is not a finished, successful run (None when it is)."""
    if not 200 <= status < 300:
        return f"http_{status}"
    try:
        data = json.loads(body)
    except ValueError:
        return "not_json"
    state = data.get("status") if isinstance(data, dict) else None
    if str(state).lower() in OK_STATUSES:
        return None
    return f"run_{str(state).lower()}"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_request(method: str, url: str, body: bytes, content_type: str | None, accept: str | None) -> tuple:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the load generator only targets this machine (127.0.0.1)")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "User-Agent: asteros-bench"]
    if accept:
        lines.append(f"Accept: {accept}")
    if body or method == "POST":
        lines.append(f"Content-Type: {content_type or 'application/json'}")
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return parts.hostname, parts.port, raw


async def run_load(args: argparse.Namespace) -> dict:
    if args.body_json is not None:
        body, content_type = args.body_json.encode(), "application/json"
    elif args.body_form is not None:
        body, content_type = args.body_form.encode(), "application/x-www-form-urlencoded"
    else:
        body, content_type = b"", None
    method = "GET" if args.mode == "get" else "POST"
    urls = args.url.split(",")  # several targets (e.g. agents) are used round-robin
    requests = [build_request(method, u, body, content_type, args.accept) for u in urls]
    host, port = requests[0][0], requests[0][1]
    records: list[tuple] = []
    errors: dict[str, int] = {}
    sent = 0
    started = time.perf_counter()
    deadline = started + args.max_seconds
    barrier_start = asyncio.Event()

    def note_error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client(index: int) -> None:
        nonlocal sent
        connection = Connection(host, port)
        await barrier_start.wait()
        try:
            while sent < args.count and time.perf_counter() < deadline:
                raw = requests[sent % len(requests)][2]
                sent += 1
                start = time.perf_counter()
                stats = SSEStats(start) if args.mode == "run" else None
                body = bytearray() if args.mode == "wait" else None
                on_data = stats.feed if stats else (body.extend if body is not None else None)
                try:
                    status, _size = await asyncio.wait_for(connection.request(raw, on_data), args.request_timeout)
                except TimeoutError:
                    connection.close()
                    note_error("timeout")
                    continue
                except (OSError, HTTPError, ValueError, asyncio.IncompleteReadError) as exc:
                    connection.close()
                    note_error(type(exc).__name__)
                    continue
                end = time.perf_counter()
                if status >= 400:
                    note_error(f"http_{status}")
                    continue
                if body is not None and (problem := run_output_problem(status, bytes(body))):
                    note_error(problem)
                    continue
                if stats is None:
                    records.append((start - started, end - start))
                    continue
                if not stats.ok:
                    note_error("run_error" if stats.error else "no_terminal_event")
                    continue
                records.append(
                    (
                        start - started,
                        end - start,
                        (stats.first_token - start) if stats.first_token else None,
                        (stats.last_token - start) if stats.last_token else None,
                        stats.events,
                        stats.text_bytes,
                    )
                )
        finally:
            connection.close()

    tasks = [asyncio.create_task(client(i)) for i in range(args.concurrency)]
    await asyncio.sleep(0)
    barrier_start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    return summarize(args, records, errors, elapsed)


def summarize(args: argparse.Namespace, records: list[tuple], errors: dict[str, int], elapsed: float) -> dict:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    latencies = [r[1] for r in records]
    # Throughput over the span of the completed requests (first start to last end).
    span = (max(r[0] + r[1] for r in records) - min(r[0] for r in records)) if records else elapsed
    result = {
        "mode": args.mode,
        "concurrency": args.concurrency,
        "completed": len(records),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "seconds": round(elapsed, 3),
        "per_s": round(len(records) / span, 2) if span > 0 else None,
        "p50_ms": ms(percentile(latencies, 0.5)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(max(latencies)) if latencies else None,
    }
    if args.mode == "run" and records:
        ttft = [r[2] for r in records if r[2] is not None]
        ttlt = [r[3] for r in records if r[3] is not None]
        events = sum(r[4] for r in records)
        result |= {
            "ttft_p50_ms": ms(percentile(ttft, 0.5)),
            "ttft_p99_ms": ms(percentile(ttft, 0.99)),
            "ttlt_p50_ms": ms(percentile(ttlt, 0.5)),
            "ttlt_p99_ms": ms(percentile(ttlt, 0.99)),
            "events_per_run": round(events / len(records), 1),
            "events_per_s": round(events / span, 1) if span > 0 else None,
            "text_kib_per_s": round(sum(r[5] for r in records) / 1024 / span, 1) if span > 0 else None,
        }
    if args.samples:
        result["samples"] = [[round(x, 6) if isinstance(x, float) else x for x in r] for r in records]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "mode",
        choices=("run", "wait", "get", "post"),
        help="run: SSE to its terminal event; wait: a blocking run, its JSON answer checked; post: status only",
    )
    parser.add_argument("--url", required=True, help="one URL, or several separated by commas (round-robin)")
    parser.add_argument("--body-json", default=None)
    parser.add_argument("--body-form", default=None)
    parser.add_argument("--accept", default=None)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--count", type=int, default=100, help="at most this many requests in all")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="no new request after this")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--samples", action="store_true", help="also print every request's record")
    args = parser.parse_args(argv)
    if not (1 <= args.concurrency <= 2000 and 1 <= args.count <= 1_000_000 and 0 < args.max_seconds <= 900):
        raise SystemExit("bounds: 1 <= concurrency <= 2000, count <= 1e6, 0 < max-seconds <= 900")
    print(json.dumps(asyncio.run(run_load(args))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
