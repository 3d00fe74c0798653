"""Request context: a request id on every log line, and one access-log line per request."""

from __future__ import annotations

import logging
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from cosmos.logging import request_id_var

access_logger = logging.getLogger("asteros.access")


class RequestContextMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _begin(self, request) -> tuple[str, float]:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        return request_id, time.perf_counter()

    def _end(self, request, response, request_id: str, started: float) -> None:
        response["X-Request-ID"] = request_id
        access_logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        request_id, started = self._begin(request)
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        self._end(request, response, request_id, started)
        return response

    async def __acall__(self, request):
        request_id, started = self._begin(request)
        token = request_id_var.set(request_id)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        self._end(request, response, request_id, started)
        return response
