"""URL wiring. Each interface contributes its own patterns; see asteros_site/routes.py."""

from django.contrib import admin
from django.urls import include, path

from interfaces.edge.errors import error_response

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("asteros_site.routes")),
]


def _handler(code: str, message: str, status: int):
    def view(request, exception=None):
        return error_response(code, message, status)

    return view


handler400 = _handler("bad_request", "The request is not valid.", 400)
handler403 = _handler("permission_denied", "You may not do this.", 403)
handler404 = _handler("not_found", "Nothing is here.", 404)
handler500 = _handler("internal_error", "Something went wrong on our side; it has been logged.", 500)
