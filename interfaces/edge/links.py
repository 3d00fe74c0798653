"""Absolute links to a run's endpoints (events, stream, websocket, cancel)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def base_urls(request: Any) -> tuple[str, str]:
    """(http base, websocket base): ASTEROS_PUBLIC_URL when set, else the request's host."""
    public = settings.ASTEROS.public_url
    if public:
        http = public.rstrip("/")
    elif request is not None:
        http = f"{request.scheme}://{request.get_host()}"
    else:
        http = ""
    if http.startswith("https://"):
        ws = "wss://" + http[len("https://") :]
    elif http.startswith("http://"):
        ws = "ws://" + http[len("http://") :]
    else:
        ws = http
    return http, ws


def api_url(request: Any, path: str) -> str:
    http, _ = base_urls(request)
    return f"{http}{settings.ASTEROS.api_prefix}/{path.lstrip('/')}"


def run_links(request: Any, run_id: Any) -> dict[str, str]:
    http, ws = base_urls(request)
    api = f"{http}{settings.ASTEROS.api_prefix}/runs/{run_id}"
    return {
        "self": api,
        "events": f"{api}/events",
        "stream": f"{api}/events?format=sse",
        "websocket": f"{ws}/ws/runs/{run_id}/",
        "cancel": f"{api}/cancel",
    }
