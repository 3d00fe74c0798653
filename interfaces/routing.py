"""Websocket routes (Channels). Each interface adds its consumers here."""

websocket_urlpatterns: list = []
