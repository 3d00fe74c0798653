"""The dashboard page and its script. The page is a shell: everything in it arrives over the
``ws/dashboard/`` and ``ws/runs/{id}/`` websockets (interfaces/ws/consumers.py). A reviewer's
decision on a waiting run goes back as a POST to ``resolve_interrupt`` (staff, CSRF token)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from cosmos.services.errors import Invalid
from interfaces.console import services
from interfaces.edge.auth import AccessDenied, session_user_with_csrf
from interfaces.edge.errors import MethodNotAllowed, classify, refusal_response
from interfaces.edge.links import API_ROOT_ROUTE

SCRIPT = Path(__file__).resolve().parent / "static" / "asteros" / "dashboard.js"
CHART_SECONDS = 120
RESOLVE_PERMISSION = "cosmos.change_interrupt"


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
        # The decisions go back as POSTs: the page carries the CSRF token (and sets its cookie).
        "resolve_url": reverse("dashboard:resolve_interrupt", args=["00000000-0000-0000-0000-000000000000"]),
        "may_resolve": request.user.has_perm(RESOLVE_PERMISSION),
    }
    return render(request, "dashboard/index.html", context)


@require_GET
def script(request: HttpRequest) -> HttpResponse:
    """The dashboard's JavaScript, served by Django so it works under any server, DEBUG or not."""
    body = SCRIPT.read_bytes() if settings.DEBUG else _script()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache" if settings.DEBUG else "max-age=300"
    return response


@csrf_exempt  # checked below, so that a missing token is refused in the one error shape
def resolve_interrupt(request: HttpRequest, interrupt_id: str) -> JsonResponse:
    """POST ``{"decision", "arguments"?, "answer"?, "message"?}``: a staff user's decision on one
    interrupt, from the dashboard. Answers ``{"interrupt", "run"}`` or the one error shape."""
    try:
        if request.method != "POST":
            raise MethodNotAllowed(("POST",))
        user = request.user
        if not user.is_authenticated:
            raise AccessDenied(401, "not_authenticated", "Log in as staff to resolve interrupts.")
        if session_user_with_csrf(request, user) is None:
            raise AccessDenied(403, "csrf_failed", "The CSRF token is missing or wrong: reload the dashboard.")
        if not (user.is_active and user.is_staff and user.has_perm(RESOLVE_PERMISSION)):
            raise AccessDenied(403, "permission_denied", "This needs a staff user who may change interrupts.")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise Invalid("The body is not valid JSON.", code="malformed_request") from None
        result = services.resolve_interrupt(interrupt_id, body, reviewer=user.get_username())
    except Exception as exc:
        return refusal_response(classify(exc))
    return JsonResponse(result)
