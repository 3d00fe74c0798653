"""Websocket consumers (Channels). Each one parses, authorizes, calls a service and relays:

- ``ws/runs/{id}/?after=N``: ``RunStreamConsumer``, the run's events after N, then live until
  its end (``cosmos.eventlog.follow``: replay and live tail with no gap and no repeat). Frames:
  ``{"type": "event", "runId", "seq", "event"}`` then ``{"type": "end", "runId", "status"}``
  and a normal close (1000). Send ``{"type": "cancel"}`` to cancel the run.
- ``ws/agui/{kind}/{id}/`` (a kind's collection in ``cosmos.kinds``, or its name: ``agents``, ``star``):
  ``AGUIConsumer``. Send a ``RunAgentInput``;
  receive the same AG-UI events as the SSE endpoint (bare event objects). Send
  ``{"type": "cancel"}`` to cancel the run in progress; the stream ends with ``RUN_FINISHED``
  and the ``cancelled`` outcome. Several runs may follow one another on one socket.
- ``ws/dashboard/``: ``DashboardConsumer``, for staff. A ``snapshot`` first, then ``runs``
  (lifecycle changes, as rows) and a ``summary`` every second; actions ``start``, ``cancel``
  and ``retry`` answer with ``started`` / ``cancelled`` / ``retried`` or ``error``.

Live data comes from the AsterOS bus (Redis pub/sub in distributed mode), so every consumer
sees runs executed by any worker process; Channels runs the consumers without a channel layer
(the project configures none: docs/architecture.md, "Live events and the channel layer").
Close codes: 4400 bad request, 4401 not authenticated, 4403 forbidden, 4404 not found, 4429 the
API key's requests per minute are used up, 4503 the database cannot be reached (reconnect with
``?after=N`` in a few seconds), 1009 a frame over ASTEROS_MAX_BODY_BYTES (after an
``error`` frame with the code ``payload_too_large``). A frame that is not a JSON object gets an
``error`` frame (``malformed_request``) and the socket stays open. Each run a message starts counts as one more request
of the key, and runs started here meet the key's run quotas like any other (``interfaces.keys.quotas``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from cosmos.bus import LIFECYCLE_CHANNEL, get_bus
from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.kinds import all_kinds, either, find_kind
from cosmos.models import Run
from cosmos.services.errors import Invalid, NotFound, ServiceError
from cosmos.services.runs import cancel_run
from interfaces.agui.input import parse_run_agent_input
from interfaces.agui.services import agui_events, start_agui_run
from interfaces.console import services as dashboard
from interfaces.edge.auth import AccessDenied, caller_of, count_key_request, kind_resource
from interfaces.edge.errors import DATABASE_ERRORS, Refusal, classify
from interfaces.edge.params import parse_whole_number
from interfaces.edge.parsers import loads
from interfaces.edge.runs import require_kind
from interfaces.edge.targets import resolve_kind
from interfaces.ws.auth import authorize, close_code, credentials, may

logger = logging.getLogger(__name__)

FRAME_TOO_BIG = 1009  # RFC 6455: a message too big to process
LIFECYCLE_BATCH_SECONDS = 0.15
SUMMARY_SECONDS = 1.0


class BaseConsumer(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None  # live data comes from the AsterOS bus, not a channel layer

    principal: Any = None

    async def refuse(self, exc: Exception) -> None:
        """Refuse the connection: accept, say why in an error frame, close with the code of the
        classified error (a close before accept would hide the code)."""
        refusal = classify(exc)
        await self.accept(credentials(self.scope).subprotocol)
        await self.send_json(error_frame(refusal))
        await self.close(code=close_code(refusal.status))

    async def send_error(self, exc: Exception, ref: Any = None) -> None:
        """An error frame on an open socket, which stays open."""
        frame = error_frame(classify(exc))
        if ref is not None:
            frame["ref"] = ref
        await self.send_json(frame)

    async def open(self) -> None:
        await self.accept(credentials(self.scope).subprotocol)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False, default=str)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        limit = settings.ASTEROS.max_body_bytes
        if _frame_size(text_data, bytes_data, limit) > limit:
            # A frame is a request body: the same limit, then a close with "message too big".
            message = f"The frame is larger than the limit of {limit} bytes (ASTEROS_MAX_BODY_BYTES)."
            await self.send_json({"type": "error", "code": "payload_too_large", "message": message})
            await self.close(code=FRAME_TOO_BIG)
            return
        try:
            content = loads(text_data or (bytes_data or b"").decode() or "null")
        except ValueError:
            await self.send_json({"type": "error", "code": "malformed_request", "message": "Send JSON objects."})
            return
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "code": "malformed_request", "message": "Send JSON objects."})
            return
        await self.receive_json(content)


def error_frame(refusal: Refusal) -> dict[str, Any]:
    """A classified error as the websocket error frame."""
    frame = {"type": "error", "code": refusal.code, "message": refusal.message}
    if refusal.details is not None:
        frame["details"] = refusal.details
    return frame


def _frame_size(text_data: str | None, bytes_data: bytes | None, limit: int) -> int:
    if text_data is None:
        return len(bytes_data or b"")
    if len(text_data) > limit:  # at least a byte per character: no need to encode it
        return len(text_data)
    return len(text_data.encode())


async def _cancel_task(task: asyncio.Task | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _run_brief(run_id: str) -> dict:
    try:
        brief = Run.objects.filter(id=run_id).values("id", "kind", "target", "status").first()
    except DATABASE_ERRORS:
        raise
    except Exception:  # not a UUID
        brief = None
    if brief is None:
        raise NotFound(f"No run with id {run_id!r}.")
    return brief


def _after(query: dict[str, list[str]]) -> int:
    try:
        return parse_whole_number((query.get("after") or ["0"])[0])
    except ValueError:
        raise Invalid("'after' must be the seq of an event (0 or more).", code="invalid_after") from None


def _status(run_id: str) -> str | None:
    return Run.objects.filter(id=run_id).values_list("status", flat=True).first()


class RunStreamConsumer(BaseConsumer):
    """``ws/runs/{id}/?after=N``: replay, then live, until the run ends."""

    task: asyncio.Task | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A cancel's answer goes out before the end it caused: the socket closes after "end".
        self.answering = asyncio.Lock()

    async def connect(self) -> None:
        self.run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            after = _after(query)
            self.principal = await authorize(self.scope, "read")
            brief = await db_call(_run_brief, self.run_id)
            self.resource = (kind_resource(brief["kind"]) or brief["kind"], brief["target"])
            if not may(self.principal, "read", resource=self.resource[0], object_id=self.resource[1]):
                raise AccessDenied(403, "permission_denied", "This API key may not see this run.")
        except Exception as exc:
            await self.refuse(exc)
            return
        self.run_id = str(brief["id"])
        await self.open()
        self.task = asyncio.create_task(self.pump(after))

    async def pump(self, after: int) -> None:
        try:
            async for seq, event in follow(self.run_id, after=after):
                await self.send_json({"type": "event", "runId": self.run_id, "seq": seq, "event": event})
            async with self.answering:
                status = await db_call(_status, self.run_id)
                await self.send_json({"type": "end", "runId": self.run_id, "status": status})
                await self.close(code=1000)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("run stream failed", extra={"run_id": self.run_id})
            await self.close(code=1011)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type")
        if kind == "cancel":
            if not may(self.principal, "run", resource=self.resource[0], object_id=self.resource[1]):
                await self.send_json(
                    {"type": "error", "code": "permission_denied", "message": "Cancelling needs the 'run' scope."}
                )
                return
            async with self.answering:
                try:
                    run = await db_call(cancel_run, self.run_id)
                except ServiceError as exc:
                    await self.send_error(exc)
                    return
                await self.send_json({"type": "cancel_requested", "runId": self.run_id, "status": run.status})
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": "Send cancel or ping."})

    async def disconnect(self, code: int) -> None:
        await _cancel_task(self.task)


class AGUIConsumer(BaseConsumer):
    """``ws/agui/{kind}/{id}/``: RunAgentInput in, AG-UI events out, ``cancel`` in between."""

    task: asyncio.Task | None = None
    current_run: str | None = None

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        missing = f"No websocket endpoint at {self.scope.get('path', '')!r}."
        try:
            found = resolve_kind(kwargs["collection"], missing, by_name=True)  # "stars" or "star"
            self.kind, self.label = found.name, found.label
            self.target = kwargs["object_id"]
            self.principal = await authorize(self.scope, "run", resource=found.collection, object_id=self.target)
        except Exception as exc:
            await self.refuse(exc)
            return
        await self.open()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content.get("type") == "cancel":
            await self.cancel_current()
            return
        if content.get("type") == "run" and isinstance(content.get("input"), dict):
            content = content["input"]
        if self.task is not None and not self.task.done():
            await self.send_json(
                {
                    "type": "CUSTOM",
                    "name": "asteros.rejected",
                    "value": {"code": "busy", "message": "A run is streaming on this socket; cancel it or wait."},
                }
            )
            return
        try:
            parsed = parse_run_agent_input(content)
            require_kind(self.kind, self.label)
            await db_call(count_key_request, self.principal)  # each run started here is a request
            started = await db_call(start_agui_run, self.kind, self.target, parsed, caller=caller_of(self.principal))
        except Exception as exc:
            # No run started: AG-UI lets a stream open with RUN_ERROR.
            refusal = classify(exc)
            await self.send_json({"type": "RUN_ERROR", "message": refusal.message, "code": refusal.code})
            return
        self.current_run = started.run_id
        self.task = asyncio.create_task(self.pump(started))

    async def pump(self, started: Any) -> None:
        try:
            async for _seq, event in agui_events(started):
                await self.send_json(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("AG-UI socket stream failed", extra={"run_id": started.run_id})
            await self.send_json(
                {"type": "RUN_ERROR", "message": "The stream failed on the server.", "code": "internal"}
            )

    async def cancel_current(self) -> None:
        if self.current_run is None or self.task is None or self.task.done():
            await self.send_json(
                {
                    "type": "CUSTOM",
                    "name": "asteros.rejected",
                    "value": {"code": "no_run", "message": "No run is streaming on this socket."},
                }
            )
            return
        with contextlib.suppress(ServiceError):  # it finished meanwhile: its stream ends on its own
            await db_call(cancel_run, self.current_run)

    async def disconnect(self, code: int) -> None:
        await _cancel_task(self.task)


class DashboardConsumer(BaseConsumer):
    """``ws/dashboard/``: lifecycle changes and a summary every second; start, cancel, retry."""

    tasks: tuple[asyncio.Task, ...] = ()

    async def connect(self) -> None:
        try:
            self.principal = await authorize(self.scope, "read", staff_only=True)
        except Exception as exc:
            await self.refuse(exc)
            return
        await self.open()
        # Subscribe before the snapshot, so no change between the two is missed.
        self.subscription = await get_bus().subscribe(LIFECYCLE_CHANNEL)
        snapshot = await db_call(dashboard.snapshot)
        await self.send_json({"type": "snapshot", **snapshot})
        self.tasks = (asyncio.create_task(self.relay_lifecycle()), asyncio.create_task(self.tick()))

    async def relay_lifecycle(self) -> None:
        """Lifecycle messages, gathered for a moment and sent as rows (one query per batch)."""
        while True:
            message = await self.subscription.queue.get()
            ids = {message.get("id")}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LIFECYCLE_BATCH_SECONDS
            while (left := deadline - loop.time()) > 0:
                try:
                    more = await self.subscription.get(timeout=left)
                except TimeoutError:
                    break
                ids.add(more.get("id"))
            rows = await db_call(dashboard.run_rows, [i for i in ids if i])
            if rows:
                await self.send_json({"type": "runs", "runs": rows})

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(SUMMARY_SECONDS)
            await self.send_json({"type": "summary", "summary": await db_call(dashboard.summary)})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action")
        ref = content.get("ref")
        try:
            if action == "start":
                kind = content.get("kind")
                found = find_kind(kind) if isinstance(kind, str) else None  # a list is not hashable
                if found is None:
                    raise Invalid(f"'kind' must be {either(k.name for k in all_kinds())}.")
                self.check("run", found.collection, str(content.get("target")))
                require_kind(kind, found.label)
                await db_call(count_key_request, self.principal)
                row = await db_call(
                    dashboard.start,
                    kind,
                    str(content.get("target") or ""),
                    content.get("input"),
                    caller=caller_of(self.principal),
                    session_id=content.get("session") or None,
                )
                await self.send_json({"type": "started", "run": row, "ref": ref})
            elif action in ("cancel", "retry"):
                self.check("run")
                run_id = str(content.get("run") or "")
                if action == "cancel":
                    row = await db_call(dashboard.cancel, run_id)
                    await self.send_json({"type": "cancelled", "run": row, "ref": ref})
                else:
                    await db_call(count_key_request, self.principal)
                    row = await db_call(dashboard.retry, run_id, caller=caller_of(self.principal))
                    await self.send_json({"type": "retried", "run": row, "ref": ref})
            elif action == "snapshot":
                await self.send_json({"type": "snapshot", **await db_call(dashboard.snapshot), "ref": ref})
            elif action == "ping":
                await self.send_json({"type": "pong", "ref": ref})
            else:
                raise Invalid("'action' must be start, cancel, retry, snapshot or ping.", code="unknown_action")
        except Exception as exc:
            await self.send_error(exc, ref)

    def check(self, required: str, resource: str | None = None, object_id: str | None = None) -> None:
        if not may(self.principal, required, resource=resource, object_id=object_id):
            raise AccessDenied(403, "permission_denied", f"This needs the {required!r} scope.")

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            await _cancel_task(task)
        subscription = getattr(self, "subscription", None)
        if subscription is not None:
            await subscription.close()


class NotFoundConsumer(BaseConsumer):
    """Every websocket path no route above matches: refused like an unknown run (close 4404
    with an error frame), where Channels' router would raise and the server answer a 500."""

    async def connect(self) -> None:
        path = self.scope.get("path", "")
        await self.refuse(NotFound(f"No websocket endpoint at {path!r}."))
