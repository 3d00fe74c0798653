"""What every serving process does before it serves: start the OS, the worker, the banner."""

from __future__ import annotations

from typing import TextIO

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import Http404

from cosmos.embedded import start_embedded_worker

from .asteros import start_all
from .banner import banner


def start_serving(host: str, port: int | str, out: TextIO) -> None:
    """Write code registrations and start the interfaces (so the first request is not the one
    that pays for it), start the embedded worker (a no-op in distributed mode), print the banner."""
    start_all(strict=False)
    start_embedded_worker()
    out.write(banner(host, port) + "\n")
    out.flush()


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's ``/static/`` handler, where a path that leaves the static folders
    (``/static/..%2fsettings.py``) is a 404 in the error shape. Django's raises
    ``SuspiciousFileOperation`` there, which this handler (outside the middleware) let
    through as a bare 500 page."""

    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("Nothing is here.") from None
