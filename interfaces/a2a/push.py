"""A2A push notifications: a task's push configs (the four methods) and its updates POSTed to them.

A config (``interfaces.webhooks.models.PushConfig``) belongs to one task (a top-level run) and is
managed by whoever can see that task (``services.find_run_sync``: another caller's task is "not
found"). Its URL must be one the outbound policy lets the server reach (``receiver_url_problem``).

Deliveries go through the webhook machinery (``interfaces.webhooks.deliveries``: claimed, POSTed
through ``cosmos.outbound``, retried with backoff, logged). ``on_run_changed`` listens to
``cosmos.services.leases.run_changed``: on each status change of a task with configs it writes one
delivery per config, whose payload is a ``StreamResponse`` built by the door's own translation
(``services.task_json``, the fold that GetTask and the streams use):

- while the run goes on: ``{"statusUpdate": TaskStatusUpdateEvent}`` with the task's status now
  (``TASK_STATE_WORKING``, or ``TASK_STATE_INPUT_REQUIRED`` with the question);
- when the run has ended: ``{"task": Task}``, the task as GetTask answers it (its final status,
  artifacts and history).

The payload is the task as it is when the delivery is written, so a run that moved on meanwhile
is reported in its newer state. Each delivery's ``webhook-id`` is derived from the config and the
occurrence (``<run>:<run status>`` once ended, ``<run>:<task state>:<pauses so far>`` before), so a
signal and the backstop never deliver the same occurrence twice to one config. The backstop
(``sweep_finished``, a periodic job of every engine) writes the final delivery of recently ended
tasks whose configs lack it: a process that died before it sent the signal loses nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from cosmos.db import db_call
from cosmos.engine import register_periodic
from cosmos.models import Run, RunEvent, RunStatus
from cosmos.runtime.events import EventType
from cosmos.services.interrupts import INTERRUPT_EVENT
from cosmos.services.leases import run_changed
from interfaces.a2a import services
from interfaces.a2a.errors import InvalidParamsError, TaskNotFoundError
from interfaces.a2a.protocol import (
    SUBMITTED,
    PushConfigParams,
    PushConfigRef,
    PushListParams,
    SendParams,
    require_receiver_url,
)
from interfaces.a2a.services import Caller, find_run_sync, task_json
from interfaces.edge.targets import Target
from interfaces.webhooks.deliveries import queue_once
from interfaces.webhooks.models import A2A_TASK_UPDATE, Delivery, PushConfig
from interfaces.webhooks.services import message_id

logger = logging.getLogger(__name__)

MAX_CONFIGS_PER_TASK = 20
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
# The backstop looks at tasks that ended within the window, and leaves the last seconds to the signal.
BACKSTOP_WINDOW = timedelta(hours=1)
BACKSTOP_GRACE = timedelta(seconds=5)
BACKSTOP_EVERY_SECONDS = 5.0
BACKSTOP_BATCH = 200


# --- the configs


def config_json(config: PushConfig) -> dict[str, Any]:
    """A TaskPushNotificationConfig. The credentials are write-only: only the scheme is shown."""
    body: dict[str, Any] = {"id": config.config_id, "taskId": str(config.run_id), "url": config.url}
    if config.token:
        body["token"] = config.token
    if config.authentication:
        body["authentication"] = {"scheme": config.authentication.get("scheme", "")}
    return body


def save_config_sync(run: Run, caller: Caller, params: PushConfigParams) -> PushConfig:
    """Create the config, or replace the one with the same id (``CreateTaskPushNotificationConfig``
    sets or updates); then deliver the task's current state to it if it is past submitted."""
    require_receiver_url(params)
    config_id = params.config_id or str(uuid.uuid4())
    fields = {"url": params.url, "token": params.token, "authentication": params.authentication, "caller": caller.name}
    try:
        with transaction.atomic():
            updated = PushConfig.objects.filter(run=run, config_id=config_id).update(**fields)
            if not updated:
                if PushConfig.objects.filter(run=run).count() >= MAX_CONFIGS_PER_TASK:
                    raise InvalidParamsError(
                        f"Task {run.id} has {MAX_CONFIGS_PER_TASK} push notification configs already, the most "
                        "a task may have; delete one first.",
                        metadata={"taskId": str(run.id)},
                        field_violations=[("id", f"at most {MAX_CONFIGS_PER_TASK} configs per task")],
                    )
                PushConfig.objects.create(run=run, config_id=config_id, **fields)
    except IntegrityError:  # created meanwhile by a concurrent request: this one replaces it
        PushConfig.objects.filter(run=run, config_id=config_id).update(**fields)
    config = PushConfig.objects.get(run=run, config_id=config_id)
    notify(run.id, [config])
    return config


def create_config_sync(target: Target, caller: Caller, task_id: str, params: PushConfigParams) -> dict[str, Any]:
    if params.task_id and params.task_id != task_id:
        raise InvalidParamsError(
            "The task id in the body differs from the one in the path.",
            field_violations=[("taskId", "differs from the task in the path")],
        )
    run = find_run_sync(target, caller, task_id)
    return config_json(save_config_sync(run, caller, params))


def _config_of(run: Run, config_id: str) -> PushConfig:
    config = PushConfig.objects.filter(run=run, config_id=config_id).first()
    if config is None:
        raise TaskNotFoundError(
            f"Task {run.id} has no push notification config {config_id!r}.",
            metadata={"taskId": str(run.id), "configId": config_id},
        )
    return config


def get_config_sync(target: Target, caller: Caller, ref: PushConfigRef) -> dict[str, Any]:
    run = find_run_sync(target, caller, ref.task_id)
    return config_json(_config_of(run, ref.config_id))


