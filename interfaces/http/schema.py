"""OpenAPI details shared by every view: tags by resource and the documented error shape."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

ERROR_DESCRIPTIONS = {
    "400": "The request is not valid (bad input, malformed JSON).",
    "401": "No credentials, or an API key that is not valid.",
    "403": "The API key lacks the scope (or the resource) this needs.",
    "404": "Not found.",
    "429": "A quota of the API key is used up (error code quota_exceeded; details name it); see Retry-After.",
    "default": 'Any other error, in the same shape: {"error": {"code", "message", "details"}}.',
}

RETRY_AFTER_HEADER = {
    "description": "Seconds until the quota frees.",
    "schema": {"type": "integer", "minimum": 1},
}


# One event of a ``text/event-stream`` answer, as OpenAPI before 3.2 documents a stream (and
# schemathesis reads it): the schema of each event, not of the whole body as one string.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "One Server-Sent Event. `data` is one AG-UI event as compact JSON; `id` is its seq.",
    "properties": {
        "id": {"type": "string", "description": "The run event's seq: resume with Last-Event-ID or ?after."},
        "event": {"type": "string", "description": "The SSE event name (the default, message)."},
        "data": {"type": "string", "description": 'One AG-UI event, e.g. {"type":"RUN_STARTED",...}.'},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


class AsterAutoSchema(AutoSchema):
    """Tags operations by resource and documents the error responses of every operation."""

    def get_tags(self) -> list[str]:
        tags = getattr(self.view, "schema_tags", None)
        if tags:
            return list(tags)
        name = getattr(self.view, "resource_name", None)
        if name:
            return [name]
        return super().get_tags()

    def _get_format_parameters(self):
        # ?format=sse is documented where it matters: the event stream (EventSource links).
        if getattr(self.view, "action", None) != "events":
            return []
        return super()._get_format_parameters()

    def _get_response_bodies(self, direction="response"):
        from interfaces.http.serializers import ErrorSerializer

        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["401", "403", "429", "default"]
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            codes.insert(0, "400")
        if "{" in self.path:
            codes.insert(0, "404")
        for code in codes:
            if code in responses:
                continue
            body = self._get_response_for_code(ErrorSerializer, code, ("application/json",), direction)
            body["description"] = ERROR_DESCRIPTIONS[code]
            if code == "429":
                body["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
            responses[code] = body
        return responses


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents ``APIKeyAuthentication``: a Bearer token or an ``X-API-Key`` header."""

    target_class = "interfaces.edge.auth.APIKeyAuthentication"
    name = ["BearerAuth", "ApiKeyAuth"]

    def get_security_requirement(self, auto_schema):
        return [{"BearerAuth": []}, {"ApiKeyAuth": []}]  # either one

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class DocsView(SpectacularSwaggerView):
    """The Swagger UI page. Its only renderer is an HTML template, which cannot render an error
    or DRF's ``OPTIONS`` metadata (a 500 once): ``OPTIONS`` is not offered (405), and every
    error answers in the JSON error shape."""

    metadata_class = None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response
