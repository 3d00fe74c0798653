"""The REST resource of remote A2A agents (``/api/remote-agents``): the admin's page, over HTTP.

Reads need the ``read`` scope, writes ``admin``. Validation is the model's ``clean()``; after a
write the card is read (outside any transaction) and the answer shows what it said.
"""

from __future__ import annotations

from django.db import transaction
from rest_framework import serializers

from interfaces.connectors import declared
from interfaces.connectors.models import RemoteAgent
from interfaces.http.serializers import ResourceSerializer
from interfaces.http.viewsets import ResourceViewSet


def _read_card_after_commit(instance: RemoteAgent) -> RemoteAgent:
    # Outside a transaction on_commit runs at once, and the answer shows the card just read.
    transaction.on_commit(lambda: declared.read_card(instance.pk))
    instance.refresh_from_db()
    return instance


class RemoteAgentSerializer(ResourceSerializer):
    """Remote A2A agent. ``auth_secret_status`` says whether the token reference resolves here
    (``none``, ``set``, ``not set`` or ``refused``); the token itself is never shown."""

    auth_secret_status = serializers.CharField(read_only=True)
    write_once_fields = ("name",)

    class Meta:
        model = RemoteAgent
        fields = "__all__"


class RemoteAgentViewSet(ResourceViewSet):
    """Remote A2A agents: each is a tool named after it, and the model of agents of provider a2a."""

    resource_name = "remote-agents"
    search_fields = ("name", "url", "description", "card_name")
    filter_fields = ("enabled", "binding")
    ordering_fields = ("name", "created_at", "updated_at")
    serializer_class = RemoteAgentSerializer

    def perform_create(self, serializer) -> None:
        super().perform_create(serializer)
        serializer.instance = _read_card_after_commit(serializer.instance)

    def perform_update(self, serializer) -> None:
        super().perform_update(serializer)
        serializer.instance = _read_card_after_commit(serializer.instance)
