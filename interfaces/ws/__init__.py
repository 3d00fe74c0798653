"""Websocket streams (Channels): run events, AG-UI over a socket, the dashboard feed."""
