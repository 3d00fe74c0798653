"""Request context and the edges of every request.

``RequestContextMiddleware`` (second in ``MIDDLEWARE``):

- gives each request an id (``X-Request-ID``, kept from the client when sane) that every log
  line of the request carries, and writes one access-log line (method, path, status, ms);
- refuses bodies over ``ASTEROS_MAX_BODY_BYTES`` with a 413 naming the limit, before any view
  reads them, and a ``Content-Length`` that is not a number or a NUL character (``%00``) in the
  path or the query with a 400;
- drops the trailing slash of a path that is a REST route without it (``/api/agents/`` =
  ``/api/agents``; the URLconf says, so the API prefix is not read here);
- rewrites Django's own error pages (404, 405, 500, ...) into the one JSON error shape, except
  for the admin and the dashboard, which are HTML pages for people; a view that hits an
  unreachable database answers 503 ``unavailable`` with ``Retry-After`` instead of a 500.

The AsterOS instances are started by the serving entry points (``asteros_site.serving``),
never by a request.
"""

from __future__ import annotations

import logging
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.urls import Resolver404, resolve

from cosmos.logging import request_id_var, run_id_var
from cosmos.services.revisions import authored_by
from interfaces.edge.auth import caller_of
from interfaces.edge.body import BODY_TOO_LARGE
from interfaces.edge.errors import (
    DATABASE_ERRORS,
    database_unavailable_response,
    edge_error_response,
    payload_too_large,
    status_error_response,
)
from interfaces.edge.links import API_NAMESPACE, API_ROOT_ROUTE

access_logger = logging.getLogger("asteros.access")
logger = logging.getLogger(__name__)

HTML_PREFIXES = ("/admin/", "/admin", "/dashboard", "/static/")


def body_size(request) -> int | None:
    """The declared Content-Length, or the size of an already received (ASGI) body."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw:
        try:
            return int(raw)
        except ValueError:
            return None
    stream = getattr(request, "_stream", None)
    if (
        stream is not None
        and hasattr(stream, "seek")
        and hasattr(stream, "tell")
        and not getattr(request, "_read_started", True)
    ):
        try:
            position = stream.tell()
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(position)
            return size
        except (OSError, ValueError):
            return None
    return None


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "")
    return "json" in content_type.split(";")[0]


def needs_error_shape(request, response) -> bool:
    if response.status_code < 400 or getattr(response, "streaming", False):
        return False
    if hasattr(response, "accepted_renderer"):  # DRF rendered it (JSON, or the browsable API)
        return False
    if _is_json(response):
        return False
    return not request.path_info.startswith(HTML_PREFIXES)


class RequestContextMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    # --- before and after the view

    def _begin(self, request) -> tuple[str, float]:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        path = request.path_info
        if len(path) > 1 and path.endswith("/") and _is_rest_route(path.rstrip("/"), getattr(request, "urlconf", None)):
            request.path_info = path.rstrip("/")
        return request_id, time.perf_counter()

    def _early_response(self, request):
        declared = request.META.get("CONTENT_LENGTH")
        if declared and not declared.strip().isdigit():
            # Later middleware (the metrics) would fail on int() of it: a 500 for bad input.
            return edge_error_response(
                request, 400, "bad_request", "The Content-Length header is not a number of bytes."
            )
        if _nul_in_url(request):
            # PostgreSQL cannot hold a NUL in a text value: any lookup or filter with it would fail.
            return edge_error_response(
                request, 400, "bad_request", "The path and the query parameters must not contain NUL (%00)."
            )
        size = body_size(request)
        limit = settings.ASTEROS.max_body_bytes
        if getattr(request, "scope", {}).get(BODY_TOO_LARGE) or (size is not None and size > limit):
            return payload_too_large(request, limit)
        return None

    def _end(self, request, response, request_id: str, started: float):
        if needs_error_shape(request, response):
            rewritten = status_error_response(response.status_code)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if response.has_header(header):
                    rewritten[header] = response[header]
            response = rewritten
        response["X-Request-ID"] = request_id
        extra = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if getattr(response, "streaming", False):
            extra["streaming"] = True
        run_id = run_id_var.get()
        if run_id:
            extra["run_id"] = run_id
        complete = getattr(response, "complete_on_loop", None)
        if complete is None:
            access_logger.info("request", extra=extra)
            return response

        async def complete_then_log() -> None:
            # The answer is final once the server has finished it on its loop (``?wait``).
            await complete()
            extra.update(status=response.status_code, ms=round((time.perf_counter() - started) * 1000, 2))
            tokens = request_id_var.set(request_id), run_id_var.set(run_id)
            try:
                access_logger.info("request", extra=extra)
            finally:
                run_id_var.reset(tokens[1])
                request_id_var.reset(tokens[0])

        response.complete_on_loop = complete_then_log
        return response

    def process_exception(self, request, exception):
        """A view outside DRF that hit an unreachable database answers 503, not 500 (DRF views
        get the same from ``errors.exception_handler``)."""
        if isinstance(exception, DATABASE_ERRORS) and not request.path_info.startswith(HTML_PREFIXES):
            logger.warning("database unavailable: %s", exception.__class__.__name__)
            return database_unavailable_response()
        return None

    # --- sync and async entry points

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        request_id, started = self._begin(request)
        token = request_id_var.set(request_id)
        run_token = run_id_var.set(None)
        try:
            with authored_by(lambda: request_author(request)):
                response = self._early_response(request) or self.get_response(request)
            return self._end(request, response, request_id, started)
        finally:
            run_id_var.reset(run_token)
            request_id_var.reset(token)

    async def __acall__(self, request):
        request_id, started = self._begin(request)
        token = request_id_var.set(request_id)
        run_token = run_id_var.set(None)
        try:
            with authored_by(lambda: request_author(request)):
                response = self._early_response(request) or await self.get_response(request)
            return self._end(request, response, request_id, started)
        finally:
            run_id_var.reset(run_token)
            request_id_var.reset(token)


def request_author(request) -> str:
    """Who a request's saves are by, for revisions: the API key or the user (DRF sets the key's
    principal on the request once it has authenticated it)."""
    author = caller_of(getattr(request, "user", None))
    return "anonymous" if author == "user:" else author  # a session with nobody logged in


def _nul_in_url(request) -> bool:
    if "\x00" in request.path_info:
        return True
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


def _is_rest_route(path: str, urlconf=None) -> bool:
    """Whether ``path`` is a route of the REST door (its root or one in its namespace): the
    URLconf says, so the API prefix is read only where the door's routes are built."""
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return False
    return match.url_name == API_ROOT_ROUTE or API_NAMESPACE in match.namespaces
