"""The demo data of ``asteros demo`` and the admin user of ``make run``. Both idempotent: the
demo creates only what is missing (``asteros demo --reset`` restores it)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction

from cosmos.models import Agent, Source
from cosmos.runtime.providers.scripted import ARITHMETIC
from cosmos.services.revisions import authored_by
from interfaces.connectors.models import MCPServer, MCPTransport
from stars.models import Membership, Role, Star
from workflows.models import Workflow


def demo_model() -> dict:
    """Anthropic when a key is set, else the offline scripted model."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        return {"provider": "anthropic", "model": os.environ.get("ASTEROS_DEMO_MODEL", "claude-sonnet-4-5")}
    return {"provider": "scripted", "model": "scripted-offline"}


# What the offline model answers, agent by agent, so the demo reads like the real thing: the
# chat team's leader delegates to agent-2, the workflow's steps write notes, questions and drafts
# from the topic, chat-agent calls its tools. With ANTHROPIC_API_KEY the model needs none of it.
_TOPIC = r"Notes on ([^:\n]+):"
CHAT_AGENT_RULES = [
    # The calculator rule the model follows without rules, kept next to the others.
    {"when": ARITHMETIC.pattern, "call": "calculator", "arguments": {"expression": "$match"}},
    {"when": r"\b(?:what time|the time|what day|today)\b", "call": "current_time"},
    {
        "when": rf"(?s)Check these notes.*?{_TOPIC}",
        "reply": "The notes on $1 look right to me. One fix: say where each fact comes from.",
    },
]
LEADER_RULES = [
    # As chat-team's leader it is offered the star's delegate tool: agent-2 writes the answer.
    {
        "when": r"(?s)^\s*(.+?)\s*$",
        "call": "delegate",
        "if_offered": True,
        "arguments": {"member": "agent-2", "instruction": "Write a short, clear paragraph about: $1"},
    },
    {
        "when": r"(?s)Research this topic.*?:\s*(.+?)\s*$",
        "reply": (
            "Notes on $1:\n- A one-line definition of $1.\n- Three facts about $1 that surprise most readers.\n"
            "- Open questions about $1."
        ),
    },
]
WRITER_RULES = [
    {
        "when": r"(?s)Write a short, clear paragraph about:\s*(.+?)\s*$",
        "reply": (
            'On "$1": I looked at what matters most, kept the three points a reader needs and wrote them up '
            "in plain words, one idea per sentence."
        ),
    },
    {
        "when": rf"(?s)List three questions.*?{_TOPIC}",
        "reply": (
            "1. How would you define $1 in one line?\n2. Why should a reader care about $1?\n"
            "3. What is still unknown about $1?"
        ),
    },
    {
        "when": rf"(?s)Draft (\d+) of (\d+).*?{_TOPIC}",
        "reply": (
            "About $3, in short: a one-line definition, the three facts that surprise most readers"
            " and the open questions. Each fact names its source. (draft $1 of $2)"
        ),
    },
]
SLOW_REPLY = (
    "This answer streams slowly on purpose, a few words at a time, so you can watch a run arrive "
    "live on the dashboard, in the admin and on every stream: SSE, websockets, AG-UI and A2A. "
    "You asked: {input}"
)

