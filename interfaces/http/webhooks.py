"""The REST resource of webhooks (``/api/webhooks``): subscriptions, their deliveries, a test ping.

Every route needs the ``admin`` scope, reads included: a subscription says where data goes (and
a key limited to some resources may not use them: a subscription hears of every run).
The signing secret is in the answer of a create and of ``rotate-secret`` only, never in a later
read. Validation is the model's ``clean()`` (the URL by the outbound policy, the events, the
resource filter by the catalogue of run kinds), so the API refuses what the admin refuses.

    GET,POST              /api/webhooks                                   list, create (+ secret)
    GET,PUT,PATCH,DELETE  /api/webhooks/{id}                              retrieve, update, destroy
    POST                  /api/webhooks/{id}/rotate-secret                a new secret, shown once
    POST                  /api/webhooks/{id}/test                         a webhook.test delivery
    GET                   /api/webhooks/{id}/deliveries                   the log (?status=, cursor)
    GET                   /api/webhooks/{id}/deliveries/{delivery}        one, with its attempts
    POST                  /api/webhooks/{id}/deliveries/{delivery}/redeliver
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.decorators import action
from rest_framework.response import Response

from cosmos.services.errors import Invalid, NotFound
from interfaces.edge.auth import caller_of
from interfaces.http.pagination import cursor_pagination
from interfaces.http.serializers import ResourceSerializer
from interfaces.http.viewsets import ResourceViewSet
from interfaces.webhooks import deliveries as delivery_services
from interfaces.webhooks import services as webhook_services
from interfaces.webhooks.models import SUBSCRIBABLE, Delivery, DeliveryAttempt, DeliveryStatus, Webhook

DELIVERY_ID = "[^/]+"  # a number; anything else is "No delivery with id ..."


class WebhookSerializer(ResourceSerializer):
    """Webhook subscription. ``events`` empty: every event; ``resource_kind`` / ``resource_id``
    empty: runs of any resource. The secret is never shown here (see the create answer)."""

    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE),
        required=False,
        help_text="Among " + ", ".join(SUBSCRIBABLE) + "; empty: all of them.",
    )

    class Meta:
        model = Webhook
        exclude = ("secret",)
        read_only_fields = ("caller", "created_at", "updated_at")


class WebhookCreatedSerializer(WebhookSerializer):
    """The subscription just made, with its signing secret: the only time it is shown."""

    secret = serializers.CharField(read_only=True, help_text="whsec_... Keep it now: it is never shown again.")

    class Meta(WebhookSerializer.Meta):
        exclude = ()
        fields = "__all__"


class SecretSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    secret = serializers.CharField(help_text="The new whsec_... secret. Keep it now: it is never shown again.")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ("number", "started_at", "status_code", "latency_ms", "error")


class DeliverySerializer(serializers.ModelSerializer):
    """One message to the receiver: ``message_id`` is its ``webhook-id`` header, the same on every attempt."""

    class Meta:
        model = Delivery
        fields = (
            "id",
            "message_id",
            "event",
            "run",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_latency_ms",
            "created_at",
            "delivered_at",
        )


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.JSONField(help_text="The body POSTed (the same on every attempt).")
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = (*DeliverySerializer.Meta.fields, "payload", "attempt_log")


DELIVERY_STATUS_PARAMETER = OpenApiParameter(
    "status", OpenApiTypes.STR, enum=list(DeliveryStatus.values), description="Only deliveries in this status."
)
DeliveryPagination = cursor_pagination("-created_at")


class WebhookViewSet(ResourceViewSet):
    """Webhooks: run and schedule events POSTed to your URL, signed (Standard Webhooks), retried for a day."""

    resource_name = "webhooks"
    required_scope = "admin"  # reads too: a subscription reveals where data goes
    search_fields = ("name", "url")
    filter_fields = ("enabled", "resource_kind", "resource_id")
    ordering_fields = ("name", "created_at", "updated_at")
    serializer_class = WebhookSerializer

    def principal_may_use(self, principal) -> bool:
        # Subscriptions see every run: a key limited to some resources may not use them, unless
        # it names the whole collection ("webhooks" or "webhooks:*").
        return principal.allows_resource(self.resource_name)

    @extend_schema(responses={201: WebhookCreatedSerializer})
    def create(self, request, *args, **kwargs):
        """Subscribe; the answer holds the signing secret, shown this once."""
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer) -> None:
        webhook = webhook_services.create_webhook(caller=caller_of(self.request.user), **serializer.validated_data)
        serializer.instance = webhook

    def get_serializer_class(self):
        if self.action == "create" and self.request.method == "POST":
            return WebhookCreatedSerializer
        return super().get_serializer_class()

    @extend_schema(request=None, responses=SecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret", filter_backends=[])
    def rotate_secret(self, request, **_lookup):
        """A new signing secret, shown this once; the old one stops signing now."""
        webhook = webhook_services.rotate_secret(self.get_object())
        return Response(SecretSerializer({"id": webhook.pk, "secret": webhook.secret}).data)

    @extend_schema(request=None, responses={202: DeliveryDetailSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def test(self, request, **_lookup):
        """Send a ``webhook.test`` ping, delivered (and retried, and logged) like any event."""
        delivery = webhook_services.send_test(self.get_object())
        return Response(DeliveryDetailSerializer(delivery).data, status=http_status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[DELIVERY_STATUS_PARAMETER], responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=DeliveryPagination)
    def deliveries(self, request, **_lookup):
        """The delivery log of this subscription, newest first (cursor pages)."""
        webhook = self.get_object()
        rows = Delivery.objects.filter(webhook=webhook)
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise Invalid(
                    f"status must be one of {list(DeliveryStatus.values)}.",
                    code="invalid_parameter",
                    details={"status": wanted},
                )
            rows = rows.filter(status=wanted)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(responses=DeliveryDetailSerializer)
    @action(detail=True, methods=["get"], url_path=f"deliveries/(?P<delivery>{DELIVERY_ID})", filter_backends=[])
    def delivery(self, request, delivery: str, **_lookup):
        """One delivery, its payload and every attempt."""
        return Response(DeliveryDetailSerializer(self._delivery(delivery)).data)

    @extend_schema(request=None, responses={202: DeliveryDetailSerializer})
    @action(
        detail=True, methods=["post"], url_path=f"deliveries/(?P<delivery>{DELIVERY_ID})/redeliver", filter_backends=[]
    )
    def redeliver(self, request, delivery: str, **_lookup):
        """Send a delivery again now (whatever its status), with the same ``webhook-id``."""
        row = delivery_services.redeliver(self._delivery(delivery))
        return Response(DeliveryDetailSerializer(row).data, status=http_status.HTTP_202_ACCEPTED)

    def _delivery(self, delivery_id: str) -> Delivery:
        webhook = self.get_object()
        queryset = Delivery.objects.filter(webhook=webhook).prefetch_related("attempt_log")
        row = queryset.filter(id=int(delivery_id)).first() if delivery_id.isdigit() and len(delivery_id) <= 18 else None
        if row is None:
            raise NotFound(f"No delivery with id {delivery_id!r}.")
        return row
