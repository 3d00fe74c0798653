"""Dashboard routes, included by ``asteros_site/routes.py`` like every ``interfaces/<name>/urls.py``."""

from django.urls import path

from interfaces.console import admin_live, views

app_name = "dashboard"

# The admin's live pieces (run / retry actions on the admin classes) are installed here as well
# as from the app's ready(): idempotent, and the URLconf always exists before an admin page does.
admin_live.install()

urlpatterns = [
    path("dashboard/", views.index, name="index"),
    path("dashboard/dashboard.js", views.script, name="script"),
]
