"""The Celery app. Tasks carry only a run id; the database is the truth."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")

app = Celery("asteros_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
