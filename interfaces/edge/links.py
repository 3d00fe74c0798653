"""Absolute links: to REST routes by name (``rest_framework.reverse``), and to a run's endpoints.

REST links are reversed from the REST door's named routes (``api:<basename>-<action>``, the
router's names, e.g. ``api:runs-detail``), so the API prefix is read in one place: the door's
URLconf (``interfaces.http.urls``). Doors without named Django routes (the websockets) build
from ``base_urls``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.urls import get_resolver, get_script_prefix, get_urlconf
from rest_framework.reverse import reverse

API_NAMESPACE = "api"  # the URL namespace of the REST door's routes
API_ROOT_ROUTE = "asteros-api-root"  # the name of the REST door's root (outside the namespace)


def base_urls(request: Any) -> tuple[str, str]:
    """(http base, websocket base): ASTEROS_PUBLIC_URL when set, else the request's host."""
    public = settings.ASTEROS.public_url
    if public:
        http = public.rstrip("/")
    elif request is not None:
        http = f"{request.scheme}://{request.get_host()}"
    else:
        http = ""
    if http.startswith("https://"):
        ws = "wss://" + http[len("https://") :]
    elif http.startswith("http://"):
        ws = "ws://" + http[len("http://") :]
    else:
        ws = http
    return http, ws


def api_link(request: Any, route: str, **kwargs: Any) -> str:
    """The absolute URL of the REST route ``api:<route>`` (e.g. ``runs-detail``, ``schema``).

    DRF's ``reverse`` builds it against the request; with ASTEROS_PUBLIC_URL set (a proxy in
    front), under that base instead of the host the request came to. Without either, a path.
    """
    name = f"{API_NAMESPACE}:{route}"
    if settings.ASTEROS.public_url or request is None:
        http, _ = base_urls(request)
        return http + reverse(name, kwargs=kwargs)
    return reverse(name, kwargs=kwargs, request=request)


def run_links(request: Any, run_id: Any) -> dict[str, str]:
    http, ws = base_urls(request)
    run = str(run_id)
    path, events, cancel = (template.replace(_RUN_ID_PLACEHOLDER, run) for template in _run_paths(*_url_setup()))
    return {
        "self": f"{http}{path}",
        "events": f"{http}{events}",
        "stream": f"{http}{events}?format=sse",
        "websocket": f"{ws}/ws/runs/{run}/",
        "cancel": f"{http}{cancel}",
    }


# Every run of a page has these links: reversing three routes per run would cost a page of 50
# runs some 10 ms, so the paths are reversed once (with a placeholder id) per URLconf and
# script prefix, and the run's id put in. A new URLconf (clear_url_caches) is a new resolver.
_RUN_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def _url_setup() -> tuple[Any, str]:
    return get_resolver(get_urlconf()), get_script_prefix()


@lru_cache(maxsize=16)
def _run_paths(resolver: Any, script_prefix: str) -> tuple[str, str, str]:
    return tuple(  # type: ignore[return-value]
        reverse(f"{API_NAMESPACE}:{route}", kwargs={"id": _RUN_ID_PLACEHOLDER})
        for route in ("runs-detail", "runs-events", "runs-cancel")
    )
