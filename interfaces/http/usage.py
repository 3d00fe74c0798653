"""``GET /api/usage``: tokens and cost of the runs that ended, by agent, API key, day or model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from cosmos.models import PRICE_CURRENCY
from cosmos.services import costs
from cosmos.services.errors import Invalid
from interfaces.edge.auth import KeyPrincipal
from interfaces.http.viewsets import AsterViewMixin
from interfaces.keys.quotas import usage_by_key

GROUPS = ("agent", "key", "day", "model")
DEFAULT_DAYS = 30
MAX_DAYS = 366
RESOURCE = "usage"
FIRST_YEAR, LAST_YEAR = 2000, 9998


class UsageRowSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The agent id, the key's prefix, the day (YYYY-MM-DD) or provider:model.")
    name = serializers.CharField(required=False, help_text="group=key: the key's name.")
    runs = serializers.IntegerField()
    input_tokens = serializers.IntegerField(help_text="Uncached input tokens.")
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=20, decimal_places=6)
    currency = serializers.CharField()
    unpriced_runs = serializers.IntegerField(help_text="Runs on a model with no price (counted at 0).")


class UsageSerializer(serializers.Serializer):
    group = serializers.ChoiceField(choices=GROUPS)
    since = serializers.DateField(help_text="First UTC day counted.")
    until = serializers.DateField(help_text="Last UTC day counted.")
    currency = serializers.CharField()
    rows = UsageRowSerializer(many=True)
    total = UsageRowSerializer(help_text="Every row together (group: 'total').")


def _day(raw: str | None, name: str, default: date) -> date:
    if raw in (None, ""):
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"'{name}' must be a day as YYYY-MM-DD.", details={name: raw}) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:  # the window's end, the next day, must exist
        raise Invalid(f"'{name}' must be a day from {FIRST_YEAR} to {LAST_YEAR}.", details={name: raw})
    return day


class UsageView(AsterViewMixin, APIView):
    """Tokens and cost of the runs that ended between two UTC days, grouped. Admin scope: it
    covers every key and every agent."""

    required_scope = "admin"
    schema_tags = ("usage",)

    @extend_schema(
        summary="Tokens and cost by agent, API key, day or model",
        parameters=[
            OpenApiParameter("group", OpenApiTypes.STR, enum=list(GROUPS), description="Default: agent."),
            OpenApiParameter("since", OpenApiTypes.DATE, description=f"Default: {DEFAULT_DAYS - 1} days before until."),
            OpenApiParameter("until", OpenApiTypes.DATE, description="Default: today (UTC); inclusive."),
        ],
        responses=UsageSerializer,
    )
    def get(self, request):
        principal = request.user
        if isinstance(principal, KeyPrincipal) and not principal.allows_resource(RESOURCE):
            raise PermissionDenied("This API key is limited to some resources; usage covers them all.")
        params = request.query_params
        group = params.get("group") or "agent"
        if group not in GROUPS:
            raise Invalid(f"'group' must be one of {', '.join(GROUPS)}.", details={"group": group})
        until = _day(params.get("until"), "until", datetime.now(UTC).date())
        since = _day(params.get("since"), "since", until - timedelta(days=DEFAULT_DAYS - 1))
        if since > until:
            raise Invalid("'since' must not be after 'until'.", details={"since": str(since), "until": str(until)})
        if (until - since).days >= MAX_DAYS:
            raise Invalid(
                f"Ask for at most {MAX_DAYS} days at a time.", details={"since": str(since), "until": str(until)}
            )
        window = {"since": costs.day_start(since), "until": costs.day_start(until + timedelta(days=1))}
        rows = usage_by_key(**window) if group == "key" else costs.usage_totals(group, **window)
        body = {
            "group": group,
            "since": since,
            "until": until,
            "currency": PRICE_CURRENCY,
            "rows": rows,
            "total": costs.sum_rows(rows),
        }
        return Response(UsageSerializer(body).data)
