"""The ASGI handler for HTTP: each request's middleware chain and view run in one thread hop.

Django's own ``ASGIHandler`` builds its middleware chain in async mode, and opens a
``ThreadSensitiveContext`` per request. Two costs follow for an API of sync DRF views:

- every middleware built on ``MiddlewareMixin`` (sessions, CSRF, auth, messages, security,
  Prometheus, ...) runs each ``process_*`` method through a ``sync_to_async`` call of its own:
  about 18 hand-offs between the event loop and a thread for one API request;
- the context starts a new thread for every request, so every request opens (and closes) its own
  database connection.

This handler builds the chain in sync mode and runs the whole chain on one thread of a small
persistent pool (``ASTEROS_HTTP_THREADS``), the way a threaded WSGI server does: one hand-off
per request, and each thread keeps its connection, checked at the start and the end of every
request as Django's request signals would (a broken or expired one is closed). Async views
(AG-UI, A2A) still run on the event loop: Django calls them through ``async_to_sync``, and every
streaming body is sent by the server as before. A response may finish on the event loop too
(``complete_on_loop``): ``?wait=`` waits for its run there, holding no thread of the pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.executor = ThreadPoolExecutor(max_workers=settings.ASTEROS.http_threads, thread_name_prefix="asteros-http")

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send) -> None:
        # No ThreadSensitiveContext (a new thread per request): the sync part of a request runs
        # on the pool below, and nothing else in a request is thread-sensitive.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # A view may hand the rest of its work to the event loop instead of holding this pool's
        # thread while it waits (``POST .../run?wait=``): it returns a response carrying an async
        # ``complete_on_loop()``, awaited here, after the middleware chain, before sending.
        request.completes_on_loop = True
        response = await sync_to_async(self._respond, thread_sensitive=False, executor=self.executor)(request)
        complete = getattr(response, "complete_on_loop", None)
        if complete is not None:
            await complete()
        return response

    def _respond(self, request: HttpRequest) -> HttpResponseBase:
        close_old_connections()
        try:
            return self.get_response(request)
        finally:
            close_old_connections()
