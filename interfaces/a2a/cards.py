"""Agent cards (A2A 1.0, section 8): one per agent, star and workflow, plus a directory.

A card is built from the row at request time, so an edit in the admin shows at once. URLs are
absolute: ``ASTEROS_PUBLIC_URL`` when set, else the request's scheme and host (an unspecified
bind address such as ``0.0.0.0`` is replaced by ``localhost``: it is not reachable). Cards are
public; with auth on they declare the two ways to pass a key (``Authorization: Bearer`` and
``X-API-Key``) in ``securitySchemes`` and ``securityRequirements``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from cosmos.kinds import find_kind, kind_names
from cosmos.services import revisions
from cosmos.version import VERSION
from interfaces.edge.a2a_spec import HTTP_JSON, JSONRPC, PROTOCOL_VERSION
from interfaces.edge.links import base_urls
from interfaces.edge.targets import Target, get_target

INPUT_MODES = ["text/plain", "application/json"]
OUTPUT_MODES = ["text/plain"]
CARD_MAX_AGE = 60
UNSPECIFIED_HOSTS = ("0.0.0.0", "::")


def public_base(request: Any) -> str:
    """``http(s)://host[:port]`` for links in cards, never an unspecified bind address."""
    http, _ = base_urls(request)
    parts = urlsplit(http)
    if parts.hostname in UNSPECIFIED_HOSTS:
        netloc = "localhost" + (f":{parts.port}" if parts.port else "")
        http = urlunsplit(parts._replace(netloc=netloc))
    return http.rstrip("/")


def base_url(request: Any, target: Target) -> str:
    return public_base(request) + target.path


def card_url(request: Any, target: Target) -> str:
    return base_url(request, target) + "/.well-known/agent-card.json"


def security_fields() -> dict[str, Any]:
    if not settings.ASTEROS.enable_auth:
        return {}
    return {
        "securitySchemes": {
            "bearer": {
                "httpAuthSecurityScheme": {
                    "scheme": "Bearer",
                    "description": "An AsterOS API key as a bearer token: 'Authorization: Bearer <key>'.",
                }
            },
            "apiKey": {
                "apiKeySecurityScheme": {
                    "location": "header",
                    "name": "X-API-Key",
                    "description": "An AsterOS API key in the X-API-Key header.",
                }
            },
        },
        # Either scheme is enough: two requirements, each with one scheme.
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}, {"schemes": {"apiKey": {"list": []}}}],
    }


def build_card(request: Any, target: Target) -> dict[str, Any]:
    """The AgentCard JSON of a target. Runs ORM queries (skills): call it in a thread."""
    row = target.row
    url = base_url(request, target)
    name = row.name or row.id
    card: dict[str, Any] = {
        "name": name,
        "description": row.description or _default_description(target),
        "supportedInterfaces": [
            {"url": url, "protocolBinding": JSONRPC, "protocolVersion": PROTOCOL_VERSION},
            {"url": url, "protocolBinding": HTTP_JSON, "protocolVersion": PROTOCOL_VERSION},
        ],
        "provider": {"organization": settings.ASTEROS.name, "url": public_base(request)},
        "version": card_version(target),
        "documentationUrl": public_base(request) + "/a2a/",
        "capabilities": {"streaming": True, "pushNotifications": True, "extendedAgentCard": False},
        **security_fields(),
        "defaultInputModes": list(INPUT_MODES),
        "defaultOutputModes": list(OUTPUT_MODES),
        "skills": skills(target),
    }
    return card


def card_version(target: Target) -> str:
    """The definition's latest revision number ("3"): it changes with every edit of the agent,
    star or workflow. The server's version for a definition that keeps no revision yet."""
    number = revisions.latest_number(target.kind, target.id) if revisions.keeps_revisions(target.kind) else None
    return str(number) if number else VERSION


