"""/metrics: the asteros_* metrics move when runs complete, wherever the worker runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from cosmos.models import Agent
from tests.factories import make_agent
from tests.support.runs import wait_for_run


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _run_agents(client, count: int) -> list[str]:
    agent = make_agent(parameters={"reply_tokens": 3})
    ids = []
    for _ in range(count):
        response = client.post(f"/api/agents/{agent.id}/run", {"input": "count me"}, format="json")
        assert response.status_code == 202
        ids.append(response.json()["id"])
    for run_id in ids:
        assert wait_for_run(run_id, timeout=60).status == "succeeded"
    return ids


@pytest.mark.django_db(transaction=True)
def test_metrics_move_when_runs_complete(api_client, embedded_worker):
    before = scrape(api_client)
    _run_agents(api_client, 2)
    after = scrape(api_client)
    runs = ("asteros_runs_total", {"kind": "agent", "status": "succeeded"})
    assert value(after, runs[0], **runs[1]) - value(before, runs[0], **runs[1]) == 2
    assert value(after, "asteros_events_total") > value(before, "asteros_events_total")
    assert value(after, "asteros_run_duration_seconds_count", kind="agent") >= 2
    assert value(after, "asteros_run_queue_seconds_count") >= 2
    assert value(after, "asteros_agents") == Agent.objects.count() == 1
    assert any(name == "django_http_requests_total_by_method_total" for name, _ in after)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_values_recorded_in_a_worker_process_reach_the_api_scrape(api_client, embedded_worker):
    """Distributed mode: a real ``celery worker`` subprocess runs the runs; the scrape of this
    (API) process sums the worker's files in PROMETHEUS_MULTIPROC_DIR."""
    assert settings.ASTEROS.distributed
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    worker_pid = embedded_worker.pid
    assert worker_pid != os.getpid()
    before = scrape(api_client)
    _run_agents(api_client, 3)
    after = scrape(api_client)
    labels = {"kind": "agent", "status": "succeeded"}
    assert value(after, "asteros_runs_total", **labels) - value(before, "asteros_runs_total", **labels) == 3
    assert value(after, "asteros_tokens_total", agent=Agent.objects.get().id, direction="output") >= 9
    assert (directory / f"counter_{worker_pid}.db").exists()  # written by the worker, not by us
