"""The Celery app. Tasks carry only a run id; the database is the truth."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")

app = Celery("asteros_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _load_settings(**_: object) -> None:
    """Celery reads Django's settings here, first thing in a worker or beat: a bad option stops
    it with its one line (debug logging shows the traceback), as manage.py does."""
    from django.conf import settings

    from asteros_site.options import exit_on_bad_options

    with exit_on_bad_options():
        settings.INSTALLED_APPS  # noqa: B018 (loads the settings module)


@worker_init.connect
@worker_process_init.connect
def _configure_tracing(**_: object) -> None:
    """Each worker process traces its runs when OTEL_* asks for it (the threads pool: the worker
    itself; prefork: each child, as it starts). No HTTP requests are served here."""
    from asteros_site.telemetry import configure_tracing

    configure_tracing(requests=False)
