"""Starting a run over HTTP and answering: 202 with links, the SSE stream, or after ``?wait``.

Used by ``POST /api/agents/{id}/run``, ``/api/stars/{id}/run`` and ``/api/workflows/{id}/execute``.
Parsing and rendering only; the run itself is ``cosmos.services.runs.start_run``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from asgiref.sync import async_to_sync
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from cosmos.db import db_call
from cosmos.logging import run_id_var
from cosmos.models import Run
from cosmos.services.errors import Invalid
from cosmos.services.runs import start_run, with_tree_flags
from interfaces.edge.auth import caller_of
from interfaces.edge.errors import DATABASE_ERRORS
from interfaces.edge.runs import require_kind, wait_for_run
from interfaces.edge.sse import run_event_stream, sse_response
from interfaces.http.schema import SSE_EVENT_SCHEMA
from interfaces.http.serializers import RunRequestSerializer, RunSerializer
from interfaces.http.viewsets import wants_event_stream

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 300.0

WAIT_PARAMETER = OpenApiParameter(
    "wait",
    OpenApiTypes.NUMBER,
    OpenApiParameter.QUERY,
    description=f"Block until the run is done, for at most this many seconds (0 < wait <= {int(MAX_WAIT_SECONDS)}).",
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The same key from the same caller returns the same run instead of starting another.",
)
RUN_RESPONSES = {
    (202, "application/json"): OpenApiResponse(
        RunSerializer, description="The run was accepted (or is still running after ?wait)."
    ),
    (200, "application/json"): OpenApiResponse(RunSerializer, description="The run is done (with ?wait)."),
    (200, "text/event-stream"): OpenApiResponse(
        SSE_EVENT_SCHEMA, description="With stream: true or Accept: text/event-stream: the run's AG-UI events as SSE."
    ),
}


def parse_wait(request: Request) -> float | None:
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return None
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 < wait <= MAX_WAIT_SECONDS:  # also refuses nan
        raise Invalid(
            f"'wait' must be a number of seconds above 0 and at most {int(MAX_WAIT_SECONDS)}.", details={"wait": raw}
        )
    return wait


def start_run_response(request: Request, *, kind: str, target: str, what: str = "Runs") -> Any:
    """Parse the run request, start the run, and answer in the mode the client asked for.

    Bad input is a 400 first; then a kind with no engine yet is a 501 (``what`` names it).
    """
    body = RunRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    wait = parse_wait(request)
    require_kind(kind, what)
    run, created = start_run(
        kind,
        target,
        body.run_input(),
        session_id=body.validated_data.get("session_id"),
        origin="api",
        caller=caller_of(request.user),
        idempotency_key=request.headers.get("Idempotency-Key") or None,
        metadata=body.validated_data.get("metadata"),
        revision=body.validated_data.get("revision"),
    )
    run_id_var.set(str(run.id))
    headers = {
        "Location": RunSerializer(run, context={"request": request}).get_links(run)["self"],
        "X-Run-ID": str(run.id),
    }
    if not created:
        headers["Idempotent-Replayed"] = "true"
    if body.validated_data.get("stream") or wants_event_stream(request):
        return sse_response(run_event_stream(str(run.id)), headers=headers)
    if created:
        run.has_children = run.has_interrupts = False  # as accepted: nothing below it yet
    done = wait is not None and run.is_terminal  # e.g. an idempotent replay of a finished run
    if wait is not None and not done and completes_on_loop(request):
        # The request thread is given back now; the server waits on its event loop, then sends
        # the same answer a blocking wait would (200 with the finished run, or 202 at the time),
        # rendered when the wait is over. A replayed run's answer as found is rendered here, for
        # a database that cannot be reached meanwhile (a new run's needs no query).
        accepted = None if created else RunSerializer(run, context={"request": request}).data
        response = Response(accepted, status=202, headers=headers)
        response.complete_on_loop = functools.partial(_finish_waiting, response, request, run, wait, created)
        return response
    response = Response(
        RunSerializer(run, context={"request": request}).data, status=200 if done else 202, headers=headers
    )
    if wait is None or done:
        return response
    async_to_sync(wait_for_run)(str(run.id), wait)  # a server without the loop hand-off (WSGI)
    run.refresh_from_db()
    return Response(
        RunSerializer(run, context={"request": request}).data, status=200 if run.is_terminal else 202, headers=headers
    )


def completes_on_loop(request: Request) -> bool:
    """Whether the server finishes this request's response on its event loop (see
    ``asteros_site.handlers``: it then awaits ``response.complete_on_loop()`` before sending),
    and the answer is JSON (the browsable API renders on the request thread)."""
    renderer = getattr(request, "accepted_renderer", None)
    return bool(getattr(request, "completes_on_loop", False)) and getattr(renderer, "format", None) == "json"


async def _finish_waiting(response: Response, request: Request, accepted: Run, wait: float, created: bool) -> None:
    """``?wait`` on the event loop: no request thread is held while the run goes on.

    The run is accepted already: if the database cannot be reached meanwhile, the answer is the
    202 with the run as it was accepted, as when the time is up."""
    run_id = str(accepted.id)

    def render(run: Run | None) -> tuple[bool, bytes]:
        run = run or with_tree_flags(Run.objects.filter(id=run_id)).get()
        return run.is_terminal, JSONRenderer().render(RunSerializer(run, context={"request": request}).data)

    try:
        await wait_for_run(run_id, wait)
        terminal, content = await db_call(render, None)
    except DATABASE_ERRORS as exc:
        logger.warning("?wait gave up on the database: %s", exc.__class__.__name__, extra={"run_id": run_id})
        if not created:
            return  # the replayed run's answer, rendered before the wait
        terminal, content = render(accepted)  # a new run's answer needs no query (start_run_response)
    response.status_code = 200 if terminal else 202
    response.content = content
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(content))
