"""OpenAI-compatible routes under ``ASTEROS_OPENAI_PREFIX`` (default ``/v1``), included by
``asteros_site/routes.py`` unless ``ASTEROS_ENABLE_OPENAI`` is off."""

from django.urls import path, re_path

from interfaces.openai import views

app_name = "openai"

urlpatterns = [
    path("models", views.models, name="models"),
    re_path(r"^models/(?P<model>[^/]{1,200})$", views.model, name="model"),
    path("chat/completions", views.chat_completions, name="chat-completions"),
    path("responses", views.responses, name="responses"),
    re_path(r"^responses/(?P<response_id>[A-Za-z0-9_-]{1,100})$", views.response, name="response"),
    re_path(r"^responses/(?P<response_id>[A-Za-z0-9_-]{1,100})/cancel$", views.cancel_response, name="cancel"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
