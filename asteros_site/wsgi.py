"""WSGI entry point (HTTP only; websockets need the ASGI one): the OS started before the first
answer (``asteros_site.serving.start_before_serving_wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
django_wsgi_app = get_wsgi_application()

from django.conf import settings  # noqa: E402

from asteros_site.options import require_secret_key  # noqa: E402
from asteros_site.serving import start_before_serving_wsgi  # noqa: E402

require_secret_key(settings.ASTEROS)  # never serve with an empty or default secret

application = start_before_serving_wsgi(django_wsgi_app)
