"""An example REST resource: the messages of stars, read and posted, never edited.

Registering a model is one call with a DRF viewset, as ``admin.site.register`` is with a
``ModelAdmin``; in an app of yours it goes in the app's ``asteros.py`` (imported at start)::

    site.register(StarMessage, StarMessageViewSet)

Then ``GET /api/star-messages`` (``?star=``, ``?sender=``, ``?search=``, ``?ordering=``, pages),
``GET /api/star-messages/{id}``, ``POST /api/star-messages`` and ``GET
/api/star-messages/{id}/thread`` are served, documented in the OpenAPI schema and guarded by the
API keys' scopes; ``python manage.py asteros routes`` lists them. tests/interfaces/test_registry.py
registers it for a test.
"""

from __future__ import annotations

from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from interfaces.http.viewsets import GenericResourceViewSet
from stars import services as star_services


class StarMessageViewSet(
    GenericResourceViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    """Messages between the members of a star."""

    resource_name = "star-messages"
    filter_fields = ("star", "sender")
    search_fields = ("content",)
    ordering_fields = ("created_at",)
    read_only_fields = ("created_at", "run")

    def perform_create(self, serializer) -> None:
        # Through the service, which checks that sender and recipient are members (400 otherwise).
        data = serializer.validated_data
        serializer.instance = star_services.send_message(
            data["star"].id, data["sender"], data["recipient"], data["content"]
        )

    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def thread(self, request, *args, **kwargs):
        """This message and the ones between the same two members, oldest first."""
        message = self.get_object()
        pair = {message.sender, message.recipient}
        thread = star_services.messages(message.star_id).filter(sender__in=pair, recipient__in=pair)
        return Response(self.get_serializer(thread, many=True).data)
