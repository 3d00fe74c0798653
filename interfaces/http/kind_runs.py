"""``POST /api/<collection>/{id}/run`` for a run kind that has no REST resource of its own.

The built-in kinds are REST resources (``/api/agents``, ``/api/stars``, ``/api/workflows``, in
``interfaces.http.resources``) and declare their run routes there. A kind another app registers
(``cosmos.kinds.register_kind``) is served here without more code: the same request, answers,
scope (``run``) and key limits (``<collection>:<id>``) as ``POST /api/agents/{id}/run``.

The ``kind`` path converter matches only the collection of a registered kind without a resource
of that name, looked up on every request, so any other path falls through to the 404 it had.
The route is left out of the OpenAPI schema: which collections it serves changes as kinds
register, and a schema of ``/api/{collection}/{id}/run`` would promise every collection.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.views import APIView

from cosmos.kinds import COLLECTION_PATTERN, RunKind, kind_for_collection
from cosmos.services.errors import NotFound
from interfaces.edge.auth import KeyPrincipal
from interfaces.edge.parsers import JSONParser
from interfaces.http.registry import site
from interfaces.http.runs import start_run_response
from interfaces.http.viewsets import STREAM_RENDERERS, AsterViewMixin


def kind_without_resource(collection: str) -> RunKind | None:
    """The kind whose collection is ``collection``, unless a REST resource of that name serves it."""
    kind = kind_for_collection(collection)
    if kind is None or site.is_registered(collection):
        return None
    return kind


class KindCollectionConverter:
    """A URL segment naming such a kind ("probes"); any other segment does not match."""

    regex = COLLECTION_PATTERN

    def to_python(self, value: str) -> RunKind:
        kind = kind_without_resource(value)
        if kind is None:
            raise ValueError(value)
        return kind

    def to_url(self, value: RunKind | str) -> str:
        return value.collection if isinstance(value, RunKind) else value


class KindRunView(AsterViewMixin, APIView):
    """Start a run of one definition of a kind registered by an app. 202 with the run and its
    links; SSE with stream: true; ``?wait=`` and ``Idempotency-Key`` as on every run route."""

    required_scope = "run"
    schema = None  # not in the OpenAPI schema (see above)
    renderer_classes = STREAM_RENDERERS
    parser_classes = [JSONParser]

    def post(self, request: Request, collection: RunKind, target: str) -> Any:
        principal = request.user
        limited = isinstance(principal, KeyPrincipal) and principal.resources
        if settings.ASTEROS.enable_auth and limited and not principal.allows_resource(collection.collection, target):
            # As for a resource's rows: a key limited to other ids does not learn this one exists.
            raise NotFound(f"No {collection.name} with id {target!r}.")
        return start_run_response(request, kind=collection.name, target=target, what=f"{collection.label} runs")
