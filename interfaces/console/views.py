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
from django.views.decorators.http import require_GET, require_safe

from cosmos.services.errors import Invalid
from interfaces.console import services
from interfaces.edge.auth import AccessDenied, session_user_with_csrf
from interfaces.edge.errors import MethodNotAllowed, classify, refusal_response
from interfaces.edge.links import API_NAMESPACE, API_ROOT_ROUTE

SCRIPT = Path(__file__).resolve().parent / "static" / "asteros" / "dashboard.js"
CHART_SECONDS = 120
RESOLVE_PERMISSION = "cosmos.change_interrupt"
MCP_PATH = "/mcp"  # mounted by the ASGI router, outside Django's URLconf (interfaces/mcp/asgi.py)


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


def _links(request: HttpRequest) -> list[dict]:
    """Where to go from the home page: each door that is on, with what it is for."""
    options = settings.ASTEROS
    links = [
        {"label": "Admin", "url": reverse("admin:index"), "about": "agents, stars, workflows, runs, keys"},
        {"label": "Live dashboard", "url": reverse("dashboard:index"), "about": "runs as they stream (staff)"},
        {"label": "REST API", "url": reverse(API_ROOT_ROUTE), "about": "the browsable API"},
        {"label": "API docs", "url": reverse(f"{API_NAMESPACE}:docs"), "about": "OpenAPI, to try each call"},
        {"label": "OpenAPI schema", "url": reverse(f"{API_NAMESPACE}:schema"), "about": "the schema as YAML"},
    ]
    if options.enable_a2a:
        links += [
            {"label": "A2A agent card", "url": reverse("a2a-root-card"), "about": "this server's card (A2A 1.0)"},
            {"label": "A2A cards", "url": reverse("a2a-cards"), "about": "every agent, star and workflow's card"},
        ]
    if options.enable_agui:
        links.append({"label": "AG-UI", "url": reverse("agui:index"), "about": "the AG-UI 1.0 endpoints"})
    if options.enable_agent_protocol:
        url = "/" + options.agent_protocol_prefix.strip("/") + "/info"
        links.append({"label": "Agent Protocol", "url": url, "about": "LangGraph's Agent Protocol (langgraph-sdk)"})
    if options.enable_mcp:
        links.append({"label": "MCP", "url": MCP_PATH, "about": "Streamable HTTP; add it to an MCP client"})
    if options.enable_health:
        links.append({"label": "Health", "url": reverse("health"), "about": "liveness and readiness"})
    if options.enable_metrics:
        links.append({"label": "Metrics", "url": reverse("metrics"), "about": "Prometheus"})
    return links


@require_safe  # GET and HEAD (a load balancer's probe of /)
def home(request: HttpRequest) -> HttpResponse:
    """``/``: what runs now, the latest runs and the way to every door. Runs are shown to staff,
    or to anyone while the API itself is open (``ASTEROS_ENABLE_AUTH`` off)."""
    user = request.user
    may_see_runs = not settings.ASTEROS.enable_auth or (user.is_active and user.is_staff)
    overview = services.home_overview() if may_see_runs else None
    cards = []
    if overview is not None and settings.ASTEROS.enable_a2a:
        cards = [
            {**card, "url": reverse("a2a-card", kwargs={"resource": card["collection"], "object_id": card["id"]})}
            for card in overview["cards"]
        ]
    context = {
        "name": settings.ASTEROS.name,
        "mode": settings.ASTEROS.mode,
        "links": _links(request),
        "overview": overview,
        "cards": cards,
        "user": user,
        "login_url": f"{reverse('admin:login')}?next=/",
        "docs_url": reverse(f"{API_NAMESPACE}:docs"),
    }
    return render(request, "console/home.html", context)


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
