"""ASGI entry point: HTTP through Django (``/mcp`` through the MCP SDK's app), websockets through
Channels, the OS and the MCP server started before the first answer whichever server runs it
(``asteros_site.serving.StartBeforeServing``)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
django.setup(set_prefix=False)

from asteros_site.telemetry import configure_tracing  # noqa: E402

configure_tracing()  # when OTEL_* asks for it; before the handler builds the middleware chain

from asteros_site.handlers import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from django.conf import settings  # noqa: E402

from asteros_site.options import require_secret_key  # noqa: E402

require_secret_key(settings.ASTEROS)  # never serve with an empty or default secret

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from asteros_site.serving import StartBeforeServing  # noqa: E402
from interfaces.edge.body import RequestBodyGuard  # noqa: E402
from interfaces.mcp.asgi import MCPEndpoint, MCPRouter  # noqa: E402
from interfaces.ws.auth import WebsocketAuthMiddleware  # noqa: E402
from interfaces.ws.routing import websocket_urlpatterns  # noqa: E402

mcp_endpoint = MCPEndpoint()  # the SDK's manager starts with the server (StartBeforeServing), not here

application = StartBeforeServing(
    ProtocolTypeRouter(
        {
            # bodies bounded in size and time, chunked ones read; /mcp to the MCP door, the rest to Django
            "http": RequestBodyGuard(MCPRouter(django_asgi_app, mcp_endpoint)),
            "websocket": WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns)),
        }
    ),
    on_start=[mcp_endpoint.start],
    on_stop=[mcp_endpoint.stop],
)
