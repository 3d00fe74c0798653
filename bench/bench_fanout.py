"""Live fan-out of run events: the AsterOS bus against Channels' Redis channel layers.

One publishing process (this one) sends run events to N followers held by other processes, as
an API process holds the websockets and SSE streams that follow a run. Side by side, in
alternating order, on the same Redis, with the same payloads:

- ``bus``: ``cosmos.bus.RedisBus`` (one PUBLISH per message; each follower process reads every
  channel through one pattern subscription and fans out in memory);
- ``layer``: ``channels_redis.core.RedisChannelLayer`` with the options of our settings
  (``group_send`` to a group of N channels, one per follower, as Channels consumers would
  ``group_add`` their ``channel_name``);
- ``pubsub``: ``channels_redis.pubsub.RedisPubSubChannelLayer`` (the same, on Redis pub/sub).

Each trial: a warm-up, then a paced phase (``--events`` events at ``--rate`` per second: the
latency a client sees, publish → received, p50/p95 over every follower's events), then a burst
(``--events`` events back to back: deliveries per second = N x events / the time from the first
publish to the last event received by the last follower). ``INFO commandstats`` before and after
each trial gives the Redis commands per message sent (as Redis counts them: the calls a Lua script
makes count too; on a shared server, others' commands count as well: ``--private-redis`` starts a
throwaway ``redis-server`` for clean counts).

    .venv/bin/python bench/bench_fanout.py                       # 1/10/100 followers, 3 rounds
    .venv/bin/python bench/bench_fanout.py --private-redis       # clean command counts
    .venv/bin/python bench/bench_fanout.py --followers 1,10 --rounds 1 --events 200   # quick

Followers are spread over at most ``--processes`` subscriber processes (4: a few API processes
with many followers each; 100 processes would measure this 2-core machine's scheduler).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BACKENDS = ("bus", "layer", "pubsub")
# The options of asteros_site/settings.py's RedisChannelLayer when it was configured.
LAYER_CONFIG = {"capacity": 1500, "expiry": 30}
WARM_UP_EVENTS = 100
END = "end"
# A follower process gives up after this long without a message (a lost end marker).
IDLE_SECONDS = 20.0


def event_payload(seq: int) -> dict:
    """A token delta as the runtime emits it: ~300 bytes of JSON."""
    return {
        "type": "TEXT_MESSAGE_CONTENT",
        "messageId": "msg_7c1f2e0a9b3d4c5e8f6a1b2c3d4e5f60",
        "delta": ("The quick brown fox jumps over the lazy dog. " * 5)[:125],
        "timestamp": 1733540000000 + seq,
        "runId": "run_0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
    }


def message(seq: int, phase: str) -> dict:
    # The bus's shape ({"events": [[seq, event]]}) plus the send time and the phase.
    return {"events": [[seq, event_payload(seq)]], "phase": phase, "sent": time.monotonic_ns()}


# ---- the backends -------------------------------------------------------------------------------


def make_bus(url: str):
    from cosmos.bus import RedisBus

    class BenchBus(RedisBus):
        # The bus's own code; a pattern of its own so that other users of a shared Redis neither
        # receive the benchmark's messages nor add theirs to it.
        PATTERN = "asteros-bench:*"

    return BenchBus(url)


def make_layer(backend: str, url: str):
    if backend == "layer":
        from channels_redis.core import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], **LAYER_CONFIG)
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=[url])


class Publisher:
    def __init__(self, backend: str, url: str, topic: str) -> None:
        self.backend = backend
        self.topic = topic
        self.bus = make_bus(url) if backend == "bus" else None
        self.layer = None if backend == "bus" else make_layer(backend, url)

    async def send(self, body: dict) -> None:
        if self.bus is not None:
            self.bus.publish_sync(self.topic, body)
        else:
            await self.layer.group_send(self.topic, {"type": "run.event", **body})

    async def close(self) -> None:
        if self.layer is not None:
            with contextlib.suppress(Exception):
                await self.layer.flush() if self.backend == "pubsub" else await self.layer.close_pools()


# ---- a subscriber process -----------------------------------------------------------------------


async def _follow(backend: str, url: str, topic: str, followers: int, ready, results) -> None:
    receivers = []
    if backend == "bus":
        bus = make_bus(url)
        for _ in range(followers):
            subscription = await bus.subscribe(topic)
            receivers.append(lambda subscription=subscription: subscription.get(IDLE_SECONDS))
    else:
        layer = make_layer(backend, url)
        for _ in range(followers):
            name = await layer.new_channel()
            await layer.group_add(topic, name)
            receivers.append(lambda name=name: asyncio.wait_for(layer.receive(name), IDLE_SECONDS))

    async def one(receive) -> dict:
        latencies: dict[str, list[float]] = {}
        last_received: dict[str, int] = {}
        while True:
            try:
                body = await receive()
            except TimeoutError:
                break
            now = time.monotonic_ns()
            phase = body["phase"]
            if phase == END:
                break
            latencies.setdefault(phase, []).append((now - body["sent"]) / 1e6)
            last_received[phase] = now
        return {"latencies": latencies, "last_received": last_received}

    tasks = [asyncio.create_task(one(receive)) for receive in receivers]
    ready.put(os.getpid())
    results.put(await asyncio.gather(*tasks))


def subscriber_main(backend: str, url: str, topic: str, followers: int, ready, results) -> None:
    asyncio.run(_follow(backend, url, topic, followers, ready, results))


# ---- one trial ----------------------------------------------------------------------------------


def command_stats(url: str) -> dict[str, int]:
    import redis

    info = redis.Redis.from_url(url).info("commandstats")
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in info.items()}


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta.pop("info", None)  # our own two reads
    return {name: calls for name, calls in sorted(delta.items()) if calls > 0}


async def publish_phases(publisher: Publisher, events: int, rate: float) -> dict[str, int]:
    marks: dict[str, int] = {}
    for seq in range(1, WARM_UP_EVENTS + 1):
        await publisher.send(message(seq, "warm"))
    await asyncio.sleep(0.5)
    interval_ns = int(1e9 / rate)
    started = time.monotonic_ns()
    for seq in range(1, events + 1):
        # Paced from the start time, not by sleeping a fixed interval: a slow send is caught up.
        delay = (started + seq * interval_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.send(message(seq, "paced"))
    await asyncio.sleep(0.5)
    marks["burst_started"] = time.monotonic_ns()
    for seq in range(1, events + 1):
        await publisher.send(message(seq, "burst"))
    marks["burst_published"] = time.monotonic_ns()
    return marks


def trial(backend: str, url: str, followers: int, processes: int, events: int, rate: float) -> dict:
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    topic = f"asteros-bench:fanout:{uuid.uuid4().hex}" if backend == "bus" else f"fanout-{uuid.uuid4().hex}"
    counts = [followers // processes + (1 if i < followers % processes else 0) for i in range(processes)]
    workers = [
        context.Process(target=subscriber_main, args=(backend, url, topic, count, ready, results), daemon=True)
        for count in counts
        if count
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=60)
    time.sleep(0.3)  # every subscription in place on the Redis side

    async def publish() -> dict[str, int]:
        publisher = Publisher(backend, url, topic)
        try:
            before = command_stats(url)
            marks = await publish_phases(publisher, events, rate)
            # The end marker, until every follower has stopped (pub/sub may drop it under load).
            deadline = time.monotonic() + IDLE_SECONDS
            while any(worker.is_alive() for worker in workers) and time.monotonic() < deadline:
                if results.qsize() >= len(workers):
                    break
                await publisher.send({"events": [], "phase": END, "sent": time.monotonic_ns()})
                await asyncio.sleep(0.2)
            marks["commands"] = command_delta(before, command_stats(url))
            return marks
        finally:
            await publisher.close()

    marks = asyncio.run(publish())
    per_follower = [follower for _ in workers for follower in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
    paced = [ms for follower in per_follower for ms in follower["latencies"].get("paced", [])]
    burst_done = max(follower["last_received"].get("burst", 0) for follower in per_follower)
    burst_received = sum(len(follower["latencies"].get("burst", [])) for follower in per_follower)
    expected = followers * events
    commands = marks["commands"]
    # Every message sent to Redis in the trial (warm-up, paced, burst, end markers).
    sent = WARM_UP_EVENTS + 2 * events
    return {
        "p50_ms": statistics.median(paced) if paced else None,
        "p95_ms": statistics.quantiles(paced, n=20)[18] if len(paced) >= 20 else None,
        "deliveries_per_s": burst_received / ((burst_done - marks["burst_started"]) / 1e9) if burst_done else 0.0,
        "publish_per_s": events / ((marks["burst_published"] - marks["burst_started"]) / 1e9),
        "lost": 2 * expected - len(paced) - burst_received,
        "commands_per_event": sum(commands.values()) / sent,
        "commands": commands,
    }


# ---- the run ------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="asteros-bench-fanout-")
    command = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--dir", folder], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(raw: dict[str, dict[int, list[dict]]], levels: list[int]) -> list[dict]:
    rows = []
    for followers in levels:
        for backend in raw:
            rounds = raw[backend][followers]
            rows.append(
                {
                    "backend": backend,
                    "followers": followers,
                    "p50_ms": median([r["p50_ms"] for r in rounds]),
                    "p95_ms": median([r["p95_ms"] for r in rounds]),
                    "deliveries_per_s": median([r["deliveries_per_s"] for r in rounds]),
                    "publish_per_s": median([r["publish_per_s"] for r in rounds]),
                    "lost": sum(r["lost"] for r in rounds),
                    "commands_per_event": median([r["commands_per_event"] for r in rounds]),
                }
            )
    return rows


def render(rows: list[dict]) -> str:
    bus = {row["followers"]: row for row in rows if row["backend"] == "bus"}
    lines = [
        "| followers | backend | p50 ms | p95 ms | deliveries/s | publishes/s | lost | Redis commands/event "
        "| p50 ratio | deliveries ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = bus[row["followers"]]
        p50_ratio = row["p50_ms"] / base["p50_ms"] if row["p50_ms"] and base["p50_ms"] else None
        rate_ratio = base["deliveries_per_s"] / row["deliveries_per_s"] if row["deliveries_per_s"] else None
        lines.append(
            f"| {row['followers']} | {row['backend']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
            f"| {row['deliveries_per_s']:,.0f} | {row['publish_per_s']:,.0f} | {row['lost']} "
            f"| {row['commands_per_event']:.1f} "
            f"| {'-' if row['backend'] == 'bus' else f'{p50_ratio:.2f}'} "
            f"| {'-' if row['backend'] == 'bus' else f'{rate_ratio:.2f}'} |"
        )
    lines.append("")
    lines.append("ratios: the layer's p50 ÷ the bus's, the bus's deliveries/s ÷ the layer's (above 1: the bus wins)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--private-redis", action="store_true", help="start a throwaway redis-server")
    parser.add_argument("--followers", default="1,10,100")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second in the paced phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4, help="subscriber processes at most")
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    args = parser.parse_args()
    levels = [int(level) for level in args.followers.split(",")]
    backends = args.backends.split(",")
    if set(backends) - {"bus"} and importlib.util.find_spec("channels_redis") is None:
        sys.exit("channels_redis is missing: .venv/bin/pip install -r requirements-dev.txt")
    raw: dict[str, dict[int, list[dict]]] = {backend: {level: [] for level in levels} for backend in backends}
    with private_redis() if args.private_redis else contextlib.nullcontext(args.redis) as url:
        load_before = os.getloadavg()
        for round_index in range(args.rounds):
            # Alternate the order each round so that neither side always runs on a warmer machine.
            order = backends if round_index % 2 == 0 else list(reversed(backends))
            for followers in levels:
                for backend in order:
                    result = trial(backend, url, followers, min(followers, args.processes), args.events, args.rate)
                    raw[backend][followers].append(result)
                    print(
                        f"round {round_index + 1} {backend:>6} N={followers:<3} p50 {result['p50_ms']:.2f} ms "
                        f"p95 {result['p95_ms']:.2f} ms {result['deliveries_per_s']:,.0f} deliveries/s "
                        f"lost {result['lost']} commands/event {result['commands_per_event']:.1f} "
                        f"{result['commands']}",
                        flush=True,
                    )
        load_after = os.getloadavg()
    rows = summarize(raw, levels)
    print()
    print(
        f"{args.events} events of ~{len(json.dumps(event_payload(1)))} bytes per phase, paced at {args.rate:g}/s, "
        f"{args.rounds} rounds (medians), followers over at most {args.processes} processes, "
        f"load average {load_before[0]:.2f} → {load_after[0]:.2f}, {platform.python_version()}"
    )
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows, "raw": raw}))


if __name__ == "__main__":
    main()
