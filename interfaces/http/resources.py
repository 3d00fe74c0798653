"""The built-in resources: agents, templates, stars, workflows, runs, interrupts, sessions and tools.

Each is one ``site.register`` call with a DRF viewset, exactly like an app registering its own
model. Writes go through the services (agents through ``cosmos.services.agents`` so
``ASTEROS_MAX_AGENTS`` holds); the seed's routes are extra actions. They live here, in the
interfaces layer, because imports point down (interfaces -> workflows -> stars -> cosmos): the
lower apps know nothing about HTTP.

The routes served from here (under ASTEROS_API_PREFIX, default /api; ``manage.py asteros routes``
lists every route of every door, and tests/asteros_site/test_routes_command.py holds the list)::

    GET,POST              /api/agents                        AgentViewSet.list,create
    GET,PUT,PATCH,DELETE  /api/agents/{id}                   AgentViewSet.retrieve,update,...
    POST                  /api/agents/{id}/run               AgentViewSet.run
    GET                   /api/agents/{id}/status            AgentViewSet.status
    (as the two above)    /api/templates[/{id}]              TemplateViewSet
    (as the two above)    /api/stars[/{id}]                  StarViewSet
    POST                  /api/stars/{id}/run|join|leave     StarViewSet.run|join|leave
    GET                   /api/stars/{id}/members|messages   StarViewSet.members|messages
    (as the two above)    /api/workflows[/{id}]              WorkflowViewSet
    POST                  /api/workflows/{id}/execute        WorkflowViewSet.execute
    (as the two above)    /api/sessions[/{id}]               SessionViewSet
    GET                   /api/runs[/{id}]                   RunViewSet.list,retrieve (read-only)
    GET                   /api/runs/{id}/events              RunViewSet.events
    POST                  /api/runs/{id}/cancel              RunViewSet.cancel
    POST                  /api/runs/{id}/resume              RunViewSet.resume
    GET                   /api/interrupts[/{id}]             InterruptViewSet.list,retrieve (read-only)
    (as the two above)    /api/remote-agents[/{name}]        RemoteAgentViewSet (remote_agents.py)
    (as the two above)    /api/mcp-servers[/{name}]          MCPServerViewSet (mcp_servers.py)
    GET                   /api/mcp-servers/{name}/tools      MCPServerViewSet.tools (listed live)
    (as the two above)    /api/schedules[/{name}]            ScheduleViewSet (schedules.py)
    POST                  /api/schedules/{name}/run          ScheduleViewSet.run (run now)
    GET                   /api/schedules/{name}/runs         ScheduleViewSet.runs
    GET                   /api/tools[/{name}]                ToolViewSet (views.py)
    (as the two above)    /api/webhooks[/{id}]               WebhookViewSet (webhooks.py; admin scope)
    POST                  /api/webhooks/{id}/rotate-secret|test
    GET                   /api/webhooks/{id}/deliveries[/{delivery}]
    POST                  /api/webhooks/{id}/deliveries/{delivery}/redeliver
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http_status
from rest_framework.decorators import action
from rest_framework.response import Response

from cosmos.eventlog import read_events
from cosmos.models import Agent, AgentTemplate, Interrupt, Run, Session, Source
from cosmos.services import agents as agent_services
from cosmos.services import interrupts as interrupt_services
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict, Invalid
from interfaces.connectors.models import MCPServer, RemoteAgent
from interfaces.edge.auth import KeyPrincipal, caller_of, kind_resource
from interfaces.edge.links import api_link
from interfaces.edge.params import canonical_uuid, whole_number
from interfaces.edge.parsers import JSONParser
from interfaces.edge.permissions import restrict_to_usable_runs
from interfaces.edge.sse import parse_last_event_id, run_event_stream, sse_response
from interfaces.http.mcp_servers import MCPServerViewSet
from interfaces.http.pagination import ResourcePagination, cursor_pagination
from interfaces.http.registry import site
from interfaces.http.remote_agents import RemoteAgentViewSet
from interfaces.http.revisions import RevisionsMixin
from interfaces.http.runs import IDEMPOTENCY_PARAMETER, RUN_RESPONSES, WAIT_PARAMETER, start_run_response
from interfaces.http.schedules import ScheduleViewSet
from interfaces.http.schema import SSE_EVENT_SCHEMA
from interfaces.http.serializers import (
    AgentSerializer,
    AgentStatusSerializer,
    AgentTemplateSerializer,
    EventPageSerializer,
    InterruptItemSerializer,
    JoinSerializer,
    LeaveSerializer,
    MemberSerializer,
    ResumeSerializer,
    RunRequestSerializer,
    RunSerializer,
    StarMessageSerializer,
)
from interfaces.http.views import ToolViewSet
from interfaces.http.viewsets import (
    STREAM_RENDERERS,
    ReadOnlyResourceViewSet,
    ResourceViewSet,
    wants_event_stream,
)
from interfaces.http.webhooks import WebhookViewSet
from interfaces.schedules.models import Schedule
from interfaces.webhooks.models import Webhook
from stars import services as star_services
from stars.models import Star
from workflows.models import Workflow

DEFINITION_READ_ONLY = ("source", "created_at", "updated_at")
DEFINITION_ORDERING = ("id", "name", "created_at", "updated_at")
DEFINITION_SEARCH = ("id", "name", "description")
MAX_EVENTS_PAGE = 1000


def _run_action(**kwargs):
    """An ``@action`` that starts a run: JSON body, SSE-capable, needs the ``run`` scope."""
    return action(
        detail=True,
        methods=["post"],
        required_scope="run",
        renderer_classes=STREAM_RENDERERS,
        parser_classes=[JSONParser],
        serializer_class=RunRequestSerializer,
        filter_backends=[],
        **kwargs,
    )


RUN_SCHEMA = {
    "request": RunRequestSerializer,
    "responses": RUN_RESPONSES,
    "parameters": [WAIT_PARAMETER, IDEMPOTENCY_PARAMETER],
}


class AgentViewSet(RevisionsMixin, ResourceViewSet):
    """Agents: definitions the runtime runs (a template merged with these overrides)."""

    resource_name = "agents"
    revision_resource = "agent"
    search_fields = DEFINITION_SEARCH
    filter_fields = ("enabled", "source", "provider", "model", "template")
    ordering_fields = DEFINITION_ORDERING
    read_only_fields = DEFINITION_READ_ONLY
    serializer_class = AgentSerializer

    def perform_create(self, serializer) -> None:
        # Through the service, so ASTEROS_MAX_AGENTS holds (409 cosmos_full).
        data = dict(serializer.validated_data)
        agent_id = data.pop("id")
        serializer.instance = agent_services.create_agent(agent_id, source=Source.DATABASE, **data)

    def perform_destroy(self, instance: Agent) -> None:
        agent_services.remove_agent(instance.id)

    @extend_schema(summary="Run the agent", **RUN_SCHEMA)
    @_run_action()
    def run(self, request, *args, **kwargs):
        """Start a run of this agent. 202 with the run and its links; SSE with stream: true."""
        return start_run_response(request, kind="agent", target=self.get_object().id)

    @extend_schema(summary="The agent's status", responses=AgentStatusSerializer)
    @action(
        detail=True, methods=["get"], serializer_class=AgentStatusSerializer, pagination_class=None, filter_backends=[]
    )
    def status(self, request, *args, **kwargs):
        """idle or busy, its active runs, total runs, errors and tokens, last activity."""
        return Response(AgentStatusSerializer(agent_services.agent_status(self.get_object().id)).data)


class TemplateViewSet(RevisionsMixin, ResourceViewSet):
    """Agent templates: reusable prompts, model settings and tools."""

    resource_name = "templates"
    revision_resource = "template"
    search_fields = ("id", "name", "system_prompt")
    filter_fields = ("provider", "model")
    ordering_fields = ("id", "name", "created_at", "updated_at")
    read_only_fields = ("created_at", "updated_at")
    serializer_class = AgentTemplateSerializer


class StarViewSet(RevisionsMixin, ResourceViewSet):
    """Stars: teams of agents with one leader."""

    resource_name = "stars"
    revision_resource = "star"
    search_fields = DEFINITION_SEARCH
    filter_fields = ("enabled", "source", "mode")
    ordering_fields = DEFINITION_ORDERING
    read_only_fields = DEFINITION_READ_ONLY

    @extend_schema(summary="Run the star", **RUN_SCHEMA)
    @_run_action()
    def run(self, request, *args, **kwargs):
        """Start a run of this star (501 until the star engine is installed)."""
        return start_run_response(request, kind="star", target=self.get_object().id, what="Star runs")

    @extend_schema(summary="Add a member", request=JoinSerializer, responses={201: MemberSerializer})
    @action(
        detail=True, methods=["post"], serializer_class=JoinSerializer, parser_classes=[JSONParser], filter_backends=[]
    )
    def join(self, request, *args, **kwargs):
        """Add an agent to the star as leader or worker (409 for a second leader or a member twice)."""
        star = self.get_object()
        body = JoinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        member = star_services.join(
            star.id,
            data["agent_id"],
            data["role"],
            data.get("name"),
            description=data.get("description", ""),
            order=data.get("order"),
        )
        return Response(MemberSerializer(star_services.member_dict(member)).data, status=http_status.HTTP_201_CREATED)

    @extend_schema(summary="Remove a member", request=LeaveSerializer, responses={204: None})
    @action(
        detail=True, methods=["post"], serializer_class=LeaveSerializer, parser_classes=[JSONParser], filter_backends=[]
    )
    def leave(self, request, *args, **kwargs):
        """Remove a member, by agent id or member name."""
        star = self.get_object()
        body = LeaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        star_services.leave(star.id, agent_id=body.validated_data.get("agent_id"), name=body.validated_data.get("name"))
        return Response(status=http_status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="The star's members", responses=MemberSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=MemberSerializer,
        pagination_class=ResourcePagination,
        filter_backends=[],
    )
    def members(self, request, *args, **kwargs):
        """The members, leader and workers, in order, each idle or busy."""
        star = self.get_object()
        page = self.paginate_queryset(star_services.members(star.id))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(summary="Messages between the star's members", responses=StarMessageSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=StarMessageSerializer,
        pagination_class=cursor_pagination("id"),
        filter_backends=[],
    )
    def messages(self, request, *args, **kwargs):
        """Who said what to whom, oldest first, cursor-paged; ``?run=<id>`` for one star run."""
        star = self.get_object()
        run_id = request.query_params.get("run")
        if run_id is not None and canonical_uuid(run_id) is None:
            raise Invalid(f"'run' must be a run id (a UUID), not {run_id[:60]!r}.")
        page = self.paginate_queryset(star_services.messages(star.id, run_id=run_id))
        return self.get_paginated_response(
            StarMessageSerializer([star_services.message_dict(m) for m in page], many=True).data
        )


class WorkflowViewSet(RevisionsMixin, ResourceViewSet):
    """Workflows: validated JSON definitions composing agents, stars and functions."""

    resource_name = "workflows"
    revision_resource = "workflow"
    search_fields = DEFINITION_SEARCH
    filter_fields = ("enabled", "source")
    ordering_fields = DEFINITION_ORDERING
    read_only_fields = DEFINITION_READ_ONLY

    @extend_schema(summary="Execute the workflow", **RUN_SCHEMA)
    @_run_action()
    def execute(self, request, *args, **kwargs):
        """Start a run of this workflow (501 until the workflow engine is installed)."""
        return start_run_response(request, kind="workflow", target=self.get_object().id, what="Workflow runs")


class SessionViewSet(ResourceViewSet):
    """Sessions: conversation threads carried across runs (history, state, concurrency policy)."""

    resource_name = "sessions"
    search_fields = ("id",)
    filter_fields = ("kind", "target", "policy")
    ordering_fields = ("created_at", "updated_at")
    read_only_fields = ("created_at", "updated_at")


class RunViewSet(ReadOnlyResourceViewSet):
    """Runs: every execution, newest first, with their events."""

    resource_name = "runs"
    serializer_class = RunSerializer
    pagination = "cursor"
    cursor_ordering = "-created_at"
    filter_fields = {
        "status": "status",
        "kind": "kind",
        "target": "target",
        "session": "session_id",
        "parent": "parent_id",
        "origin": "origin",
    }

    def principal_may_use(self, principal: KeyPrincipal) -> bool:
        return True  # the queryset keeps the runs of the resources the key may use

    def restrict_queryset(self, queryset: QuerySet, principal: KeyPrincipal) -> QuerySet:
        return restrict_to_usable_runs(queryset, principal)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        # One run: whether it has children and interrupts comes with its row (a page reads
        # both for the whole page: RunListSerializer).
        return run_services.with_tree_flags(queryset) if self.action == "retrieve" else queryset

    def resource_key(self, obj: Run) -> tuple[str, str]:
        return kind_resource(obj.kind) or "runs", obj.target

    @extend_schema(
        summary="The run's events",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Only events with a seq above this."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"At most this many events (1-{MAX_EVENTS_PAGE})."),
            OpenApiParameter(
                "Last-Event-ID", OpenApiTypes.STR, OpenApiParameter.HEADER, description="SSE: resume after this seq."
            ),
        ],
        responses={
            (200, "application/json"): EventPageSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA, description="With Accept: text/event-stream: the events as SSE, live until the end."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=STREAM_RENDERERS,
        serializer_class=EventPageSerializer,
        pagination_class=None,
        filter_backends=[],
    )
    def events(self, request, *args, **kwargs):
        """A page of events after ?after=N, or (Accept: text/event-stream) the live SSE stream."""
        run = self.get_object()
        after = whole_number(request.query_params.get("after"), "after", default=0)
        if wants_event_stream(request):
            try:
                resume = parse_last_event_id(request.headers.get("Last-Event-ID"))
            except ValueError:
                raise Invalid("Last-Event-ID must be the seq of an event (a whole number).") from None
            return sse_response(
                run_event_stream(str(run.id), after=max(after, resume or 0)), headers={"X-Run-ID": str(run.id)}
            )
        limit = whole_number(request.query_params.get("limit"), "limit", default=100, low=1, high=MAX_EVENTS_PAGE)
        rows = read_events(str(run.id), after, limit)
        last = rows[-1][0] if rows else after
        exhausted = run.is_terminal and len(rows) < limit
        page = {
            "run": run.id,
            "status": run.status,
            "last_seq": last,
            "next": None if exhausted else f"{api_link(request, 'runs-events', id=run.id)}?after={last}&limit={limit}",
            "results": [{"seq": seq, "type": event.get("type", ""), "event": event} for seq, event in rows],
        }
        return Response(EventPageSerializer(page).data)

    @extend_schema(summary="Cancel the run", request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"], required_scope="run", serializer_class=RunSerializer, filter_backends=[])
    def cancel(self, request, *args, **kwargs):
        """Cancel a queued or running run (and its children); 409 when it is already over."""
        run = run_services.cancel_run(self.get_object().id)
        return Response(RunSerializer(run, context={"request": request}).data, status=http_status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Resolve an interrupt and resume the run", request=ResumeSerializer, responses={202: RunSerializer}
    )
    @action(
        detail=True,
        methods=["post"],
        required_scope="run",
        parser_classes=[JSONParser],
        serializer_class=ResumeSerializer,
        filter_backends=[],
    )
    def resume(self, request, *args, **kwargs):
        """Approve, reject or edit a tool call, or answer a question, of an interrupted run.

        The run goes on once its pause's last interrupt is resolved. Who may do this: who may run
        the agent (star, workflow) and cancel its runs: the ``run`` scope on its resource. 409
        ``already_resolved`` when someone decided first."""
        run = self.get_object()  # 404 for a run the key may not see; 403 for one it may not use
        body = ResumeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        interrupt_id = data.get("interrupt_id") or _the_pending_interrupt(run)
        interrupt_services.resolve(
            interrupt_id,
            data["decision"],
            arguments=data.get("arguments"),
            answer=data.get("answer"),
            message=data.get("message", ""),
            resolved_by=caller_of(request.user),
            run_id=run.id,
        )
        run.refresh_from_db()
        return Response(RunSerializer(run, context={"request": request}).data, status=http_status.HTTP_202_ACCEPTED)


def _the_pending_interrupt(run: Run) -> str:
    """The run's one pending interrupt, for a body without ``interrupt_id``."""
    pending = interrupt_services.pending_interrupts(run.id)
    if not pending:
        raise Conflict(f"Run {run.id} is not waiting for a decision.", code="not_interrupted")
    if len(pending) > 1:
        raise Invalid(
            f"Run {run.id} waits for {len(pending)} decisions: give the interrupt_id of one.",
            code="interrupt_id_required",
            details={"interrupt_ids": [str(i.id) for i in pending]},
        )
    return str(pending[0].id)


