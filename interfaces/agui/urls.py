"""AG-UI routes, included by ``interfaces/urls.py`` (it includes every ``interfaces/<name>/urls.py``)."""

from django.urls import path, re_path

from . import views

app_name = "agui"

urlpatterns = [
    path("agui/", views.index, name="index"),
    path("agui", views.index),
    re_path(
        r"^agui/(?P<collection>agents|stars|workflows)/(?P<object_id>[A-Za-z0-9_-]{1,64})/?$",
        views.run_endpoint,
        name="run",
    ),
]