DEMO_AGENTS = {
    "chat-agent": {
        "name": "Chat agent",
        "description": "A general assistant that can do arithmetic and tell the time.",
        "system_prompt": "You are a helpful assistant. Use tools when they help.",
        "tools": ["calculator", "current_time"],
        "scripted": {"rules": CHAT_AGENT_RULES},
    },
    "agent-1": {
        "name": "Researcher (leader)",
        "description": "Leads the chat team: splits the task and writes the final answer.",
        "system_prompt": "You lead a small team. Delegate research, then write the final answer.",
        "tools": ["calculator"],
        "scripted": {"rules": LEADER_RULES, "results_reply": "The team's answer (agent-2 wrote it):\n{results}"},
    },
    "agent-2": {
        "name": "Writer (worker)",
        "description": "Writes clear prose from notes.",
        "system_prompt": "You turn notes into a short, clear paragraph.",
        "tools": [],
        "scripted": {"rules": WRITER_RULES},
    },
    "approval-agent": {
        "name": "Careful calculator",
        "description": "Calculates, but a person approves every calculation first (human in the loop).",
        "system_prompt": "Use the calculator for arithmetic.",
        "tools": ["calculator"],
        "approvals": {"calculator": "always"},
        "scripted": {},
    },
    "slow-agent": {
        "name": "Slow streamer",
        "description": "Always the offline model, a few words a second: watch a run stream live.",
        "tools": [],
        # Offline even with a key: its point is the pace.
        "offline": {"provider": "scripted", "model": "scripted-offline"},
        "scripted": {"ttft_ms": 400, "tokens_per_second": 8, "reply": SLOW_REPLY},
    },
}

# The demo's MCP server (asteros_site/demo_mcp.py, over stdio) and an agent that uses its tools.
DEMO_MCP_SERVER = {
    "description": "Offline demo tools (a glossary of AsterOS terms, unit conversion), over stdio.",
    "transport": MCPTransport.STDIO,
    "command": "demo",
}
MCP_AGENT = {
    "name": "MCP agent",
    "description": "Explains AsterOS terms and converts units with the tools of the demo MCP server.",
    "system_prompt": "Answer with the tools of the demo MCP server: its glossary and its unit converter.",
    "tools": ["mcp:demo/*"],
}
# The offline model calls the MCP tools the way a real model would: "what is a star?", "3 km in mi".
MCP_AGENT_RULES = [
    {
        "when": r"(?i)(?:what is|what are|explain|define)\s+(?:an?\s+|the\s+)?(\w+)",
        "call": "mcp__demo__glossary",
        "arguments": {"term": "$1"},
    },
    {
        "when": r"(?i)(\d+(?:\.\d+)?)\s*([a-z]+)\s+(?:in|to)\s+([a-z]+)",
        "call": "mcp__demo__convert_units",
        "arguments": {"value": "$1", "from_unit": "$2", "to_unit": "$3"},
    },
]

DEMO_STAR = "chat-team"
DEMO_MEMBERS = (
    ("agent-1", Role.LEADER, ""),
    ("agent-2", Role.WORKER, "Writes clear prose from notes."),
)

# Data passes between steps: research notes fan out to a checker and a reader in parallel, then
# a writer drafts from all three and improves its own draft in a loop (two rounds at most, or
# until it ends a draft with "[DONE]").
DEMO_WORKFLOW = {
    "steps": [
        {
            "name": "research",
            "type": "agent",
            "agent": "agent-1",
            "prompt": "Research this topic and list the key facts as short notes: {{ input }}",
        },
        {
            "name": "review",
            "type": "parallel",
            "max_concurrency": 2,
            "branches": [
                {
                    "name": "check",
                    "type": "agent",
                    "agent": "chat-agent",
                    "prompt": "Check these notes for mistakes and say what to fix: {{ steps.research.output }}",
                },
                {
                    "name": "questions",
                    "type": "agent",
                    "agent": "agent-2",
                    "prompt": "List three questions a reader would ask about these notes: {{ steps.research.output }}",
                },
            ],
        },
        {
            "name": "drafting",
            "type": "loop",
            "max_iterations": 2,
            "stop_token": "[DONE]",
            "steps": [
                {
                    "name": "write",
                    "type": "agent",
                    "agent": "agent-2",
                    "prompt": (
                        "Draft {{ loop.iteration }} of {{ loop.max_iterations }}: write a short paragraph from"
                        " these notes.\nNotes: {{ steps.research.output }}\nFixes: {{ steps.check.output }}\n"
                        "Answer these questions: {{ steps.questions.output }}\n"
                        "{{ 'Improve your last draft: ' + previous if loop.iteration > 1 else '' }}\n"
                        "If the paragraph needs no more work, end it with the word DONE in square brackets."
                    ),
                },
            ],
        },
    ],
    "output": "{{ steps.drafting.output }}",
}


