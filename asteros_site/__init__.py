"""Project wiring: settings, URLs, ASGI/WSGI entry points and the Celery app."""

from asteros_site.celery import app as celery_app

__all__ = ("celery_app",)