def card_etag(card: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'


def _default_description(target: Target) -> str:
    kind = find_kind(target.kind)
    what = kind.description if kind else target.kind
    return f"The AsterOS {what} {target.row.name or target.id!r}."


def skills(target: Target) -> list[dict[str, Any]]:
    if target.kind == "agent":
        return _agent_skills(target)
    if target.kind == "star":
        return _star_skills(target)
    if target.kind == "workflow":
        return _workflow_skills(target)
    row = target.row  # a kind with nothing more to say: one skill, the definition itself
    return [_skill(target.id, row.name or target.id, row.description or _default_description(target), [target.kind])]


def _skill(skill_id: str, name: str, description: str, tags: list[str]) -> dict[str, Any]:
    return {"id": skill_id, "name": name, "description": description, "tags": [t for t in tags if t]}


def _agent_skills(target: Target) -> list[dict[str, Any]]:
    from cosmos.runtime.tools import tool_registry
    from cosmos.services.agents import agent_spec

    agent = target.row
    spec = agent_spec(agent)
    main = _skill(
        agent.id,
        agent.name or agent.id,
        agent.description or f"Chat with {agent.name or agent.id}.",
        ["agent", *spec.tools],
    )
    tools = []
    for tool_name in spec.tools:
        tool = tool_registry.get(tool_name)
        description = (tool.description if tool else "") or f"Uses the {tool_name} tool."
        tools.append(_skill(f"{agent.id}.{tool_name}", tool_name, description, ["tool", tool_name]))
    return [main, *tools]


def _star_skills(target: Target) -> list[dict[str, Any]]:
    star = target.row
    members = list(star.memberships.select_related("agent").order_by("order", "id"))
    main = _skill(
        star.id,
        star.name or star.id,
        star.description or f"A team of {len(members)} agents working in {star.mode} mode.",
        ["star", star.mode],
    )
    skills = [main]
    for member in members:
        description = member.description or member.agent.description or f"The {member.role} of the team."
        skills.append(_skill(f"{star.id}.{member.name}", member.name, description, ["member", member.role]))
    return skills


def _workflow_skills(target: Target) -> list[dict[str, Any]]:
    workflow = target.row
    steps = (workflow.definition or {}).get("steps") if isinstance(workflow.definition, dict) else None
    main = _skill(
        workflow.id,
        workflow.name or workflow.id,
        workflow.description or f"Runs the workflow {workflow.name or workflow.id!r}.",
        ["workflow"],
    )
    skills = [main]
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict) or not isinstance(step.get("name"), str):
            continue
        kind = str(step.get("type") or "")
        description = str(step.get("description") or f"Step {step['name']!r} ({kind}).")
        skills.append(_skill(f"{workflow.id}.{step['name']}", step["name"], description, ["step", kind]))
    return skills


def directory_entry(request: Any, target: Target) -> dict[str, Any]:
    return {
        "kind": target.kind,
        "id": target.id,
        "name": target.row.name or target.id,
        "description": target.row.description or _default_description(target),
        "url": base_url(request, target),
        "agentCardUrl": card_url(request, target),
    }


def default_target(setting: str | None) -> tuple[Target | None, str]:
    """The resource the domain-root card describes (``ASTEROS_A2A_DEFAULT``: ``agent:<id>``,
    ``star:<id>``, ``workflow:<id>`` or a bare agent id; unset: the first enabled agent by id),
    or None and why. Runs ORM queries: call it in a thread."""
    if not setting:
        kind = find_kind("agent")
        model = kind.target_model if kind else None
        first = model.objects.filter(enabled=True).order_by("pk").first() if model is not None else None  # type: ignore[attr-defined]
        if first is None:
            return None, "No agent is served here yet, so the domain has no default agent card."
        return get_target(kind.collection, first.pk), ""  # type: ignore[union-attr]
    kind_name, _, object_id = setting.rpartition(":")
    kind = find_kind(kind_name or "agent")
    if kind is None:
        return None, f"ASTEROS_A2A_DEFAULT names {kind_name!r}, which is none of {', '.join(kind_names())}."
    target = get_target(kind.collection, object_id)
    if target is None:
        return None, f"ASTEROS_A2A_DEFAULT names {kind.name} {object_id!r}, which is not served here (absent or off)."
    return target, ""