@dataclass(frozen=True)
class DemoRow:
    """One row of the demo: found by ``lookup``, created (or, on reset, restored) with ``defaults``."""

    model: type[models.Model]
    lookup: dict[str, Any]
    defaults: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.model._meta.model_name} " + "/".join(str(v) for v in self.lookup.values())


def _agent_row(agent_id: str, spec: dict[str, Any], model: dict[str, str]) -> DemoRow:
    fields = {k: v for k, v in spec.items() if k not in ("scripted", "offline")}
    provider = spec.get("offline") or model
    parameters = spec.get("scripted", {}) if provider["provider"] == "scripted" else {}
    defaults = {"system_prompt": "", "approvals": {}, **fields, **provider, "parameters": parameters}
    return DemoRow(Agent, {"id": agent_id}, {**defaults, "source": Source.DATABASE})


def demo_rows() -> list[DemoRow]:
    """Every row of the demo, in the order they depend on each other."""
    model = demo_model()
    rows = [_agent_row(agent_id, spec, model) for agent_id, spec in DEMO_AGENTS.items()]
    # Only when the operator allows the bundled demo command (the default).
    if "demo" in dict(settings.ASTEROS.mcp_stdio_commands):
        rows.append(DemoRow(MCPServer, {"name": "demo"}, {**DEMO_MCP_SERVER, "enabled": True}))
        rows.append(_agent_row("mcp-agent", {**MCP_AGENT, "scripted": {"rules": MCP_AGENT_RULES}}, model))
    rows.append(
        DemoRow(
            Star,
            {"id": DEMO_STAR},
            {"name": "Chat team", "description": "agent-1 leads and delegates; agent-2 writes.", "mode": "delegate"},
        )
    )
    for order, (agent_id, role, description) in enumerate(DEMO_MEMBERS):
        rows.append(
            DemoRow(
                Membership,
                {"star_id": DEMO_STAR, "agent_id": agent_id},
                {"name": agent_id, "role": role, "order": order, "description": description},
            )
        )
    workflow = Workflow(
        id="demo-workflow",
        name="Demo workflow",
        description="Research, fan out a check and questions in parallel, then write in a loop.",
        definition=DEMO_WORKFLOW,
    )
    rows.append(
        DemoRow(
            Workflow,
            {"id": workflow.id},
            {"name": workflow.name, "description": workflow.description, "definition": workflow.definition},
        )
    )
    return rows


@transaction.atomic
def load_demo(*, reset: bool = False) -> dict[str, Any]:
    """Create the demo rows that are missing; a row that exists is left as it is, edits and all,
    so ``make run`` never undoes a user's changes. ``reset`` restores every demo row instead (and
    drops members added to the demo star)."""
    rows = demo_rows()
    created: list[str] = []
    with authored_by("demo"):
        _save_demo_rows(rows, created, reset)
    return {
        "created": created,
        ("restored" if reset else "kept"): len(rows) - len(created),
        "provider": demo_model()["provider"],
    }


def _save_demo_rows(rows: list[DemoRow], created: list[str], reset: bool) -> None:
    for row in rows:
        if row.model is Workflow:
            # Its steps name the demo agents, which exist by now.
            Workflow(**row.lookup, **row.defaults).full_clean(validate_unique=False)
        if reset:
            _, new = row.model.objects.update_or_create(**row.lookup, defaults=row.defaults)
        else:
            _, new = row.model.objects.get_or_create(**row.lookup, defaults=row.defaults)
        if new:
            created.append(row.label)
    if reset:
        Membership.objects.filter(star_id=DEMO_STAR).exclude(agent_id__in=[m[0] for m in DEMO_MEMBERS]).delete()


def ensure_admin(username: str, password: str | None) -> tuple[bool, str | None]:
    """Create the superuser once. Returns (created, generated password or None)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return False, None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email="", password=password)
    return True, generated
