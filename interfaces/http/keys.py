"""``GET /api/keys/me/usage``: the calling API key's quotas, what it used and when each resets."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from cosmos.services.errors import ServiceError
from interfaces.edge.auth import KeyPrincipal, caller_of
from interfaces.http.viewsets import AsterViewMixin
from interfaces.keys import quotas
from interfaces.keys.models import APIKey


class APIKeyRequired(ServiceError):
    status = 401
    code = "api_key_required"


class QuotaUsageSerializer(serializers.Serializer):
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")
    used = serializers.IntegerField(allow_null=True, help_text="null: not known right now (Redis unreachable).")
    remaining = serializers.IntegerField(allow_null=True, help_text="null when unlimited.")
    resets_at = serializers.DateTimeField(allow_null=True, help_text="When the count starts again (UTC).")
    resets_in_seconds = serializers.IntegerField(allow_null=True)


class CostQuotaSerializer(serializers.Serializer):
    limit = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, help_text="null: unlimited.")
    used = serializers.DecimalField(max_digits=20, decimal_places=6)
    remaining = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True, help_text="The next 00:00 UTC.")
    resets_in_seconds = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(help_text="USD: the price table's currency.")


class QuotasSerializer(serializers.Serializer):
    requests_per_minute = QuotaUsageSerializer(help_text="Requests in the current 60-second window.")
    concurrent_runs = QuotaUsageSerializer(
        help_text="Queued or running top-level runs; no reset time: a slot frees when a run ends."
    )
    tokens_per_day = QuotaUsageSerializer(help_text="Tokens of runs finished since 00:00 UTC; resets at midnight.")
    cost_per_day = CostQuotaSerializer(help_text="What runs finished since 00:00 UTC cost; resets at midnight.")


class KeySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()


class KeyUsageSerializer(serializers.Serializer):
    key = KeySerializer()
    quotas = QuotasSerializer()


class KeyUsageView(AsterViewMixin, APIView):
    """The calling API key's quotas and usage. Session and anonymous callers get 401: no key."""

    required_scope = "read"
    schema_tags = ("keys",)

    @extend_schema(responses=KeyUsageSerializer, summary="The calling API key's quotas and usage")
    def get(self, request):
        principal = request.user
        if not isinstance(principal, KeyPrincipal):
            raise APIKeyRequired(
                "This reports on the API key making the request: send it as 'Authorization: Bearer <key>' "
                "or 'X-API-Key' (a browser session has no key)."
            )
        key = APIKey.objects.filter(pk=principal.key_id).first() if principal.key_id else None
        # The ASTEROS_API_KEY setting's key has no row: it is counted, and never limited.
        usage = quotas.key_usage(key) if key else quotas.usage(principal.prefix, caller_of(principal))
        body = {"key": {"name": principal.name, "prefix": principal.prefix}, "quotas": usage}
        return Response(KeyUsageSerializer(body).data)
