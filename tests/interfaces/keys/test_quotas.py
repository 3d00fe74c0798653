"""Per-API-key quotas (``interfaces.keys.quotas``): requests per minute, concurrent runs and tokens per
day, refused with 429 + Retry-After on every entry point (REST, A2A, AG-UI, websockets), and
``GET /api/keys/me/usage``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient
from django.utils import timezone

from cosmos.models import ACTIVE_STATUSES, Run, RunStatus, Session
from cosmos.services.errors import Conflict
from cosmos.services.runs import cancel_run
from interfaces.keys import quotas
from interfaces.keys.models import APIKey
from interfaces.ws.auth import WebsocketAuthMiddleware
from interfaces.ws.routing import websocket_urlpatterns
from tests.factories import make_agent, make_run
from tests.interfaces.http.conftest import SETTINGS_KEY, assert_error, bearer
from tests.support.model_server import ServerThread
from tests.support.processes import ROOT, free_port, wait_for_200
from tests.support.runs import wait_for_run

USAGE = "/api/keys/me/usage"
A2A_HEADERS = {"A2A-Version": "1.0"}
TIMEOUT = 15


def assert_quota_refusal(response, quota: str, limit: int) -> int:
    """A 429 in the one error shape naming the quota and its limit; returns Retry-After."""
    error = assert_error(response, 429, "quota_exceeded")
    details = error["details"]
    assert details["quota"] == quota and details["limit"] == limit, details
    assert response["Retry-After"] == str(details["retry_after"])
    assert details["retry_after"] >= 1
    return details["retry_after"]


def run_request(client, agent_id: str, raw_key: str, **body: Any):
    return client.post(f"/api/agents/{agent_id}/run", {"input": "hi", **body}, format="json", **bearer(raw_key))


def key_runs(key: APIKey) -> int:
    return Run.objects.filter(caller=key.caller).count()


def a2a_send(text: str = "hi") -> dict[str, Any]:
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"message": message, "configuration": {"returnImmediately": True}}


def a2a_rpc(params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}


def agui_body() -> dict[str, Any]:
    return {
        "threadId": f"thread-{uuid.uuid4().hex[:8]}",
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "u1", "role": "user", "content": "hi"}],
    }


def assert_a2a_quota_error(error: dict[str, Any], quota: str, limit: int) -> None:
    """JSON-RPC ``error`` (or google.rpc.Status ``error``): ErrorInfo names the quota, RetryInfo the delay."""
    details = error.get("data") or error.get("details")
    info = next(d for d in details if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "QUOTA_EXCEEDED" and info["domain"] == "asteros"
    assert info["metadata"]["quota"] == quota and info["metadata"]["limit"] == str(limit)
    retry = next(d for d in details if d["@type"].endswith("RetryInfo"))
    assert retry["retryDelay"] == f"{info['metadata']['retryAfterSeconds']}s"


# --- requests per minute


@pytest.mark.django_db
def test_requests_past_the_limit_get_429_naming_the_quota_and_retry_after(api_client, auth_on):
    _, limited = APIKey.generate("limited", ["read"], requests_per_minute=3)
    _, unlimited = APIKey.generate("unlimited", ["read"])
    for _ in range(3):
        assert api_client.get("/api/agents", **bearer(limited)).status_code == 200
    retry_after = assert_quota_refusal(api_client.get("/api/agents", **bearer(limited)), quotas.REQUESTS_PER_MINUTE, 3)
    assert retry_after <= quotas.WINDOW_SECONDS
    # Each key counts on its own; a key with no limit is never refused.
    for _ in range(5):
        assert api_client.get("/api/agents", **bearer(unlimited)).status_code == 200


@pytest.mark.django_db
def test_a_refused_request_is_not_counted_and_liveness_still_answers(api_client, auth_on):
    key, raw = APIKey.generate("limited", ["read"], requests_per_minute=2)
    for _ in range(2):
        api_client.get("/api/agents", **bearer(raw))
    for _ in range(3):
        assert_error(api_client.get("/api/runs", **bearer(raw)), 429, "quota_exceeded")
    assert quotas.request_windows().peek(key.prefix).count == 2
    # /health with an exhausted key: liveness, without the details a key would unlock.
    health = api_client.get("/health", **bearer(raw))
    assert health.status_code in (200, 503) and set(health.json()) == {"status"}


# --- concurrent runs


@pytest.mark.django_db
def test_runs_past_max_concurrent_runs_get_429_and_write_nothing(api_client, auth_on):
    agent = make_agent()
    key, raw = APIKey.generate("runner", ["run"], max_concurrent_runs=2)
    first = run_request(api_client, agent.id, raw)
    assert first.status_code == 202
    # A child run of an admitted run is part of it: it takes no slot of its own.
    make_run(target=agent.id, caller=key.caller, parent=Run.objects.get(id=first.json()["id"]))
    assert run_request(api_client, agent.id, raw).status_code == 202

    refused = run_request(api_client, agent.id, raw, session_id="never-made")
    assert assert_quota_refusal(refused, quotas.CONCURRENT_RUNS, 2) == quotas.CONCURRENT_RETRY_AFTER_SECONDS
    assert key_runs(key) == 3  # two runs and the child: no row for the refused request
    assert not Session.objects.filter(id="never-made").exists()

    Run.objects.filter(id=first.json()["id"]).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    assert run_request(api_client, agent.id, raw).status_code == 202  # a finished run frees its slot


@pytest.mark.django_db
def test_an_idempotent_replay_is_answered_at_the_limit(api_client, auth_on):
    agent = make_agent()
    _, raw = APIKey.generate("runner", ["run"], max_concurrent_runs=1)
    headers = {"HTTP_IDEMPOTENCY_KEY": "same-request", **bearer(raw)}
    first = api_client.post(f"/api/agents/{agent.id}/run", {"input": "hi"}, format="json", **headers)
    again = api_client.post(f"/api/agents/{agent.id}/run", {"input": "hi"}, format="json", **headers)
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]


# --- tokens per day


@pytest.mark.django_db
def test_the_token_budget_counts_todays_finished_runs_and_refuses_until_midnight(api_client, auth_on):
    agent = make_agent()
    key, raw = APIKey.generate("budget", ["run"], tokens_per_day=100, max_concurrent_runs=1)
    now = timezone.now()
    midnight = quotas.utc_midnight(now)
    done = {"status": RunStatus.SUCCEEDED, "caller": key.caller, "target": agent.id}
    parent = make_run(**done, finished_at=now, input_tokens=60, output_tokens=30)
    make_run(**done, finished_at=midnight - timedelta(seconds=1), input_tokens=10_000)  # yesterday's
    make_run(**(done | {"caller": "key:someone-else"}), finished_at=now, input_tokens=10_000)
    assert quotas.tokens_today(key.caller) == 90
    assert run_request(api_client, agent.id, raw).status_code == 202

    make_run(**done, parent=parent, finished_at=now, output_tokens=10)  # a child's model calls count
    refused = run_request(api_client, agent.id, raw)
    # Both quotas are used up now: the token budget is named, its wait being the longer one.
    retry_after = assert_quota_refusal(refused, quotas.TOKENS_PER_DAY, 100)
    to_midnight = (quotas.next_utc_midnight() - datetime.now(UTC)).total_seconds()
    assert abs(retry_after - to_midnight) <= 5
    assert key_runs(key) == 4  # three of its runs made here, one accepted


# --- the other entry points


class KeyClient:
    """Django's AsyncClient sending one API key (and A2A-Version) with every request."""

    def __init__(self, raw: str) -> None:
        self.client = AsyncClient()
        self.headers = {"Authorization": f"Bearer {raw}", **A2A_HEADERS}

    async def get(self, path: str):
        return await self.client.get(path, headers=self.headers)

    async def post(self, path: str, body: dict[str, Any]):
        return await self.client.post(path, body, content_type="application/json", headers=self.headers)


