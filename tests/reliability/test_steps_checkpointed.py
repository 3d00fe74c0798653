"""A worker killed mid-run: the retried star and workflow runs keep the steps that had finished.

A star or workflow run does its work as child runs (one per agent step, one per member turn),
executed in its parent's worker. When that worker is killed (SIGKILL), the reaper re-queues the
parent and a live worker runs it again (attempt 2). The child runs that had already SUCCEEDED
are reused there, their output taken as it is: their model calls are not made a second time.
Only the work that was cut off (the child in flight at the kill) and what follows it runs again.

One test, every kind of parent mixed (so the file takes one kill and one recovery): sequential
agent steps, a parallel step, a loop step, a router step (an agent chooses the route), and a
round_robin star (each member in turn, the leader concludes: no tool-calling leader, so every
member call is known in advance). Every agent calls the local fake OpenAI server, which echoes
the prompt after 1.2 s: outputs are deterministic, and each child's prompt is unique (it holds
the parent's own input), so the server's records tell how many times each child's model call
was made.

The worker that holds every parent is killed once each parent has at least two SUCCEEDED
children and is still running; a second worker, started meanwhile, recovers them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cosmos.models import Run, RunStatus
from cosmos.runtime.events import closing_events
from cosmos.services import runs as run_services
from stars.models import Role
from stars.modes import conclude_prompt, turn_prompt
from tests.factories import make_agent, make_membership, make_star, make_workflow
from tests.support.model_server import ModelServer, RecordedRequest
from tests.support.runs import describe_tree, dispatch_to_broker, wait_for_runs
from tests.support.workers import WorkerProcess

from .faults import FAULT_TEST_MARKS, assert_clean_run, report, stored

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
LATENCY_MS = 1200  # per model call: each parent makes 4 in a row, about 5 s uninterrupted
PARENTS_PER_KIND = 3
CALLS_IN_A_ROW = 4  # the longest chain of model calls of one parent, whatever its kind
# The model calls of one uninterrupted parent (the parallel one makes two of its five at once).
CALLS_PER_PARENT = {"sequential": 4, "parallel": 5, "loop": 4, "router": 4, "star": 4}
SUCCEEDED_BEFORE_KILL = 2  # children of each parent that have succeeded when the worker is killed
KILL_WITHIN_SECONDS = 30  # from dispatch until every parent has reached that point
RECOVERY_SECONDS = LEASE_SECONDS + 2 * CALLS_IN_A_ROW * LATENCY_MS / 1000 + 20  # a loaded 2-core machine
ECHO = "(local model server) You said: "
STAR_MEMBERS = (("lead", ""), ("ann", "ann checks facts"), ("bob", "bob writes"))  # name, description


def echo(text: str) -> str:
    """The fake model's answer to a prompt (it echoes it, trailing spaces dropped)."""
    return f"{ECHO}{text}".rstrip()


# --- the parents: one definition per kind, and the output an uninterrupted run gives


def sequential(agent: str) -> tuple[dict, Callable[[str], str]]:
    names = ("draft", "review", "edit", "polish")
    steps = [{"name": "draft", "type": "agent", "agent": agent, "prompt": "draft {{ input }}"}]
    steps += [{"name": n, "type": "agent", "agent": agent, "prompt": n + " {{ previous }}"} for n in names[1:]]

    def expected(text: str) -> str:
        for name in names:
            text = echo(f"{name} {text}")
        return text

    return {"steps": steps}, expected


def parallel(agent: str) -> tuple[dict, Callable[[str], str]]:
    definition = {
        "steps": [
            {
                "name": "fan",
                "type": "parallel",
                "branches": [
                    {"name": "short", "steps": [agent_step("short-1", agent, "short {{ input }}")]},
                    {
                        "name": "long",
                        "steps": [
                            agent_step("long-1", agent, "long one {{ input }}"),
                            agent_step("long-2", agent, "long two {{ previous }}"),
                        ],
                    },
                ],
            },
            agent_step("join", agent, "join {{ previous.short }} + {{ previous.long }}"),
            agent_step("sign", agent, "sign {{ previous }}"),
        ]
    }

    def expected(text: str) -> str:
        short = echo(f"short {text}")
        long = echo("long two " + echo(f"long one {text}"))
        return echo("sign " + echo(f"join {short} + {long}"))

    return definition, expected


def loop(agent: str) -> tuple[dict, Callable[[str], str]]:
    definition = {
        "steps": [
            {
                "name": "refine",
                "type": "loop",
                "max_iterations": 3,
                "steps": [agent_step("pass", agent, "pass {{ loop.iteration }}: {{ previous }}")],
            },
            agent_step("finish", agent, "finish {{ previous }}"),
        ]
    }

    def expected(text: str) -> str:
        for iteration in (1, 2, 3):
            text = echo(f"pass {iteration}: {text}")
        return echo(f"finish {text}")

    return definition, expected


