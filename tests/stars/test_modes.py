"""Broadcast and round_robin transcripts, the per-run mode, and stars that cannot run."""

from __future__ import annotations

import pytest

from cosmos.models import Run, RunStatus
from cosmos.services import runs as run_services
from cosmos.services.errors import NotFound, NotRunnable
from stars.models import Star, StarMode
from tests.factories import make_agent
from tests.stars.helpers import child_of, children, conversation, failing_worker, make_team, subagent_events, worker
from tests.support.runs import assert_gapless, wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def run_star(star_id: str, task: object = "Name a colour", timeout: float = 60, **options) -> Run:
    raw = {"message": task, **options} if isinstance(task, str) else task
    run, _ = run_services.start_run("star", star_id, raw)
    return wait_for_run(run.id, timeout)


def test_broadcast_sends_the_task_to_every_worker_and_the_leader_synthesizes():
    leader = make_agent(parameters={"reply": "SYNTHESIS of: {input}"})
    star = make_team(
        leader, {"red": worker("RED", ttft_ms=500), "blue": worker("BLUE", ttft_ms=500)}, mode=StarMode.BROADCAST
    )

    run = run_star(star.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    red, blue = child_of(run.id, "red")[0], child_of(run.id, "blue")[0]
    assert red.input["message"] == blue.input["message"] == "Name a colour"
    assert red.started_at < blue.finished_at and blue.started_at < red.finished_at  # in parallel
    synthesis = child_of(run.id, "lead")[0]
    assert "[red] RED" in synthesis.input["message"] and "[blue] BLUE" in synthesis.input["message"]
    assert run.output.startswith("SYNTHESIS of: Task: Name a colour")
    transcript = conversation(star.id, run.id)
    assert transcript[0] == ("user", "*", "Name a colour") and transcript[-1] == ("lead", "user", run.output)
    assert sorted(transcript[1:3]) == [("blue", "lead", "BLUE"), ("red", "lead", "RED")]  # in the order they finished
    finished = [e["member"] for e in subagent_events(run.id, "SUBAGENT_FINISHED")]
    assert sorted(finished[:2]) == ["blue", "red"] and finished[2] == "lead"
    assert_gapless(run.id)


def test_broadcast_carries_on_when_a_worker_fails():
    leader = make_agent(parameters={"reply": "{input}"})
    star = make_team(leader, {"ok": worker("FINE"), "down": failing_worker("out of order")}, mode="broadcast")

    run = run_star(star.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "[ok] FINE" in run.output
    assert "[down] (no answer: Member 'down' failed (model_unavailable): out of order)" in run.output


def test_round_robin_members_speak_in_turn_over_a_shared_transcript_and_the_leader_concludes():
    leader = worker("LEAD-TURN")
    star = make_team(
        leader, {"ann": worker("ANN-TURN"), "bob": worker("BOB-TURN")}, mode=StarMode.ROUND_ROBIN, config={"rounds": 2}
    )

    run = run_star(star.id, "Pick a name")

    assert run.status == RunStatus.SUCCEEDED, run.error
    turns = children(run.id)
    speakers = [c.metadata["star_member"] for c in turns]
    assert speakers == ["lead", "ann", "bob", "lead", "ann", "bob", "lead"]  # two rounds, then the conclusion
    # Each turn sees everything said before it.
    assert "(nobody has spoken yet)" in turns[0].input["message"]
    assert "[ann] ANN-TURN" in turns[2].input["message"] and "Round 1 of 2" in turns[2].input["message"]
    assert turns[4].input["message"].count("[bob] BOB-TURN") == 1 and "Round 2 of 2" in turns[4].input["message"]
    assert "Conclude" in turns[-1].input["message"]
    assert turns[-1].input["message"].count("ANN-TURN") == 2 and turns[-1].input["message"].count("LEAD-TURN") == 2
    transcript = conversation(star.id, run.id)
    assert transcript[0] == ("user", "*", "Pick a name")
    assert [(sender, to) for sender, to, _ in transcript[1:7]] == [(s, "*") for s in speakers[:6]]
    assert transcript[2][2] == "ANN-TURN" and transcript[-1] == ("lead", "user", run.output)


def test_round_robin_rounds_can_be_set_per_run():
    star = make_team(make_agent(), {"ann": worker("A")}, mode="round_robin", config={"rounds": 3})

    run = run_star(star.id, {"message": "go"})
    assert len(children(run.id)) == 3 * 2 + 1

    run, _ = run_services.start_run("star", star.id, "go", metadata={"rounds": 1})
    run = wait_for_run(run.id)
    assert len(children(run.id)) == 1 * 2 + 1


def test_a_failed_turn_is_noted_in_the_transcript_and_the_discussion_goes_on():
    star = make_team(make_agent(parameters={"reply": "{input}"}), {"down": failing_worker("mute")}, mode="round_robin")

    run = run_star(star.id, rounds=1)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "[down] (no answer: Member 'down' failed (model_unavailable): mute)" in run.output


def test_the_mode_can_be_chosen_per_run():
    star = make_team(make_agent(parameters={"reply": "{input}"}), {"a": worker("AAA")})  # delegate by default

    run = run_star(star.id, mode="broadcast")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "[a] AAA" in run.output
    run, _ = run_services.start_run("star", star.id, "x", metadata={"mode": "round_robin", "rounds": 1})
    assert [c.metadata["star_member"] for c in children(wait_for_run(run.id).id)] == ["lead", "a", "lead"]


def test_an_unknown_mode_or_a_mode_needing_workers_fails_the_run_with_the_reason():
    star = make_team(make_agent(), {})

    unknown = run_star(star.id, mode="free_for_all")
    assert unknown.status == RunStatus.FAILED and unknown.error["code"] == "invalid_mode"
    assert "delegate, broadcast, round_robin" in unknown.error["message"]

    lonely = run_star(star.id, mode="broadcast")
    assert lonely.status == RunStatus.FAILED and lonely.error["code"] == "no_workers"
    assert "broadcast mode needs at least one" in lonely.error["message"]


def test_a_star_that_cannot_run_is_refused_before_a_run_is_created():
    agent = make_agent()
    with pytest.raises(NotFound, match="No star with id 'nowhere'"):
        run_services.start_run("star", "nowhere", "hi")

    leaderless = make_team(None, {"a": agent})
    with pytest.raises(NotRunnable, match="has no leader") as error:
        run_services.start_run("star", leaderless.id, "hi")
    assert error.value.code == "no_leader"

    workerless = make_team(make_agent(), {}, mode="broadcast")
    with pytest.raises(NotRunnable, match="no workers; broadcast mode needs at least one") as error:
        run_services.start_run("star", workerless.id, "hi")
    assert error.value.code == "no_workers"

    disabled_workers = make_team(make_agent(), {"off": make_agent(enabled=False)}, mode="round_robin")
    with pytest.raises(NotRunnable, match="disabled agents") as error:
        run_services.start_run("star", disabled_workers.id, "hi")

    disabled = make_team(make_agent(), {"a": make_agent()})
    Star.objects.filter(id=disabled.id).update(enabled=False)
    with pytest.raises(NotRunnable, match="is disabled") as error:
        run_services.start_run("star", disabled.id, "hi")
    assert error.value.code == "star_disabled"

    sleepy_leader = make_team(make_agent(enabled=False), {"a": make_agent()})
    with pytest.raises(NotRunnable, match=r"leader of star .* is disabled") as error:
        run_services.start_run("star", sleepy_leader.id, "hi")
    assert error.value.code == "leader_disabled"
    assert Run.objects.count() == 0
