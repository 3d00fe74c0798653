"""Live fan-out of run events and cancel signals between processes.

The database is the truth; the bus only carries the live tail so that followers need not poll.
Embedded mode uses ``LocalBus`` (threads of one process); distributed mode uses Redis pub/sub.
A follower that misses a message (a Redis restart, a slow consumer) notices the gap by ``seq``
and re-reads the database, so the bus may be lossy without readers ever losing an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CANCEL_CHANNEL = "asteros:cancel"
LIFECYCLE_CHANNEL = "asteros:lifecycle"


def run_channel(run_id: str) -> str:
    return f"asteros:run:{run_id}"


class Subscription:
    """A queue of messages for one channel, fed from any thread, read from one event loop."""

    def __init__(self, bus: Bus, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.channel = channel
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def deliver(self, message: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    async def get(self, timeout: float) -> Any:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel of the caller
        # that lands as its own timeout fires, and the follower would then never stop.
        async with asyncio.timeout(timeout):
            return await self.queue.get()

    async def close(self) -> None:
        await self.bus.unsubscribe(self)


class Bus:
    # Publishing stays in this process (no network round trip): a publisher on an event loop
    # may call publish_sync there instead of handing it to a thread.
    in_process = False

    async def publish(self, channel: str, message: Any) -> None:
        raise NotImplementedError

    def publish_sync(self, channel: str, message: Any) -> None:
        raise NotImplementedError

    def publish_many(self, items: list[tuple[str, Any]]) -> None:
        """Publish several messages, in order, in as few round trips as the bus allows."""
        for channel, message in items:
            self.publish_sync(channel, message)

    async def subscribe(self, channel: str) -> Subscription:
        raise NotImplementedError

    async def unsubscribe(self, subscription: Subscription) -> None:
        raise NotImplementedError

    def add_listener(self, channel: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(message)`` from a background thread for every message on ``channel``."""
        raise NotImplementedError

    def add_tap(self, callback: Callable[[str, Any], None]) -> None:
        """Call ``callback(channel, message)`` for every message this process's fan-out delivers,
        on the delivering thread (``cosmos.logtail`` notes what this process published)."""
        raise NotImplementedError


class LocalBus(Bus):
    """In-process bus: one process, any number of threads and event loops."""

    in_process = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._listeners: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._taps: list[Callable[[str, Any], None]] = []

    def publish_sync(self, channel: str, message: Any) -> None:
        with self._lock:
            targets = list(self._subscriptions.get(channel, ()))
            listeners = list(self._listeners.get(channel, ()))
        for subscription in targets:
            # RuntimeError: the follower's loop is gone; it unsubscribes itself.
            with contextlib.suppress(RuntimeError):
                subscription.deliver(message)
        for callback in listeners:
            try:
                callback(message)
            except Exception:
                logger.exception("bus listener failed", extra={"channel": channel})
        for tap in self._taps:
            try:
                tap(channel, message)
            except Exception:
                logger.exception("bus tap failed", extra={"channel": channel})

    async def publish(self, channel: str, message: Any) -> None:
        self.publish_sync(channel, message)

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(self, channel, asyncio.get_running_loop())
        with self._lock:
            self._subscriptions[channel].add(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions[subscription.channel].discard(subscription)
            if not self._subscriptions[subscription.channel]:
                del self._subscriptions[subscription.channel]

    def add_listener(self, channel: str, callback: Callable[[Any], None]) -> None:
        with self._lock:
            self._listeners[channel].append(callback)

    def add_tap(self, callback: Callable[[str, Any], None]) -> None:
        with self._lock:
            self._taps = [*self._taps, callback]  # a new list: publishers iterate it without the lock


class RedisBus(LocalBus):
    """Redis pub/sub between processes, delivered locally through ``LocalBus``'s fan-out.

    One reader thread per process pattern-subscribes to every AsterOS channel once, so
    following a run never waits for a SUBSCRIBE round trip and the (not thread-safe) pubsub
    object is touched by that thread alone. It reconnects by itself after a Redis restart.
    """

    in_process = False

    PATTERN = "asteros:*"

    def __init__(self, url: str) -> None:
        import redis

        super().__init__()
        self._url = url
        self._publisher = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._reader_started = False
        self._reader_lock = threading.Lock()
        self._connected = threading.Event()

    def publish_sync(self, channel: str, message: Any) -> None:
        try:
            self._publisher.publish(channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # lossy by design: followers re-read the database
            logger.warning("bus publish failed: %s", exc.__class__.__name__)

    async def publish(self, channel: str, message: Any) -> None:
        await asyncio.to_thread(self.publish_sync, channel, message)

    def publish_many(self, items: list[tuple[str, Any]]) -> None:
        try:
            pipeline = self._publisher.pipeline(transaction=False)
            for channel, message in items:
                pipeline.publish(channel, json.dumps(message, separators=(",", ":")))
            pipeline.execute()
        except Exception as exc:  # lossy by design: followers re-read the database
            logger.warning("bus publish failed: %s", exc.__class__.__name__)

    async def subscribe(self, channel: str) -> Subscription:
        self._ensure_reader()
        return await super().subscribe(channel)

    def add_listener(self, channel: str, callback: Callable[[Any], None]) -> None:
        self._ensure_reader()
        super().add_listener(channel, callback)

    def _ensure_reader(self) -> None:
        with self._reader_lock:
            if self._reader_started:
                return
            self._reader_started = True
            threading.Thread(target=self._read_forever, name="asteros-bus-reader", daemon=True).start()
        # Wait briefly for the first connection so a follower's first live event is not missed;
        # if Redis is down, followers still work from the database.
        self._connected.wait(timeout=2)

    def _read_forever(self) -> None:
        import time

        import redis

        backoff = 0.2
        while True:
            try:
                client = redis.Redis.from_url(self._url, socket_connect_timeout=3, health_check_interval=10)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(self.PATTERN)
                self._connected.set()
                backoff = 0.2
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "pmessage":
                        super().publish_sync(message["channel"].decode(), json.loads(message["data"]))
            except Exception as exc:
                self._connected.clear()
                logger.warning("bus reader reconnecting after %s", exc.__class__.__name__)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def ping(self) -> bool:
        return bool(self._publisher.ping())


_bus: Bus | None = None
_bus_lock = threading.Lock()


def get_bus() -> Bus:
    global _bus
    with _bus_lock:
        if _bus is None:
            url = settings.ASTEROS.redis_url
            _bus = RedisBus(url) if url else LocalBus()
        return _bus
