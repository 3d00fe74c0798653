"""Remote A2A agents declared in the admin, usable in every process without a restart.

``install()`` (run by the interfaces app's ``ready()``, so in API and worker processes alike):

- adds a resolver to cosmos's tool registry: a tool name the registry does not know is looked
  up among the enabled ``RemoteAgent`` rows, so agents can list a declared remote agent in
  ``tools`` (their validation accepts it) and runs find it;
- registers the ``a2a`` provider: an agent with ``provider="a2a"`` and ``model="<name>"`` *is*
  that remote agent (a star member, for instance).

Lookups are cached per process for ``CACHE_SECONDS``: a row saved, changed or disabled is seen
by every process within that time (at once by the process that saved it, which forgets its
cache on save). A tool is rebuilt only when its row changed, so a remote agent's card is read
once and not per run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from cosmos.db import db_call
from cosmos.runtime.providers import register_provider
from cosmos.runtime.tools import Tool, tool_registry
from cosmos.secrets import SecretReferenceError, resolve_credential
from interfaces.connectors.models import DEFAULT_AUTH_HEADER, RemoteAgent
from interfaces.connectors.remote import (
    RemoteA2AAgent,
    RemoteA2AError,
    RemoteAgentProvider,
    code_remote,
    remote_agent_tool,
)

CACHE_SECONDS = 5.0
CARD_CHECK_TIMEOUT = 5.0  # reading a card when a row is saved: the admin waits for it
PROVIDER = "a2a"
T = TypeVar("T")


def auth_headers(row: RemoteAgent, *, required: bool = True) -> Callable[[], dict[str, str]]:
    """The auth header of a row, its reference resolved (``cosmos.secrets``) at call time."""
    name, reference, header = row.name, row.auth_secret, row.auth_header or DEFAULT_AUTH_HEADER

    def headers() -> dict[str, str]:
        if not reference:
            return {}
        try:
            token = resolve_credential(reference)
        except SecretReferenceError as exc:  # a row from before the rules: never read such a variable
            raise RemoteA2AError(f"The token of remote agent {name!r} is refused: {exc}") from None
        if not token:
            if not required:
                return {}
            raise RemoteA2AError(f"The token of remote agent {name!r} ({reference}) is not set in this process.")
        return {header: f"Bearer {token}" if header.lower() == "authorization" else token}

    return headers


def client_for(row: RemoteAgent, *, auth_required: bool = True) -> RemoteA2AAgent:
    return RemoteA2AAgent(
        row.url, headers=auth_headers(row, required=auth_required), binding=row.binding or None, timeout=row.timeout
    )


@dataclass(frozen=True, slots=True)
class Declared:
    """One enabled row, as this process uses it: its client and its tool."""

    version: tuple[datetime, str]
    remote: RemoteA2AAgent
    tool: Tool


def _version(row: RemoteAgent) -> tuple[datetime, str]:
    return row.updated_at, row.tool_description


class DeclaredAgents:
    """The enabled rows by name, cached for ``ttl`` seconds (misses included) in this process."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Declared | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Declared | None:
        """From synchronous code (it may read the database)."""
        hit = self._entries.get(name)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        return off_the_loop(self._load, name)

    async def aget(self, name: str) -> Declared | None:
        """From asyncio code: a cache miss reads the database on cosmos's database threads."""
        hit = self._entries.get(name)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        return await db_call(self._load, name)

    def names(self) -> list[str]:
        return off_the_loop(lambda: list(RemoteAgent.objects.filter(enabled=True).values_list("name", flat=True)))

    def forget(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name, None)

    def _load(self, name: str) -> Declared | None:
        row = RemoteAgent.objects.filter(pk=name, enabled=True).first()
        with self._lock:
            previous = self._entries.get(name)
            entry: Declared | None = None
            if row is not None:
                kept = previous[1] if previous else None
                if kept is not None and kept.version == _version(row):
                    entry = kept  # unchanged: keep the client, and the card it has read
                else:
                    remote = client_for(row)
                    entry = Declared(
                        _version(row), remote, remote_agent_tool(row.name, remote, description=row.tool_description)
                    )
            self._entries[name] = (self.clock() + self.ttl, entry)
        return entry


def off_the_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` here, or on a short-lived thread when this thread runs an event loop (Django
    refuses queries there); that happens only on a cache miss of code that should have used ``aget``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)

    def on_a_thread() -> T:
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(on_a_thread).result()


declared_agents = DeclaredAgents()


class DeclaredToolResolver:
    """cosmos's tool registry asks this for the names it does not know."""

    def resolve(self, name: str) -> Tool | None:
        entry = declared_agents.get(name)
        return entry.tool if entry is not None else None

    def names(self) -> list[str]:
        # Only what ``resolve`` answers now (its cache may lag the table by up to CACHE_SECONDS).
        return [name for name in declared_agents.names() if declared_agents.get(name) is not None]


resolver = DeclaredToolResolver()


async def find_remote(name: str) -> RemoteA2AAgent | None:
    """The client of a remote agent by name: registered from code, else declared and enabled."""
    remote = code_remote(name)
    if remote is not None:
        return remote
    entry = await declared_agents.aget(name)
    return entry.remote if entry is not None else None


def check_model(model: str) -> str | None:
    """Why an ``a2a`` agent's model is refused: it must name a remote agent."""
    if model and (code_remote(model) is not None or declared_agents.get(model) is not None):
        return None
    known = ", ".join(declared_agents.names()) or "none yet"
    if not model:
        return f"With provider a2a, the model is the name of a remote A2A agent (declared: {known})."
    return f"{model!r} is not an enabled remote A2A agent; with provider a2a, name one (declared: {known})."


def _provider(**_options: Any) -> RemoteAgentProvider:
    return RemoteAgentProvider(find_remote)


def _forget(sender: type, instance: RemoteAgent, **_kwargs: Any) -> None:
    declared_agents.forget(instance.pk)


def install() -> None:
    """Hook declared remote agents into cosmos (idempotent)."""
    tool_registry.add_resolver(resolver)
    register_provider(PROVIDER, _provider, check_model=check_model)
    post_save.connect(_forget, sender=RemoteAgent, dispatch_uid="a2a-remote-agent-saved")
    post_delete.connect(_forget, sender=RemoteAgent, dispatch_uid="a2a-remote-agent-deleted")


# ---------------------------------------------------------------------------------------------
# The card, read when a row is saved: its name and description (the tool's default description)


def read_card(name: str) -> RemoteAgent | None:
    """Read the card of a saved row now and store what it says (or why it could not be read).

    Call it outside any transaction: it waits for the network (``CARD_CHECK_TIMEOUT``). The
    card is read with the row's token when this process has it, and without otherwise (cards
    are public in A2A); the allowlist applies as for any call.
    """
    row = RemoteAgent.objects.filter(pk=name).first()
    if row is None:
        return None
    fields: dict[str, Any] = {"card_checked_at": timezone.now()}
    try:
        card = async_to_sync(client_for(row, auth_required=False).fetch_card)(CARD_CHECK_TIMEOUT)
    except RemoteA2AError as exc:
        fields["card_error"] = str(exc)[:2000]
    else:
        fields |= {
            "card_name": str(card.get("name") or "")[:200],
            "card_description": str(card.get("description") or ""),
            "card_error": "",
        }
    RemoteAgent.objects.filter(pk=name).update(**fields)
    declared_agents.forget(name)
    row.refresh_from_db()
    return row
