"""Dashboard routes, included by ``asteros_site/routes.py``."""

from django.urls import path

from interfaces.console import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.index, name="index"),
    path("dashboard/dashboard.js", views.script, name="script"),
    path("dashboard/interrupts/<str:interrupt_id>/resolve/", views.resolve_interrupt, name="resolve_interrupt"),
]
