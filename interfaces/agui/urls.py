"""AG-UI routes, included by ``asteros_site/routes.py`` unless ``ASTEROS_ENABLE_AGUI`` is off."""

from django.urls import path, re_path

from cosmos.kinds import COLLECTION_PATTERN
from interfaces.agui import views

app_name = "agui"

urlpatterns = [
    path("agui/", views.index, name="index"),
    path("agui", views.index),
    re_path(
        rf"^agui/(?P<collection>{COLLECTION_PATTERN})/(?P<object_id>[A-Za-z0-9_-]{{1,64}})/?$",
        views.run_endpoint,
        name="run",
    ),
]
