"""The edge pipeline every door's async views share: method check → resolve the target →
authorize the caller → the door's own checks → the handler, and every exception, wherever it
is raised, classified once (``errors.classify``) and rendered in the door's wire shape.

A door describes itself once with a ``Door`` (its renderer, whether sessions count, how its URL
names the target, its own checks) and decorates each view with ``door.view(methods, scope)``.
The handler gets ``(request, target, principal, **the other URL kwargs)``; it only parses, calls
one service and renders. Entry points that are not Django views (the A2A JSON-RPC endpoint, the
websocket consumers) call the same steps: ``targets.resolve_kind`` / ``resolve_target``,
``auth.authorize_request`` / ``require_access`` and ``errors.classify``.

The REST door is DRF's: its authentication and permission classes call ``interfaces.edge.auth``
and its exception handler is ``errors.exception_handler``, which renders the same classification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from interfaces.edge.auth import authorize_request
from interfaces.edge.errors import MethodNotAllowed, Refusal, classify, refusal_response
from interfaces.edge.targets import Target

Renderer = Callable[[HttpRequest, Refusal], HttpResponse]
Resolver = Callable[[str, str], Awaitable[Target]]
Scope = str | Callable[[HttpRequest], str]
Handler = Callable[..., Awaitable[HttpResponse]]


def render_error_shape(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """The one error shape ``{"error": {"code", "message", "details"}}`` (AG-UI, plain views)."""
    return refusal_response(refusal)


@dataclass(frozen=True)
class Door:
    """What a door's views share: how a refusal looks on its wire, and how it finds its caller."""

    name: str
    render: Renderer = render_error_shape
    # Resolves (collection, object id) from the URL into a target (``targets.resolve_*``).
    resolve: Resolver | None = None
    address: tuple[str, str] = ("collection", "object_id")  # the URL kwargs that name the target
    sessions: bool = True  # a staff session counts (with its CSRF token on writes); False: keys only
    check: Callable[[HttpRequest], None] | None = None  # the door's own checks after auth (A2A: version)
    as_caller: Callable[[Any], Any] | None = None  # the principal as the door's handlers want it

    def view(
        self, methods: tuple[str, ...], scope: Scope = "read", *, resolve: bool = True, method_message: str = ""
    ) -> Callable[[Handler], Handler]:
        """Decorate ``handler(request, target, principal, **kwargs)`` into an async view."""
        return edge_view(self, methods, scope, resolve=resolve, method_message=method_message)


def edge_view(
    door: Door, methods: tuple[str, ...], scope: Scope = "read", *, resolve: bool = True, method_message: str = ""
) -> Callable[[Handler], Handler]:
    """Method check → resolve → authorize → the door's checks → handler; errors classified and
    rendered by ``door.render``. ``scope`` may depend on the request (GET reads, POST runs)."""

    def decorate(handler: Handler) -> Handler:
        @csrf_exempt  # keys authenticate these calls; a session counts on writes only with its token
        @wraps(handler)
        async def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return door.render(request, classify(MethodNotAllowed(methods, method_message or None)))
            try:
                target = None
                if resolve and door.resolve is not None:
                    collection, object_id = (kwargs.pop(name) for name in door.address)
                    target = await door.resolve(collection, object_id)
                needed = scope(request) if callable(scope) else scope
                principal = await authorize_request(request, needed, target=target, sessions=door.sessions)
                if door.check is not None:
                    door.check(request)
                caller = door.as_caller(principal) if door.as_caller is not None else principal
                return await handler(request, target, caller, **kwargs)
            except Exception as exc:
                return door.render(request, classify(exc))

        return view

    return decorate
