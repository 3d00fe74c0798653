"""Races between writes, with real concurrency: requests sent at once from threads to a served
ASGI app (uvicorn on 127.0.0.1, the request thread pool of ``asteros_site.handlers``), each
request on its own database connection.

They run on SQLite in the embedded pass and on PostgreSQL in the distributed pass (the
``services`` copies at the end make sure the distributed pass runs them).

- ``ASTEROS_MAX_AGENTS`` holds exactly under concurrent creates (REST and the Python API);
- concurrent creates of one id answer one 201 and 409s ``already_exists``, for every resource;
- a delete racing run requests: a run is either accepted before the delete (and goes on with
  the revision it pinned) or refused with 404 after it; never accepted after the delete;
- a run that pinned no revision (one from before revisions) whose definition vanished before it
  loaded it fails with ``definition_deleted``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cosmos.models import ACTIVE_STATUSES, Agent, AgentTemplate, Run
from cosmos.services import agents as agent_services
from cosmos.services.errors import Conflict
from cosmos.services.runs import cancel_run, start_run
from tests.factories import make_agent, unique_id, workflow_definition
from tests.support.model_server import ServerThread
from tests.support.runs import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def at_once(count: int, call: Callable[[int], object]) -> list:
    """``call(0..count-1)`` from ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def run(n: int) -> object:
        barrier.wait(timeout=30)
        try:
            return call(n)
        finally:
            from django.db import connection

            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.fixture
def server():
    from asteros_site.asgi import application

    with ServerThread(application) as served:
        yield served


def _statuses(answers: list[httpx.Response]) -> list[int]:
    return [answer.status_code for answer in answers]


def _assert_error_shape(answer: httpx.Response, code: str) -> None:
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body


# --- ASTEROS_MAX_AGENTS


