"""Websocket routes (Channels). ``asteros_site/asgi.py`` serves them through
``interfaces.ws.auth.WebsocketAuthMiddleware``. See interfaces/ws/consumers.py for the frames."""

from django.urls import re_path

from cosmos.kinds import COLLECTION_PATTERN
from interfaces.ws.consumers import AGUIConsumer, DashboardConsumer, NotFoundConsumer, RunStreamConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/runs/(?P<run_id>[0-9A-Fa-f-]{32,36})/?$", RunStreamConsumer.as_asgi(), name="ws-run"),
    re_path(
        rf"^ws/agui/(?P<collection>{COLLECTION_PATTERN})/(?P<object_id>[A-Za-z0-9_-]{{1,64}})/?$",
        AGUIConsumer.as_asgi(),
        name="ws-agui",
    ),
    re_path(r"^ws/dashboard/?$", DashboardConsumer.as_asgi(), name="ws-dashboard"),
    # Last: any other path is refused cleanly (close 4404), not a 500 from the router.
    re_path(r"", NotFoundConsumer.as_asgi(), name="ws-not-found"),
]
