"""The REST resource of schedules (``/api/schedules``): the admin's page, over HTTP.

Reads need the ``read`` scope, writes ``admin``; ``POST /api/schedules/{name}/run`` (run now)
needs ``run``. Validation is the model's ``clean()`` (the target exists, the cron parses, the
timezone exists, the end is after the start, exactly one of cron and interval). Each schedule
shows its next fire times; ``GET /api/schedules/{name}/runs`` lists the runs it started.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from timezone_field.rest_framework import TimeZoneSerializerField

from cosmos.logging import run_id_var
from interfaces.edge.auth import caller_of
from interfaces.edge.links import api_link
from interfaces.http.pagination import cursor_pagination
from interfaces.http.serializers import ResourceSerializer, RunSerializer
from interfaces.http.viewsets import ResourceViewSet
from interfaces.schedules import services
from interfaces.schedules.models import Schedule

NEXT_FIRE_TIMES = 5


class ScheduleSerializer(ResourceSerializer):
    """Schedule. ``next_fire_times`` are the next ticks (UTC); ``last_error`` says why the last
    tick that failed could not start its run."""

    # The catalogue of run kinds, read when validating (a kind registered later is accepted too).
    kind = serializers.CharField(max_length=16, help_text="What runs: a run kind (agent, star or workflow).")
    timezone = TimeZoneSerializerField(use_pytz=False, required=False)
    next_fire_times = serializers.SerializerMethodField()
    runs = serializers.SerializerMethodField()
    write_once_fields = ("name",)

    class Meta:
        model = Schedule
        fields = "__all__"
        read_only_fields = ("caller", "created_at", "updated_at")

    def get_next_fire_times(self, obj: Schedule) -> list[str]:
        return [t.isoformat() for t in services.next_fire_times(obj, NEXT_FIRE_TIMES)]

    def get_runs(self, obj: Schedule) -> str:
        return api_link(self.context.get("request"), "schedules-runs", name=obj.pk)


class ScheduleViewSet(ResourceViewSet):
    """Schedules: runs of an agent, star or workflow on a cron expression or an interval."""

    resource_name = "schedules"
    search_fields = ("name", "target", "description")
    filter_fields = ("enabled", "kind", "target", "missed_policy")
    ordering_fields = ("name", "created_at", "updated_at", "last_tick_at")
    serializer_class = ScheduleSerializer

    def perform_create(self, serializer) -> None:
        serializer.validated_data["caller"] = caller_of(self.request.user)
        super().perform_create(serializer)

    @extend_schema(summary="Run the schedule now", request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"], required_scope="run", serializer_class=RunSerializer, filter_backends=[])
    def run(self, request, *args, **kwargs):
        """Start a run of the schedule's target with its input at once (outside its grid)."""
        run = services.run_now(self.get_object().pk, caller=caller_of(request.user))
        run_id_var.set(str(run.id))
        data = RunSerializer(run, context={"request": request}).data
        return Response(data, status=202, headers={"Location": data["links"]["self"], "X-Run-ID": str(run.id)})

    @extend_schema(summary="The schedule's runs", responses=RunSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=RunSerializer,
        filter_backends=[],
        pagination_class=cursor_pagination("-created_at"),
    )
    def runs(self, request, *args, **kwargs):
        """The runs the schedule started (its ticks and "run now"), newest first; cursor pages."""
        queryset = services.runs_of(self.get_object())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(RunSerializer(page, many=True, context={"request": request}).data)
