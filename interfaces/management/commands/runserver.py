"""``runserver``: Daphne's ASGI runserver on ASTEROS_PORT, with the banner and, in embedded
mode, the worker thread. ``inner_run`` runs only in the serving process (the autoreloader's
child), so the worker never starts in the reloader's parent."""

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings

from interfaces.serving import start_serving


class Command(DaphneRunserver):
    default_port = str(settings.ASTEROS.port)

    def inner_run(self, *args, **options):
        start_serving(self.addr, self.port, self.stdout)
        return super().inner_run(*args, **options)
