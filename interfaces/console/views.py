"""The dashboard page and its script. The page is a shell: everything in it arrives over the
``ws/dashboard/`` and ``ws/runs/{id}/`` websockets (interfaces/ws/consumers.py)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from interfaces.edge.links import API_ROOT_ROUTE

SCRIPT = Path(__file__).resolve().parent / "static" / "asteros" / "dashboard.js"
CHART_SECONDS = 120


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@require_GET
@staff_member_required
def index(request: HttpRequest) -> HttpResponse:
    run = request.GET.get("run", "")
    context = {
        "name": settings.ASTEROS.name,
        "mode": settings.ASTEROS.mode,
        "user": request.user.get_username(),
        "ws_dashboard": "/ws/dashboard/",
        "ws_runs": "/ws/runs/",
        "admin_runs": reverse("admin:cosmos_run_changelist"),
        "admin_url": reverse("admin:index"),
        "api_url": reverse(API_ROOT_ROUTE),
        "agui_url": reverse("agui:index"),
        "initial_run": run if len(run) <= 64 and run.replace("-", "").isalnum() else "",
        "chart_seconds": CHART_SECONDS,
        "script_url": reverse("dashboard:script"),
    }
    return render(request, "dashboard/index.html", context)


@require_GET
def script(request: HttpRequest) -> HttpResponse:
    """The dashboard's JavaScript, served by Django so it works under any server, DEBUG or not."""
    body = SCRIPT.read_bytes() if settings.DEBUG else _script()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache" if settings.DEBUG else "max-age=300"
    return response