def _page_token(config: PushConfig) -> str:
    return base64.urlsafe_b64encode(f"pc:{config.pk}".encode()).decode().rstrip("=")


def _after(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "pc":
            raise ValueError
        return int(number)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidParamsError(
            "'pageToken' is not a token this server handed out.", field_violations=[("pageToken", "unknown token")]
        ) from None


def list_configs_sync(target: Target, caller: Caller, params: PushListParams) -> dict[str, Any]:
    """The task's configs, oldest first; ``pageSize`` (none: all of them) and ``nextPageToken``."""
    run = find_run_sync(target, caller, params.task_id)
    configs = PushConfig.objects.filter(run=run).order_by("id")
    if params.page_token:
        configs = configs.filter(id__gt=_after(params.page_token))
    page = list(configs[: params.page_size + 1] if params.page_size else configs)
    more = params.page_size is not None and len(page) > params.page_size
    page = page[: params.page_size] if params.page_size else page
    return {
        "configs": [config_json(config) for config in page],
        "nextPageToken": _page_token(page[-1]) if more and page else "",
    }


def delete_config_sync(target: Target, caller: Caller, ref: PushConfigRef) -> dict[str, Any]:
    """Idempotent: deleting a config that is gone (or never was) answers the same. Its pending
    deliveries go with it: nothing more is sent to its URL."""
    run = find_run_sync(target, caller, ref.task_id)
    PushConfig.objects.filter(run=run, config_id=ref.config_id).delete()
    return {}


def store_send_config(run: Run, caller: Caller, params: SendParams) -> None:
    """A SendMessage's ``configuration.taskPushNotificationConfig``: stored for its task."""
    if params.push_config is not None:
        save_config_sync(run, caller, params.push_config)


async def create_config(target: Target, caller: Caller, task_id: str, params: PushConfigParams) -> dict[str, Any]:
    return await db_call(create_config_sync, target, caller, task_id, params)


async def get_config(target: Target, caller: Caller, ref: PushConfigRef) -> dict[str, Any]:
    return await db_call(get_config_sync, target, caller, ref)


async def list_configs(target: Target, caller: Caller, params: PushListParams) -> dict[str, Any]:
    return await db_call(list_configs_sync, target, caller, params)


async def delete_config(target: Target, caller: Caller, ref: PushConfigRef) -> dict[str, Any]:
    return await db_call(delete_config_sync, target, caller, ref)


# --- the deliveries


def update_of(run: Run, events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """(the occurrence's key, the StreamResponse payload) for the task as it is, or None while it
    is only submitted (its creator has it already)."""
    task = task_json(run, events, history_length=None)
    if run.status in FINISHED:
        return f"{run.id}:{run.status}", {"task": task}
    state = task["status"]["state"]
    if state == SUBMITTED:
        return None
    # A task is working again after each pause: the pauses so far tell the occurrences apart.
    pauses = sum(1 for e in events if e.get("type") == EventType.CUSTOM and e.get("name") == INTERRUPT_EVENT)
    update = {"taskId": task["id"], "contextId": task["contextId"], "status": task["status"]}
    return f"{run.id}:{state}:{pauses}", {"statusUpdate": update}


def notify(run_id: Any, configs: list[PushConfig] | None = None) -> list[Delivery]:
    """Write (once) and send the task's current state to its configs (or to ``configs``)."""
    run = Run.objects.filter(id=run_id, parent__isnull=True).first()
    if run is None:
        return []
    configs = list(PushConfig.objects.filter(run=run)) if configs is None else configs
    if not configs:
        return []
    events = list(RunEvent.objects.filter(run_id=run.id).order_by("seq").values_list("data", flat=True))
    found = update_of(run, events)
    if found is None:
        return []
    key, payload = found
    now = timezone.now()
    rows = [
        Delivery(
            message_id=message_id(config.pk, key),
            push_config=config,
            event=A2A_TASK_UPDATE,
            run_id=run.id,
            payload=payload,
            next_attempt_at=now,
        )
        for config in configs
    ]
    return queue_once(rows)


def on_run_changed(sender: Any, message: dict[str, Any], **kwargs: Any) -> None:
    """``run_changed``: a task with push configs changed status. One indexed query otherwise."""
    if message.get("parent"):
        return  # a star member's or a workflow step's run is no task of its own
    run_id = message.get("id")
    if run_id and PushConfig.objects.filter(run_id=run_id).exists():
        notify(run_id)


def sweep_finished(limit: int = BACKSTOP_BATCH) -> int:
    """Write the final delivery of tasks that ended within ``BACKSTOP_WINDOW`` whose configs lack
    it (the signal was lost with its process). One query, on the push config table, when none does."""
    now = timezone.now()
    final = Delivery.objects.filter(push_config=OuterRef("pk"), payload__has_key="task")
    missing = PushConfig.objects.filter(
        run__status__in=FINISHED,
        run__finished_at__gte=now - BACKSTOP_WINDOW,
        run__finished_at__lte=now - BACKSTOP_GRACE,
    ).filter(~Exists(final))
    run_ids = list(dict.fromkeys(missing.values_list("run_id", flat=True)[:limit]))
    for run_id in run_ids:
        notify(run_id)
    if run_ids:
        logger.info("a2a push backstop", extra={"tasks": len(run_ids)})
    return len(run_ids)


def install() -> None:
    """Called from ``InterfacesConfig.ready``: listen to status changes, run the backstop."""
    run_changed.connect(on_run_changed, dispatch_uid="interfaces.a2a.push")
    services.on_send(store_send_config)
    register_periodic("a2a.push.finished", sweep_finished, every_seconds=BACKSTOP_EVERY_SECONDS)