class InterruptViewSet(ReadOnlyResourceViewSet):
    """Interrupts: the approvals and questions runs wait for, oldest first.

    ``?status=pending&agent=<id>`` is a reviewer's queue. A key limited to some agents (stars,
    workflows) sees the interrupts of their runs only, as with runs."""

    resource_name = "interrupts"
    serializer_class = InterruptItemSerializer
    queryset = Interrupt.objects.select_related("root_run")
    pagination = "cursor"
    cursor_ordering = "created_at"
    filter_fields = {
        "status": "status",
        "kind": "kind",
        "agent": "root_run__target",
        "target": "root_run__target",
        "run": "root_run_id",
    }

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if self.request.query_params.get("agent"):
            queryset = queryset.filter(root_run__kind="agent")  # ?agent= is ?target= of agent runs
        return queryset

    def principal_may_use(self, principal: KeyPrincipal) -> bool:
        return True  # the queryset keeps the interrupts of the runs the key may see

    def restrict_queryset(self, queryset: QuerySet, principal: KeyPrincipal) -> QuerySet:
        return restrict_to_usable_runs(queryset, principal, run="root_run__")

    def resource_key(self, obj: Interrupt) -> tuple[str, str]:
        return kind_resource(obj.root_run.kind) or "runs", obj.root_run.target


site.register(Agent, AgentViewSet)
site.register(AgentTemplate, TemplateViewSet)
site.register(Star, StarViewSet)
site.register(Workflow, WorkflowViewSet)
site.register(Session, SessionViewSet)
site.register(Run, RunViewSet)
site.register(Interrupt, InterruptViewSet)
site.register_viewset("tools", ToolViewSet)
site.register(RemoteAgent, RemoteAgentViewSet)
site.register(MCPServer, MCPServerViewSet)
site.register(Schedule, ScheduleViewSet)
site.register(Webhook, WebhookViewSet)
