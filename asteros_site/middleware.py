"""Start the AsterOS instances of this process on its first request.

The serving commands start them before they listen (``asteros_site.serving.start_serving``); a
server started another way (``uvicorn asteros_site.asgi:application``, a WSGI server, the test
client) starts them here instead: code registrations written to the database, interfaces
started. It lives in the composition root because starting reaches every app.
"""

from __future__ import annotations

import logging
import threading

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from asteros_site import system

logger = logging.getLogger(__name__)

_started = False
_lock = threading.Lock()


def start_once() -> None:
    """``start_all`` once per process (idempotent); a failure is logged, never raised."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    try:
        system.start_all(strict=False)
    except Exception:
        logger.exception("starting AsterOS on the first request failed")


class StartOnFirstRequestMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        if not _started:
            start_once()
        return self.get_response(request)

    async def __acall__(self, request):
        if not _started:
            await sync_to_async(start_once)()
        return await self.get_response(request)
