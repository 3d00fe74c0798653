"""A2A push notifications in distributed mode: an API process and a separate ``celery worker``
process (PostgreSQL and Redis). The task runs in the worker, whose status changes write the
deliveries, and a worker POSTs them to a real receiver on loopback."""

from __future__ import annotations

import uuid

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict

from interfaces.webhooks.models import Delivery, DeliveryStatus
from tests.factories import make_agent
from tests.support.push_receiver import push_receiver
from tests.support.servers import ApiProcess
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_task_run_by_a_worker_process_pushes_its_updates():
    agent = make_agent(parameters={"reply": "pushed: {input}", "ttft_ms": 300})
    with push_receiver() as receiver:
        env = {"ASTEROS_OUTBOUND_ALLOWLIST": receiver.host}
        worker = WorkerProcess(concurrency=4, env=env).spawn()
        api = ApiProcess(env=env)
        try:
            api.start()
            worker.wait_ready()
            body = {
                "message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "hi"}]},
                "configuration": {
                    "returnImmediately": True,
                    "taskPushNotificationConfig": {"url": receiver.url("/d"), "token": "dist"},
                },
            }
            url = f"{api.url}/a2a/agents/{agent.id}/message:send"
            task = httpx.post(url, json=body, headers={"A2A-Version": "1.0"}, timeout=30).json()["task"]
            received = receiver.wait_for(lambda got: any("task" in r.body for r in got), "/d", timeout=60)
        finally:
            api.close()
            worker.close()
    updates = [ParseDict(r.body, pb.StreamResponse()) for r in received]
    assert [u.WhichOneof("payload") for u in updates] == ["status_update", "task"]
    assert updates[0].status_update.status.state == pb.TASK_STATE_WORKING
    final = updates[-1].task
    assert final.id == task["id"] and final.status.state == pb.TASK_STATE_COMPLETED
    assert [a.parts[0].text for a in final.artifacts] == ["pushed: hi"]
    assert {r.headers["x-a2a-notification-token"] for r in received} == {"dist"}
    statuses = set(Delivery.objects.filter(run_id=task["id"]).values_list("status", flat=True))
    assert statuses == {DeliveryStatus.SUCCEEDED}
