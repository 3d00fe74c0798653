"""``runserver``: Daphne's ASGI runserver on ASTEROS_PORT, with the banner and, in embedded
mode, the worker thread. ``inner_run`` runs only in the serving process (the autoreloader's
child), so the worker never starts in the reloader's parent."""

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings

from cosmos.embedded import start_embedded_worker
from interfaces.banner import banner


class Command(DaphneRunserver):
    default_port = str(settings.ASTEROS.port)

    def inner_run(self, *args, **options):
        start_embedded_worker()
        self.stdout.write(banner(self.addr, self.port))
        return super().inner_run(*args, **options)
