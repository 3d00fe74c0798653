"""A2A push deliveries in-process: the signal, the backstop for ended tasks, the outbound policy at
send time (a real receiver on loopback), and the domain card's refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from a2a.types import a2a_pb2 as pb
from django.test import Client
from django.utils import timezone
from google.protobuf.json_format import ParseDict

from cosmos import outbound
from cosmos.models import RunStatus
from cosmos.services.leases import lifecycle_message, run_changed
from interfaces.a2a import push
from interfaces.webhooks.deliveries import deliver
from interfaces.webhooks.models import Delivery, DeliveryStatus, PushConfig
from tests.factories import make_agent, make_run
from tests.support.push_receiver import push_receiver

pytestmark = pytest.mark.django_db


def ended_run(**fields):
    """A task that finished a minute ago, with the events of a whole answer."""
    events = [
        "RUN_STARTED",
        {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "done"},
        {"type": "TEXT_MESSAGE_END", "messageId": "m1"},
        "RUN_FINISHED",
    ]
    ended = timezone.now() - timedelta(minutes=1)
    return make_run(status=RunStatus.SUCCEEDED, finished_at=ended, events=events, **fields)


def test_the_backstop_writes_the_final_delivery_the_signal_never_sent():
    run = ended_run()
    config = PushConfig.objects.create(run=run, config_id="c", url="https://example.com/hook", token="t")
    assert push.sweep_finished() == 1
    [delivery] = Delivery.objects.filter(push_config=config)
    task = ParseDict(delivery.payload, pb.StreamResponse()).task
    assert task.id == str(run.id) and task.status.state == pb.TASK_STATE_COMPLETED
    assert [a.parts[0].text for a in task.artifacts] == ["done"]
    # Once: the next sweep finds nothing, and the signal arriving late adds nothing.
    assert push.sweep_finished() == 0
    run_changed.send(type(run), message=lifecycle_message(run))
    assert Delivery.objects.filter(push_config=config).count() == 1


def test_the_backstop_leaves_alone_what_it_should():
    # Too recent (the signal's), too old, still running, a child run: nothing to do.
    recent = ended_run()
    recent.finished_at = timezone.now()
    recent.save(update_fields=["finished_at"])
    old = ended_run()
    old.finished_at = timezone.now() - push.BACKSTOP_WINDOW - timedelta(minutes=1)
    old.save(update_fields=["finished_at"])
    running = make_run(status=RunStatus.RUNNING)
    for run in (recent, old, running):
        PushConfig.objects.create(run=run, config_id="c", url="https://example.com/hook")
    assert push.sweep_finished() == 0
    assert not Delivery.objects.exists()


def test_a_status_change_delivers_once_per_config_and_state():
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])
    configs = [PushConfig.objects.create(run=run, config_id=name, url="https://example.com/hook") for name in "ab"]
    for _ in range(2):  # the same change announced twice (a signal and a retry): one delivery each
        run_changed.send(type(run), message=lifecycle_message(run))
    deliveries = list(Delivery.objects.filter(run=run))
    assert sorted(d.push_config_id for d in deliveries) == sorted(c.pk for c in configs)
    update = ParseDict(deliveries[0].payload, pb.StreamResponse()).status_update
    assert update.task_id == str(run.id) and update.status.state == pb.TASK_STATE_WORKING
    assert deliveries[0].message_id != deliveries[1].message_id
    # A run without configs, and a child run, cost one query or none and write nothing.
    other = make_run(status=RunStatus.RUNNING)
    run_changed.send(type(other), message=lifecycle_message(other))
    child = make_run(status=RunStatus.RUNNING, parent=run)
    run_changed.send(type(child), message=lifecycle_message(child))
    assert Delivery.objects.count() == 2


def test_a_submitted_task_is_not_pushed():
    run = make_run(status=RunStatus.QUEUED)
    PushConfig.objects.create(run=run, config_id="c", url="https://example.com/hook")
    run_changed.send(type(run), message=lifecycle_message(run))
    assert not Delivery.objects.exists()


def test_the_outbound_policy_decides_again_at_every_send(settings_options):
    """A config written before the rules (straight into the table) to a loopback receiver that
    is not allowlisted: the POST is refused and nothing arrives; allowlisted, it arrives."""
    with push_receiver() as receiver:
        settings_options(outbound_allowlist=())
        run = ended_run()
        config = PushConfig.objects.create(run=run, config_id="c", url=receiver.url("/p"), token="tok")
        [delivery] = push.notify(run.id)
        assert deliver(delivery.id) == DeliveryStatus.PENDING  # refused: retried later
        delivery.refresh_from_db()
        assert delivery.last_error == outbound.FAILURE_MESSAGE and receiver.received() == []
        # Creating such a config through the door is refused outright.
        with pytest.raises(push.InvalidParamsError, match="ASTEROS_OUTBOUND_ALLOWLIST"):
            push.save_config_sync(run, push.Caller(None, "", True), push.PushConfigParams(url=receiver.url("/p")))
        settings_options(outbound_allowlist=(receiver.host,))
        Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
        assert deliver(delivery.id) == DeliveryStatus.SUCCEEDED
        [received] = receiver.received("/p")
        assert received.headers["x-a2a-notification-token"] == "tok"
        assert ParseDict(received.body, pb.StreamResponse()).task.id == str(run.id)
        assert config.deliveries.get().attempt_log.count() == 2


# --- the domain card


@pytest.mark.django_db(transaction=True)  # the async view reads on another thread: committed rows only
def test_the_domain_card_without_an_agent_or_with_a_default_that_is_not_served(settings_options):
    client = Client()
    response = client.get("/.well-known/agent-card.json")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == "NOT_FOUND" and "No agent is served" in error["message"]
    make_agent("zeta")
    make_agent("alpha", enabled=False)
    make_agent("beta")
    assert (
        client.get("/.well-known/agent-card.json").json()["supportedInterfaces"][0]["url"].endswith("/a2a/agents/beta")
    ), "the first enabled agent by id"
    for setting in ("workflow:missing", "alpha", "agent:nope"):
        settings_options(a2a_default=setting)
        response = client.get("/.well-known/agent-card.json")
        assert response.status_code == 404 and "ASTEROS_A2A_DEFAULT" in response.json()["error"]["message"]
    settings_options(a2a_default="zeta")
    assert (
        client.get("/.well-known/agent-card.json").json()["supportedInterfaces"][0]["url"].endswith("/a2a/agents/zeta")
    )
    settings_options(enable_a2a=False)
    assert client.get("/.well-known/agent-card.json").status_code == 404