def router(agent: str) -> tuple[dict, Callable[[str], str]]:
    definition = {
        "steps": [
            {
                "name": "triage",
                "type": "router",
                "agent": agent,
                # The echo names "billing" first: the route the agent chooses.
                "prompt": "billing or support? {{ input }}",
                "routes": [
                    {
                        "name": "billing",
                        "steps": [
                            agent_step("bill", agent, "bill {{ input }}"),
                            agent_step("invoice", agent, "invoice {{ previous }}"),
                            agent_step("receipt", agent, "receipt {{ previous }}"),
                        ],
                    },
                    {"name": "support", "steps": [agent_step("help", agent, "help {{ input }}")]},
                ],
            }
        ]
    }

    def expected(text: str) -> str:
        for name in ("bill", "invoice", "receipt"):
            text = echo(f"{name} {text}")
        return text

    return definition, expected


def agent_step(name: str, agent: str, prompt: str) -> dict:
    return {"name": name, "type": "agent", "agent": agent, "prompt": prompt}


def star_expected(task: str) -> str:
    """round_robin, one round: lead, ann, bob speak in turn over the transcript, lead concludes."""
    transcript: list[str] = []
    for name, about in STAR_MEMBERS:
        transcript.append(f"[{name}] {echo(turn_prompt(task, transcript, name, about, 1, 1))}")
    return echo(conclude_prompt(task, transcript, STAR_MEMBERS[0][0]))


WORKFLOWS = {"sequential": sequential, "parallel": parallel, "loop": loop, "router": router}


def model_agent(name: str):
    return make_agent(id=name, provider="openai", model="fake-model", parameters={"timeout": 30, "max_retries": 0})


def round_robin_star():
    star = make_star(mode="round_robin", config={"rounds": 1})
    for order, (name, about) in enumerate(STAR_MEMBERS):
        role = Role.LEADER if order == 0 else Role.WORKER
        agent = model_agent(f"{star.id}-{name}")
        make_membership(star, agent, name=name, role=role, order=order, description=about)
    return star


# --- what the model server and the database say


def prompt_of(request: RecordedRequest) -> str | None:
    """The last user message of an OpenAI chat request: the child run's input. None for a request
    whose body never arrived: the kill cut the worker off between its headers and its body, so
    the model was never asked (it answered nothing, and the call is made again after)."""
    if not isinstance(request.body, dict):
        return None
    for message in reversed(request.body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content)
    return ""


def step_of(child: Run) -> str:
    """Which step (or star member) of its parent a child run did."""
    metadata = child.metadata or {}
    return str(metadata.get("workflow_step") or metadata.get("star_member"))


@dataclass
class Parent:
    kind: str  # "sequential", "parallel", "loop", "router", "star"
    run_id: str
    text: str
    expected: str
    # At the kill: the children that had succeeded, as (id, step, input, output).
    done_at_kill: list[tuple[str, str, str, str]] = field(default_factory=list)
    status_at_kill: str = ""


def children(run_id: str) -> list[Run]:
    return list(Run.objects.filter(parent_id=run_id).order_by("created_at"))


