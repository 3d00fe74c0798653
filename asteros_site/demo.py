"""The demo data of ``asteros demo`` and the admin user of ``make run``. Both idempotent."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from cosmos.models import Agent, Source
from interfaces.connectors.models import MCPServer, MCPTransport
from stars.models import Membership, Role, Star
from workflows.models import Workflow


def demo_model() -> dict:
    """Anthropic when a key is set, else the offline scripted model."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        return {"provider": "anthropic", "model": os.environ.get("ASTEROS_DEMO_MODEL", "claude-sonnet-4-5")}
    return {"provider": "scripted", "model": "scripted-offline"}


DEMO_AGENTS = {
    "chat-agent": {
        "name": "Chat agent",
        "description": "A general assistant that can do arithmetic and tell the time.",
        "system_prompt": "You are a helpful assistant. Use tools when they help.",
        "tools": ["calculator", "current_time"],
    },
    "agent-1": {
        "name": "Researcher (leader)",
        "description": "Leads the chat team: splits the task and writes the final answer.",
        "system_prompt": "You lead a small team. Delegate research, then write the final answer.",
        "tools": ["calculator"],
    },
    "agent-2": {
        "name": "Writer (worker)",
        "description": "Writes clear prose from notes.",
        "system_prompt": "You turn notes into a short, clear paragraph.",
        "tools": [],
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


@transaction.atomic
def load_demo() -> dict:
    model = demo_model()
    for agent_id, fields in DEMO_AGENTS.items():
        Agent.objects.update_or_create(id=agent_id, defaults={**fields, **model, "source": Source.DATABASE})
    # Only when the operator allows the bundled demo command (the default).
    with_mcp = "demo" in dict(settings.ASTEROS.mcp_stdio_commands)
    if with_mcp:
        MCPServer.objects.update_or_create(name="demo", defaults={**DEMO_MCP_SERVER, "enabled": True})
        parameters = {"rules": MCP_AGENT_RULES} if model["provider"] == "scripted" else {}
        Agent.objects.update_or_create(
            id="mcp-agent", defaults={**MCP_AGENT, **model, "parameters": parameters, "source": Source.DATABASE}
        )
    star, _ = Star.objects.update_or_create(
        id="chat-team",
        defaults={"name": "Chat team", "description": "agent-1 leads, agent-2 writes.", "mode": "delegate"},
    )
    Membership.objects.update_or_create(
        star=star, agent_id="agent-1", defaults={"name": "agent-1", "role": Role.LEADER, "order": 0}
    )
    Membership.objects.update_or_create(
        star=star,
        agent_id="agent-2",
        defaults={"name": "agent-2", "role": Role.WORKER, "order": 1, "description": "Writes clear prose from notes."},
    )
    workflow = Workflow(
        id="demo-workflow",
        name="Demo workflow",
        description="Research, fan out a check and questions in parallel, then write in a loop.",
        definition=DEMO_WORKFLOW,
    )
    workflow.full_clean(validate_unique=False)  # it may exist: this is an upsert
    Workflow.objects.update_or_create(
        id=workflow.id,
        defaults={"name": workflow.name, "description": workflow.description, "definition": workflow.definition},
    )
    return {
        "agents": len(DEMO_AGENTS) + with_mcp,
        "stars": 1,
        "workflows": 1,
        "mcp_servers": int(with_mcp),
        "provider": model["provider"],
    }


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
