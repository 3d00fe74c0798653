import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from asteros_site.options import require_secret_key  # noqa: E402

require_secret_key(settings.ASTEROS)  # never serve with an empty or default secret