async def _connect(path: str, raw: str) -> WebsocketCommunicator:
    app = WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))
    return WebsocketCommunicator(app, path, headers=[(b"authorization", f"Bearer {raw}".encode())])


@pytest.mark.django_db(transaction=True)
async def test_the_run_quotas_hold_on_a2a_agui_and_websockets(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    agent = await sync_to_async(make_agent)()
    key, raw = await sync_to_async(APIKey.generate)("runner", ["run"], max_concurrent_runs=1)
    await sync_to_async(make_run)(target=agent.id, caller=key.caller)  # the one slot is taken
    client = KeyClient(raw)

    response = await client.post(f"/a2a/agents/{agent.id}", a2a_rpc(a2a_send()))
    assert response.status_code == 429 and response["Retry-After"] == "5"
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32000
    assert_a2a_quota_error(body["error"], quotas.CONCURRENT_RUNS, 1)

    response = await client.post(f"/a2a/agents/{agent.id}/message:send", a2a_send())
    assert response.status_code == 429 and response["Retry-After"] == "5"
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert_a2a_quota_error(response.json()["error"], quotas.CONCURRENT_RUNS, 1)

    response = await client.post(f"/agui/agents/{agent.id}", agui_body())
    assert_quota_refusal(response, quotas.CONCURRENT_RUNS, 1)

    socket = await _connect(f"/ws/agui/agents/{agent.id}/", raw)
    assert (await socket.connect(timeout=TIMEOUT))[0]
    await socket.send_json_to(agui_body())
    refused = await socket.receive_json_from(timeout=TIMEOUT)
    assert refused["type"] == "RUN_ERROR" and refused["code"] == "quota_exceeded", refused
    await socket.disconnect()

    assert await sync_to_async(key_runs)(key) == 1


@pytest.mark.django_db(transaction=True)
async def test_requests_per_minute_hold_on_a2a_agui_and_websocket_handshakes(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    agent = await sync_to_async(make_agent)()
    key, raw = await sync_to_async(APIKey.generate)("chatty", ["run"], requests_per_minute=1)
    client = KeyClient(raw)
    first = await client.get(f"/agui/agents/{agent.id}")
    assert first.status_code == 200, first.content  # the minute's one request

    response = await client.post(f"/agui/agents/{agent.id}", agui_body())
    assert_quota_refusal(response, quotas.REQUESTS_PER_MINUTE, 1)

    response = await client.post(f"/a2a/agents/{agent.id}", a2a_rpc(a2a_send()))
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert_a2a_quota_error(response.json()["error"], quotas.REQUESTS_PER_MINUTE, 1)

    socket = await _connect(f"/ws/agui/agents/{agent.id}/", raw)
    assert (await socket.connect(timeout=TIMEOUT))[0], "refusals accept first so that the close code arrives"
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert frame["code"] == "quota_exceeded" and frame["details"]["quota"] == quotas.REQUESTS_PER_MINUTE
    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4429}
    assert await sync_to_async(key_runs)(key) == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_run_requests_never_exceeds_max_concurrent_runs():
    """Twelve requests at once against a served ASGI app, half REST and half A2A (whose views
    reach the database from several threads at once): exactly the limit is admitted."""
    from asteros_site.asgi import application

    # Slow runs: still active if a worker picks them up during the burst.
    agent = make_agent(parameters={"reply_tokens": 5000, "tokens_per_second": 20})
    key, raw = APIKey.generate("burst", ["run"], max_concurrent_runs=3)
    auth = {"Authorization": f"Bearer {raw}"}

    with ServerThread(application) as server:

        def send(n: int) -> int:
            if n % 2:
                url, body = f"{server.url}/a2a/agents/{agent.id}", a2a_rpc(a2a_send(f"a2a {n}"))
                return httpx.post(url, json=body, headers=auth | A2A_HEADERS, timeout=30).status_code
            url, body = f"{server.url}/api/agents/{agent.id}/run", {"input": f"rest {n}"}
            return httpx.post(url, json=body, headers=auth, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(send, range(12)))
    try:
        accepted = [s for s in statuses if s in (200, 202)]
        assert len(accepted) == 3 and statuses.count(429) == 9, statuses
        assert Run.objects.filter(caller=key.caller, status__in=ACTIVE_STATUSES).count() == 3
    finally:
        for run in Run.objects.filter(caller=key.caller, parent__isnull=True):
            with contextlib.suppress(Conflict):  # already over
                cancel_run(run.id)
            wait_for_run(run.id, timeout=30)


# --- GET /api/keys/me/usage


@pytest.mark.django_db
def test_usage_reports_the_calling_keys_limits_and_use(api_client, auth_on):
    agent = make_agent()
    key, raw = APIKey.generate("metered", ["read"], requests_per_minute=10, max_concurrent_runs=4, tokens_per_day=500)
    make_run(target=agent.id, caller=key.caller)  # active
    make_run(
        target=agent.id, caller=key.caller, status=RunStatus.SUCCEEDED, finished_at=timezone.now(), input_tokens=40
    )
    make_run(target=agent.id, caller="key:other", input_tokens=7)
    api_client.get("/api/agents", **bearer(raw))

    response = api_client.get(USAGE, **bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == {"name": "metered", "prefix": key.prefix}
    rpm, runs, tokens = (body["quotas"][q] for q in ("requests_per_minute", "concurrent_runs", "tokens_per_day"))
    assert rpm["limit"] == 10 and rpm["used"] == 2 and rpm["remaining"] == 8  # this request included
    assert 1 <= rpm["resets_in_seconds"] <= 60 and rpm["resets_at"]
    assert runs == {"limit": 4, "used": 1, "remaining": 3, "resets_at": None, "resets_in_seconds": None}
    assert tokens["limit"] == 500 and tokens["used"] == 40 and tokens["remaining"] == 460
    assert tokens["resets_at"] == quotas.next_utc_midnight().isoformat().replace("+00:00", "Z")


@pytest.mark.django_db
def test_usage_of_an_unlimited_key_and_of_the_settings_key(api_client, auth_on):
    _, raw = APIKey.generate("free", ["read"])
    quotas_of = api_client.get(USAGE, **bearer(raw)).json()["quotas"]
    assert all(q["limit"] is None and q["remaining"] is None for q in quotas_of.values())
    assert quotas_of["requests_per_minute"]["used"] == 1

    settings_key = api_client.get(USAGE, **bearer(SETTINGS_KEY)).json()
    assert settings_key["key"] == {"name": "settings", "prefix": "settings"}
    assert all(q["limit"] is None for q in settings_key["quotas"].values())


@pytest.mark.django_db
def test_usage_needs_an_api_key(api_client, staff_user, settings_options):
    # Auth off and no key: nothing to report on.
    error = assert_error(api_client.get(USAGE), 401, "api_key_required")
    assert "Authorization: Bearer" in error["message"]
    # A staff session (the browsable API) has no key either.
    api_client.force_login(staff_user)
    response = api_client.get(USAGE)
    assert_error(response, 401, "api_key_required")
    assert response["WWW-Authenticate"].startswith("Bearer")
    api_client.logout()
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    assert_error(api_client.get(USAGE), 401, "not_authenticated")


@pytest.mark.django_db
def test_usage_bad_input_and_auth_denied(api_client, auth_on, keys):
    assert_error(api_client.get(USAGE, **bearer("ak_0000_not-a-real-key")), 401, "authentication_failed")
    assert_error(api_client.get(USAGE, **bearer(keys.none)), 403, "permission_denied")  # no read scope
    assert_error(api_client.post(USAGE, {}, format="json", **bearer(keys.admin)), 405, "method_not_allowed")
    assert_error(api_client.get("/api/keys/someone-else/usage", **bearer(keys.admin)), 404, "not_found")


# --- two processes, one count


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_requests_per_minute_count_through_redis(api_client):
    from tests.support.workers import worker_database_url

    key, raw = APIKey.generate("shared", ["read"], requests_per_minute=4)
    for _ in range(2):  # this process
        assert api_client.get("/api/agents", **bearer(raw)).status_code == 200

    port = free_port()
    env = os.environ | {"DATABASE_URL": worker_database_url(), "DEBUG": "1", "ASTEROS_LOG_LEVEL": "warning"}
    command = [sys.executable, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_200(f"{url}/api", server)
        auth = {"Authorization": f"Bearer {raw}"}
        assert [httpx.get(f"{url}/api/agents", headers=auth).status_code for _ in range(2)] == [200, 200]
        refused = httpx.get(f"{url}/api/agents", headers=auth)
        assert refused.status_code == 429 and refused.json()["error"]["details"]["limit"] == 4
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert_quota_refusal(api_client.get("/api/agents", **bearer(raw)), quotas.REQUESTS_PER_MINUTE, 4)
    assert quotas.request_windows().peek(key.prefix).count == 4
