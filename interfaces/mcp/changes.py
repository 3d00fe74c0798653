"""Telling listening clients that the tool list changed (2026-07-28's ``subscriptions/listen``).

The SDK's ``ListenHandler`` serves the listen streams from a subscription bus; ``CatalogueWatch``
is that bus, and publishes ``ToolsListChanged`` when the catalogue's fingerprint
(``catalogue.fingerprint``) changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ServerEvent, ToolsListChanged

from cosmos.db import db_call
from interfaces.mcp.catalogue import fingerprint

logger = logging.getLogger(__name__)


class CatalogueWatch(InMemorySubscriptionBus):
    """Publishes ``tools/list_changed`` to the open ``subscriptions/listen`` streams when the tool
    list changes. Definitions change in any process (the admin, the API, code), so while anyone
    listens, each process compares the catalogue's fingerprint every ``POLL_SECONDS``; nobody
    listening, it reads nothing."""

    POLL_SECONDS = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.listeners = 0
        self.seen: int | None = None  # the fingerprint the listeners were last told about

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self.listeners += 1
        done = False

        def counted() -> None:
            nonlocal done
            if not done:
                done = True
                self.listeners -= 1
            unsubscribe()

        return counted

    def serving(self, handler: ListenHandler) -> Callable[[Any, Any], Awaitable[Any]]:
        """``handler``, once the list a new listener is about to be told of is known: a change
        made right after the listen is acknowledged is compared with it, not missed."""

        async def listen(ctx: Any, params: Any) -> Any:
            if self.seen is None:
                self.seen = await db_call(fingerprint)
            return await handler(ctx, params)

        return listen

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.POLL_SECONDS)
            if not self.listeners:
                self.seen = None
                continue
            try:
                now = await db_call(fingerprint)
            except Exception:
                logger.exception("MCP: the tool catalogue could not be read")
                continue
            if self.seen is not None and now != self.seen:
                await self.publish(ToolsListChanged())
            self.seen = now
