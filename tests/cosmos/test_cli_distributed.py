"""``asteros run`` in distributed mode: a ``celery worker`` process executes a workflow, and the
terminal prints each step's lines under its label, in order, then the output, all through Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cosmos.test_cli_stars_workflows import labelled
from tests.factories import make_agent, make_workflow
from tests.support.processes import ROOT
from tests.support.workers import worker_database_url

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def paced(word: str):
    reply = "\n".join(f"{word} {n}" for n in ("one", "two", "three"))
    return make_agent(parameters={"reply": reply, "tokens_per_second": 60})


def test_a_workflow_run_by_a_worker_process_prints_each_step_under_its_label(embedded_worker):
    alpha, beta = paced("alpha"), paced("beta")
    workflow = make_workflow(
        definition={
            "steps": [
                {
                    "name": "both",
                    "type": "parallel",
                    "branches": [
                        {"name": "a", "type": "agent", "agent": alpha.id, "prompt": "{{ input }}"},
                        {"name": "b", "type": "agent", "agent": beta.id, "prompt": "{{ input }}"},
                    ],
                }
            ],
            "output": "{{ 'DONE' if steps.a.output and steps.b.output else 'MISSING' }}",
        }
    )
    env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"}

    result = subprocess.run(
        [sys.executable, "manage.py", "asteros", "run", f"workflow:{workflow.id}", "go"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert labelled(result.stdout, "step a") == ["alpha one", "alpha two", "alpha three"]
    assert labelled(result.stdout, "step b") == ["beta one", "beta two", "beta three"]
    assert result.stdout.splitlines()[-1] == "DONE"