def max_agents_hold_under_concurrent_rest_creates(server, settings_options) -> None:
    existing = Agent.objects.count()
    settings_options(max_agents=existing + 5)

    def create(n: int) -> httpx.Response:
        body = {"id": unique_id(f"burst{n}"), "provider": "scripted"}
        return httpx.post(f"{server.url}/api/agents", json=body, timeout=60)

    answers = at_once(THREADS, create)
    assert sorted(_statuses(answers)) == [201] * 5 + [409] * (THREADS - 5), [a.text[:200] for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            _assert_error_shape(answer, "cosmos_full")
    assert Agent.objects.count() == existing + 5


def test_max_agents_holds_under_concurrent_rest_creates(server, settings_options):
    max_agents_hold_under_concurrent_rest_creates(server, settings_options)


def test_max_agents_holds_under_concurrent_creates_through_the_python_api(settings_options):
    from cosmos.cosmos import Cosmos

    existing = Agent.objects.count()
    settings_options(max_agents=existing + 3)
    cosmos = Cosmos()

    def create(n: int) -> str:
        try:
            cosmos.create(unique_id(f"py{n}"), provider="scripted")
        except Conflict as exc:
            return exc.code
        return "created"

    outcomes = at_once(THREADS, create)
    assert sorted(outcomes) == ["cosmos_full"] * (THREADS - 3) + ["created"] * 3, outcomes
    assert Agent.objects.count() == existing + 3


# --- concurrent creates of one id


def one_id_created_at_once_is_one_201_and_409s(server) -> None:
    template = AgentTemplate.objects.create(id=unique_id("tpl"), provider="scripted")
    agent = make_agent()
    bodies = {
        "agents": lambda key: {"id": key, "provider": "scripted"},
        "templates": lambda key: {"id": key, "provider": "scripted"},
        "stars": lambda key: {"id": key},
        "workflows": lambda key: {"id": key, "definition": workflow_definition(agent.id)},
        "sessions": lambda key: {"id": key, "kind": "agent", "target": agent.id},
    }
    for resource, body in bodies.items():
        key = unique_id(resource[:4])

        def create(n: int, resource=resource, body=body, key=key) -> httpx.Response:
            return httpx.post(f"{server.url}/api/{resource}", json=body(key), timeout=60)

        answers = at_once(8, create)
        statuses = _statuses(answers)
        assert statuses.count(201) == 1, (resource, statuses, [a.text[:300] for a in answers])
        for answer in answers:
            assert answer.status_code in (201, 400, 409), (resource, answer.status_code, answer.text[:300])
            if answer.status_code == 409:
                _assert_error_shape(answer, "already_exists")
            if answer.status_code == 400:  # the serializer saw the row the winner committed
                assert "already exists" in answer.text, answer.text
    template.delete()


def test_creates_of_one_id_at_once_answer_one_201_and_409s(server):
    one_id_created_at_once_is_one_201_and_409s(server)


def test_creates_of_one_id_at_once_through_the_services_are_conflicts():
    key = unique_id("same")

    def create(n: int) -> str:
        try:
            agent_services.create_agent(key, provider="scripted")
        except Conflict as exc:
            return exc.code
        return "created"

    outcomes = at_once(THREADS, create)
    assert sorted(outcomes) == ["already_exists"] * (THREADS - 1) + ["created"], outcomes

    def upsert(n: int) -> str:
        agent_services.upsert_agent(f"{key}-up", provider="scripted", description=f"from {n}")
        return "ok"

    assert at_once(THREADS, upsert) == ["ok"] * THREADS
    assert Agent.objects.filter(id=f"{key}-up").count() == 1


def test_code_registrations_of_one_id_at_once_never_raise_integrity_errors():
    from stars.models import Star
    from stars.stars import Stars
    from workflows.models import Workflow
    from workflows.services import upsert_workflow

    agent = make_agent()
    star_id, workflow_id = unique_id("cstar"), unique_id("cflow")

    def register(n: int) -> str:
        try:
            if n % 2:
                Stars(id=star_id, description=f"from {n}").save()
            else:
                upsert_workflow(workflow_id, {"definition": workflow_definition(agent.id)})
        except Conflict as exc:
            return exc.code
        return "ok"

    outcomes = at_once(THREADS, register)
    assert set(outcomes) <= {"ok", "already_exists"} and "ok" in outcomes, outcomes
    assert Star.objects.filter(id=star_id).count() == Workflow.objects.filter(id=workflow_id).count() == 1
    assert Star.objects.get(id=star_id).created_at is not None


def test_admin_adds_of_one_id_at_once_never_answer_500(staff_user):
    from django.test import Client

    key = unique_id("adm")

    def add(n: int) -> int:
        client = Client()
        client.force_login(staff_user)
        form = {"id": key, "name": "", "description": "", "enabled": "on", "provider": "scripted", "model": ""}
        form |= {"parameters": "{}", "system_prompt": "", "tools": "[]", "metadata": "{}"}
        return client.post("/admin/cosmos/agent/add/", form).status_code

    statuses = at_once(6, add)
    assert statuses.count(302) == 1 and set(statuses) <= {302, 200, 409}, statuses
    assert Agent.objects.filter(id=key).count() == 1


# --- delete racing run requests


def delete_racing_runs_never_accepts_a_run_after_the_delete(server) -> None:
    rounds, runs_per_round = 8, 7
    try:
        for _ in range(rounds):
            # Slow runs: still active long after the burst, whether a worker takes them or not.
            agent = make_agent(parameters={"reply_tokens": 5000, "tokens_per_second": 20})

            def act(n: int, agent_id=agent.id) -> httpx.Response:
                if n == runs_per_round // 2:
                    return httpx.delete(f"{server.url}/api/agents/{agent_id}", timeout=60)
                return httpx.post(f"{server.url}/api/agents/{agent_id}/run", json={"input": f"race {n}"}, timeout=60)

            answers = at_once(runs_per_round + 1, act)
            delete = answers[runs_per_round // 2]
            posts = [a for i, a in enumerate(answers) if i != runs_per_round // 2]
            for answer in posts:
                assert answer.status_code in (202, 404), (answer.status_code, answer.text[:300])
                if answer.status_code == 404:
                    _assert_error_shape(answer, "not_found")
            runs = Run.objects.filter(kind="agent", target=agent.id)
            # A delete never waits for runs: the runs accepted before it go on with the revision
            # they pinned, and every request after it is a 404.
            assert delete.status_code == 204, delete.text
            assert not Agent.objects.filter(id=agent.id).exists()
            assert runs.count() == sum(1 for a in posts if a.status_code == 202)
            assert set(runs.values_list("revision", flat=True)) <= {1}
            late = httpx.post(f"{server.url}/api/agents/{agent.id}/run", json={"input": "late"}, timeout=60)
            assert late.status_code == 404, late.text
    finally:
        for run in Run.objects.filter(status__in=ACTIVE_STATUSES, origin="api"):
            with contextlib.suppress(Conflict):
                cancel_run(run.id)


def test_a_delete_racing_run_requests_never_accepts_a_run_after_it(server):
    delete_racing_runs_never_accepts_a_run_after_the_delete(server)


# --- a definition deleted before its run loads it


@pytest.mark.usefixtures("embedded_worker")
@pytest.mark.parametrize("kind", ["agent", "star", "workflow"])
def test_a_run_with_no_revision_whose_definition_was_deleted_fails_with_definition_deleted(kind):
    from tests.factories import make_membership, make_star, make_workflow

    agent = make_agent()
    if kind == "agent":
        target, model = agent.id, Agent
    elif kind == "star":
        star = make_star()
        make_membership(star, agent, role="leader")
        target, model = star.id, type(star)
    else:
        workflow = make_workflow(definition=workflow_definition(agent.id))
        target, model = workflow.id, type(workflow)
    # Accepted while the definition existed, not yet sent to a worker; then the definition goes
    # (as a delete that commits between the run's acceptance and its start would).
    run, _ = start_run(kind, target, "hello", dispatch=False)
    # A run from before revisions existed pinned none: it needs its definition's row.
    Run.objects.filter(id=run.id).update(revision=None)
    model.objects.filter(pk=target).delete()
    from cosmos.dispatch import dispatch_run

    dispatch_run(run.id)
    run = wait_for_run(run.id, timeout=30)
    assert run.status == "failed", (run.status, run.error)
    assert run.error["code"] == "definition_deleted", run.error
    assert target in run.error["message"]


# --- the same on PostgreSQL, in the distributed pass


@pytest.mark.services
def test_on_postgresql_max_agents_holds_under_concurrent_rest_creates(server, settings_options):
    max_agents_hold_under_concurrent_rest_creates(server, settings_options)


@pytest.mark.services
def test_on_postgresql_creates_of_one_id_at_once_answer_one_201_and_409s(server):
    one_id_created_at_once_is_one_201_and_409s(server)


@pytest.mark.services
def test_on_postgresql_a_delete_racing_run_requests_never_accepts_a_run_after_it(server):
    delete_racing_runs_never_accepts_a_run_after_the_delete(server)
