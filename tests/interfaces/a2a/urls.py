"""A URLconf with only the A2A routes, so unit tests do not depend on other interfaces' routes."""

from django.urls import include, path

urlpatterns = [path("", include("interfaces.a2a.urls"))]
