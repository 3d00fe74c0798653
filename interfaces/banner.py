"""The start-up banner: where AsterOS is, in which mode, and which model it uses."""

from __future__ import annotations

import os

from django.conf import settings


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
            "  (SQLite, in-memory channels, memory:// broker, in-process worker)"
            if not options.distributed
            else "  (PostgreSQL, Redis)"
        ),
        f"  admin:     {base}/admin/",
        f"  API:       {base}{options.api_prefix}/",
        f"  dashboard: {base}/dashboard/",
        f"  health:    {base}/health",
        f"  demo model: {model}",
        f"  auth:      {'on' if options.enable_auth else 'off'}",
    ]
    return "\n".join(lines)