def test_a_killed_workers_retried_parents_reuse_the_children_that_had_succeeded(redis_server, record_property):
    server = ModelServer(latency_ms=LATENCY_MS, max_records=5000).start()
    env = {
        "REDIS_URL": redis_server.url,
        "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS),
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "OPENAI_API_KEY": "local",
    }
    holder = WorkerProcess(concurrency=40, env=env).spawn()
    rescuer = WorkerProcess(concurrency=40, env=env)
    try:
        holder.wait_ready()
        agent = model_agent("checkpointed-agent").id
        parents: list[Parent] = []
        for i in range(PARENTS_PER_KIND):
            for kind, build in WORKFLOWS.items():
                definition, expected = build(agent)
                workflow = make_workflow(definition=definition)
                text = f"{kind}-job-{i}"
                run, _ = run_services.start_run("workflow", workflow.id, text, dispatch=False)
                parents.append(Parent(kind, str(run.id), text, expected(text)))
            text = f"star-job-{i}"
            run, _ = run_services.start_run("star", round_robin_star().id, text, dispatch=False)
            parents.append(Parent("star", str(run.id), text, star_expected(text)))
        run_ids = [p.run_id for p in parents]
        dispatch_to_broker(run_ids, redis_server.url)
        # Every parent claimed by the holder; only then may a second worker take from the queue.
        wait_for_runs(run_ids, statuses=(RunStatus.RUNNING,), timeout=30)
        assert Run.objects.filter(id__in=run_ids, worker_id__startswith=holder.engine_id_prefix).count() == len(parents)
        rescuer.spawn()

        # Each parent has some children done and some work left: kill the worker that holds them.
        deadline = time.monotonic() + KILL_WITHIN_SECONDS
        while True:
            done = Counter(
                str(parent_id)
                for parent_id in Run.objects.filter(parent_id__in=run_ids, status=RunStatus.SUCCEEDED).values_list(
                    "parent_id", flat=True
                )
            )
            if all(done[run_id] >= SUCCEEDED_BEFORE_KILL for run_id in run_ids):
                break
            assert time.monotonic() < deadline, "parents without two succeeded children: " + "; ".join(
                describe_tree(run_id) for run_id in run_ids if done[run_id] < SUCCEEDED_BEFORE_KILL
            )
            time.sleep(0.05)
        holder.kill()
        killed_at = time.monotonic()
        calls_at_kill = len(server.model_requests())
        # Frozen from here on until the lease expires: nothing runs the parents meanwhile.
        cut_off: set[str] = set()  # the prompts of the children the kill cut off
        for parent in parents:
            parent.status_at_kill = Run.objects.get(id=parent.run_id).status
            for child in children(parent.run_id):
                if child.status == RunStatus.SUCCEEDED:
                    parent.done_at_kill.append((str(child.id), step_of(child), child.input["message"], child.output))
                else:
                    cut_off.add(child.input["message"])

        rescuer.wait_ready()
        runs = {str(r.id): r for r in wait_for_runs(run_ids, timeout=RECOVERY_SECONDS)}
        recovered_in = time.monotonic() - killed_at
    finally:
        holder.close()
        rescuer.close()
        server.stop()

    asked = (prompt_of(request) for request in server.model_requests())
    calls = Counter(prompt for prompt in asked if prompt is not None)
    interrupted = [p for p in parents if p.status_at_kill == RunStatus.RUNNING]
    assert {p.kind for p in interrupted} == {"sequential", "parallel", "loop", "router", "star"}, [
        (p.kind, p.status_at_kill) for p in parents
    ]
    # Every child's prompt is its own, so the model calls per prompt count its executions.
    prompts = [prompt for p in parents for _, _, prompt, _ in p.done_at_kill]
    assert len(set(prompts)) == len(prompts) and not cut_off & set(prompts), "two children share a prompt"

    # The runs themselves: all succeeded, with the answer an uninterrupted run gives, and
    # well-formed logs (one final event, every subagent opened is closed with its run id).
    for parent in parents:
        run = runs[parent.run_id]
        assert run.status == RunStatus.SUCCEEDED, (parent.kind, run.error, describe_tree(run.id))
        assert run.output == parent.expected, (parent.kind, run.output, parent.expected)
        assert_clean_run(run)
        log = [event for _, event in stored(run.id)]
        assert closing_events(log) == [], (parent.kind, [e["type"] for e in log])
        if parent in interrupted:
            assert run.attempts == 2 and not run.worker_id.startswith(holder.engine_id_prefix), run

    # The checkpoint: every child that had succeeded before the kill ran once (one model call
    # for its prompt) and is the row the retried parent used (no second success for that step).
    executed_again: list[str] = []
    again_by_kind: Counter = Counter()
    duplicated: list[str] = []
    reused = 0
    for parent in interrupted:
        final_children = children(parent.run_id)
        succeeded = Counter((step_of(c), c.input["message"]) for c in final_children if c.status == RunStatus.SUCCEEDED)
        by_id = {str(c.id): c for c in final_children}
        for child_id, step, prompt, output in parent.done_at_kill:
            kept = by_id[child_id]
            assert (kept.status, kept.output) == (RunStatus.SUCCEEDED, output), kept
            if calls[prompt] != 1:
                executed_again.append(f"{parent.kind} {parent.text} step {step!r}: {calls[prompt]} model calls")
                again_by_kind[parent.kind] += 1
            if succeeded[(step, prompt)] != 1:
                duplicated.append(f"{parent.kind} {parent.text} step {step!r}: {succeeded[(step, prompt)]} succeeded")
            else:
                reused += 1
    done_before = sum(len(p.done_at_kill) for p in interrupted)
    needed = sum(CALLS_PER_PARENT[p.kind] for p in parents)
    total = sum(calls.values())
    report(
        record_property,
        "a worker killed during star and workflow runs",
        parents=len(parents),
        interrupted=len(interrupted),
        children_succeeded_before_kill=done_before,
        executed_again=len(executed_again),
        executed_again_by_kind=dict(again_by_kind),
        reused=reused,
        cut_off_by_kill=len(cut_off),
        model_calls=total,
        model_calls_at_kill=calls_at_kill,
        model_calls_uninterrupted=needed,
        extra_model_calls=total - needed,
        lease_seconds=LEASE_SECONDS,
        all_terminal_after_kill_s=round(recovered_in, 1),
    )
    assert not executed_again, (
        f"{len(executed_again)} of the {done_before} child runs that had SUCCEEDED before the kill were executed "
        f"again when their parent was retried ({total} model calls, {needed} for an uninterrupted run):\n"
        + "\n".join(executed_again)
    )
    assert not duplicated, "a retried parent ran a step again that had succeeded:\n" + "\n".join(duplicated)
    # Nothing else ran twice either: only the model calls the kill cut off were made again.
    repeated = {prompt: n for prompt, n in calls.items() if n > (2 if prompt in cut_off else 1)}
    assert not repeated, f"model calls made more than needed: {repeated}"
    assert total <= needed + len(cut_off), (total, needed, len(cut_off))
