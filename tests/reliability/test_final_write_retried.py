"""A database connection lost at the worst moments: a run's final write, and its claim.

A real ``celery worker`` process executes the runs on PostgreSQL. A trigger in the test database
terminates the worker's own connection (``pg_terminate_backend``: what a database restart or a
failover does to it) exactly once, in the middle of the chosen statement:

- the final write (the insert of ``RUN_FINISHED``): the model's work is done. The write must be
  retried on a new connection, not abandoned to the reaper, which would run the whole run again
  (model and tools called twice);
- the claim (the update ``queued -> running``): the claim must be retried, not leave the run
  queued until the reaper resends it (a minute).

The trigger fires once (a sequence, which a rollback does not undo) and is dropped after the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from cosmos.models import Run, RunEvent, RunStatus
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.runs import dispatch_to_broker, wait_for_run
from tests.support.workers import WorkerProcess

from .faults import FAULT_TEST_MARKS, assert_clean_run, report

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
# Well under the reaper's resend of a queued run (60 s), and under the lease plus a re-run.
DONE_WITHIN_SECONDS = 15


@contextmanager
def connection_cut_once(table: str, timing: str, condition: str) -> Iterator[None]:
    """Terminate the connection that runs the first statement matching ``condition``, once."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE asteros_fault_once")
        cursor.execute(
            """
            CREATE FUNCTION asteros_fault_cut() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('asteros_fault_once') = 1 THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                    PERFORM pg_sleep(5);  -- the termination lands here
                END IF;
                RETURN NEW;
            END $$
            """
        )
        cursor.execute(
            f"CREATE TRIGGER asteros_fault_cut {timing} ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION asteros_fault_cut()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS asteros_fault_cut ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS asteros_fault_cut()")
            cursor.execute("DROP SEQUENCE IF EXISTS asteros_fault_once")


def _fired() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_called FROM asteros_fault_once")
        return bool(cursor.fetchone()[0])


def _run_through_cut(redis_server, table: str, timing: str, condition: str) -> tuple[Run, float]:
    env = {"REDIS_URL": redis_server.url, "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}
    worker = WorkerProcess(concurrency=4, env=env).start()
    try:
        agent = make_agent(parameters={"ttft_ms": 200, "reply_tokens": 5})
        run, _ = run_services.start_run("agent", agent.id, "once only", dispatch=False)
        with connection_cut_once(table, timing, condition):
            started = time.monotonic()
            dispatch_to_broker([run.id], redis_server.url)
            run = wait_for_run(run.id, timeout=DONE_WITHIN_SECONDS)
            took = time.monotonic() - started
            assert _fired(), "the connection was never cut: nothing was tested"
        assert worker.process.poll() is None, worker.output()[-3000:]
    finally:
        worker.close()
    return run, took


def test_a_connection_lost_during_the_final_write_does_not_run_the_run_again(redis_server, record_property):
    run, took = _run_through_cut(redis_server, RunEvent._meta.db_table, "BEFORE INSERT", "NEW.type = 'RUN_FINISHED'")

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1), run
    assert_clean_run(run)
    types = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
    # One attempt's work, stored once: one model answer, no retry marker.
    assert types.count("RUN_STARTED") == 1 and types.count("TEXT_MESSAGE_START") == 1, types
    assert "CUSTOM" not in types, types
    report(
        record_property, "a connection lost during the final write", attempts=run.attempts, run_done_s=round(took, 1)
    )


def test_a_connection_lost_during_the_claim_does_not_leave_the_run_queued(redis_server, record_property):
    run, took = _run_through_cut(
        redis_server, Run._meta.db_table, "BEFORE UPDATE", "OLD.status = 'queued' AND NEW.status = 'running'"
    )

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1), run
    assert_clean_run(run)
    report(record_property, "a connection lost during the claim", attempts=run.attempts, run_done_s=round(took, 1))
