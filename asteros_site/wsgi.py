"""WSGI entry point (HTTP only; websockets need the ASGI one): the OS started before the first
answer (``asteros_site.serving.start_before_serving_wsgi``)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
django.setup(set_prefix=False)

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from asteros_site.telemetry import configure_tracing  # noqa: E402

configure_tracing()  # when OTEL_* asks for it; before the handler builds the middleware chain
django_wsgi_app = WSGIHandler()  # what django.core.wsgi.get_wsgi_application() returns

from django.conf import settings  # noqa: E402

from asteros_site.options import require_secret_key  # noqa: E402
from asteros_site.serving import start_before_serving_wsgi  # noqa: E402

require_secret_key(settings.ASTEROS)  # never serve with an empty or default secret

application = start_before_serving_wsgi(django_wsgi_app)
