"""The start-up banner: where AsterOS is, in which mode, and which model it uses."""

from __future__ import annotations

import os

from django.conf import settings

from interfaces.http.urls import api_prefix
from interfaces.schedules.services import scheduler_mode

SCHEDULER_LINES = {
    "embedded beat": "embedded beat (schedules fire from this process)",
    "celery beat (distributed)": "celery beat (distributed: run `celery -A asteros_site beat`)",
    "off": "off (ASTEROS_ENABLE_SCHEDULER=false)",
}

CORS_POLICIES = {
    "off": "off (ASTEROS_ENABLE_CORS=false)",
    "listed": "the origins of ASTEROS_CORS_ALLOWED_ORIGINS",
    "loopback": "loopback origins only (localhost, 127.0.0.0/8, [::1], any port): auth is off "
    "and ASTEROS_CORS_ALLOWED_ORIGINS is unset",
    "any": "every origin (auth is on; set ASTEROS_CORS_ALLOWED_ORIGINS to narrow it)",
}


def banner(host: str, port: int | str) -> str:
    options = settings.ASTEROS
    shown_host = "localhost" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown_host}:{port}"
    model = (
        "anthropic (ANTHROPIC_API_KEY set)"
        if os.environ.get("ANTHROPIC_API_KEY")
        else "scripted (offline, no model calls)"
    )
    lines = [
        f"AsterOS '{options.name}' is running on {base}",
        f"  mode:      {options.mode}"
        + (
            "  (SQLite, in-process live events, memory:// broker, in-process worker)"
            if not options.distributed
            else "  (PostgreSQL, Redis)"
        ),
        f"  admin:     {base}/admin/",
        f"  API:       {base}/{api_prefix()}/",
        f"  dashboard: {base}/dashboard/",
        f"  health:    {base}/health",
        f"  scheduler: {SCHEDULER_LINES[scheduler_mode()]}",
        f"  MCP:       {base + '/mcp' if options.enable_mcp else 'off (ASTEROS_ENABLE_MCP)'}",
        f"  OpenAI:    {base + options.openai_prefix if options.enable_openai else 'off (ASTEROS_ENABLE_OPENAI)'}",
        f"  demo model: {model}",
        f"  auth:      {'on' if options.enable_auth else 'off'}",
        f"  CORS:      {CORS_POLICIES.get(options.cors_policy, options.cors_policy)}",
    ]
    return "\n".join(lines)
