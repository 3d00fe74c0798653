"""``runserver``: Daphne's ASGI runserver on ASTEROS_PORT, with the banner and, in embedded
mode, the worker thread. ``inner_run`` runs only in the serving process (the autoreloader's
child), so the worker never starts in the reloader's parent.

The address is checked first (``asteros_site.serving.check_address``): a port in use stops the
command at once with the reason and exit status 1 (the reloader's parent passes it on), where
Daphne printed its banner and then waited for ever. The banner is printed once Daphne listens."""

import os
import sys

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from asteros_site.daphne_server import ListeningServer
from asteros_site.serving import CannotListen, StaticFilesHandler, announce, check_address, start_serving


class Command(DaphneRunserver):
    default_port = str(settings.ASTEROS.port)
    server: ListeningServer | None = None

    def inner_run(self, *args, **options):
        try:
            check_address(self.addr, self.port)
        except CannotListen as exc:
            self.fail(str(exc))
        start_serving()
        result = super().inner_run(*args, **options)
        if self.server is not None and self.server.failure:
            self.fail(f"cannot listen on {self.addr}:{self.port}: {self.server.failure}")
        return result

    def fail(self, message: str) -> None:
        self.stderr.write(f"Error: {message}")
        sys.stderr.flush()
        os._exit(1)  # the autoreloader's thread: raising would leave the parent waiting

    def server_cls(self, **kwargs) -> ListeningServer:
        self.server = ListeningServer(on_listening=lambda: announce(self.addr, self.port, self.stdout), **kwargs)
        return self.server

    def get_application(self, options):
        application = super().get_application(options)
        if isinstance(application, ASGIStaticFilesHandler):
            return StaticFilesHandler(application.application)
        return application
