"""The Celery app. Tasks carry only a run id; the database is the truth."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")

app = Celery("asteros_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def _configure_tracing(**_: object) -> None:
    """Each worker process traces its runs when OTEL_* asks for it (the threads pool: the worker
    itself; prefork: each child, as it starts). No HTTP requests are served here."""
    from asteros_site.telemetry import configure_tracing

    configure_tracing(requests=False)
