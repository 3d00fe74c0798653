"""Runs as MCP resources: ``asteros://runs/{id}`` is a run's status, output and events (JSON).

``resources/list`` lists the caller's own recent runs (those it started, through any door); a
run can be read by whoever may see it, as in the REST API (a key limited to some agents reads
their runs only). Everything here runs ORM queries: call it in a thread.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types
from django.conf import settings

from cosmos.eventlog import read_events
from cosmos.models import Run
from cosmos.services.errors import NotFound
from interfaces.edge.auth import KeyPrincipal, caller_of
from interfaces.edge.permissions import restrict_to_usable_runs

RUN_TEMPLATE = "asteros://runs/{id}"
RUN_URI = re.compile(r"asteros://runs/(?P<id>[0-9a-fA-F-]{32,36})")
MIME = "application/json"
RECENT = 50  # runs in resources/list
EVENTS = 2000  # events in one read (the REST API pages through more)


def run_uri(run_id: Any) -> str:
    return f"asteros://runs/{run_id}"


def visible_runs(principal: Any):
    runs = Run.objects.all()
    if settings.ASTEROS.enable_auth and isinstance(principal, KeyPrincipal):
        runs = restrict_to_usable_runs(runs, principal)
    return runs


def recent_runs(principal: Any) -> list[types.Resource]:
    runs = visible_runs(principal).filter(caller=caller_of(principal), parent__isnull=True)
    rows = runs.order_by("-created_at").values("id", "kind", "target", "status", "origin")[:RECENT]
    return [
        types.Resource(
            uri=run_uri(row["id"]),
            name=f"run {row['id']}",
            title=f"{row['kind']} {row['target']}: {row['status']}",
            description=f"A run of the {row['kind']} {row['target']!r} (started over {row['origin']}).",
            mime_type=MIME,
        )
        for row in rows
    ]


def run_template() -> types.ResourceTemplate:
    return types.ResourceTemplate(
        uri_template=RUN_TEMPLATE,
        name="run",
        title="A run of AsterOS",
        description="A run's status, output, error and events (AG-UI 1.0, in order), as JSON.",
        mime_type=MIME,
    )


def read_run(principal: Any, uri: str) -> types.ReadResourceResult:
    """The run at ``uri``; ``NotFound`` for an unknown address or a run the caller may not see."""
    match = RUN_URI.fullmatch(uri.strip())
    if match is None:
        raise NotFound(f"No resource at {uri!r}: runs are read at {RUN_TEMPLATE}.")
    try:
        run = visible_runs(principal).filter(id=match["id"]).first()
    except ValueError:
        run = None
    if run is None:
        raise NotFound(f"No run {match['id']!r}.")
    events = [{"seq": seq, **event} for seq, event in read_events(str(run.id), 0, limit=EVENTS)]
    document = {
        "id": str(run.id),
        "kind": run.kind,
        "target": run.target,
        "origin": run.origin,
        "status": run.status,
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "session_id": run.session_id,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "events": events,
    }
    text = json.dumps(document, ensure_ascii=False, default=str)
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=run_uri(run.id), mime_type=MIME, text=text)]
    )
