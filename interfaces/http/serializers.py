"""Serializers of the HTTP API: the generated resources' base, runs, events, and small bodies."""

from __future__ import annotations

import copy
from operator import attrgetter
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers

from cosmos.models import Agent, AgentTemplate, Interrupt, InterruptKind, InterruptStatus, Run
from cosmos.runtime.interrupts import ANSWER, APPROVE, EDIT, REJECT
from cosmos.services import costs
from cosmos.services.interrupts import describe, interrupts_of
from interfaces.edge.links import run_links
from stars.models import Role


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable, machine-readable code, e.g. not_found or cosmos_full.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.JSONField(allow_null=True, help_text="Field errors or other structured details.")


class ErrorSerializer(serializers.Serializer):
    """The one error shape of every endpoint."""

    error = ErrorDetailSerializer()


class FastReadMixin:
    """Reading rows fast, with DRF's output: the hot path of every list and run answer.

    - ``get_fields`` builds a class's fields once, then copies them: building asks every model
      field for its (lazily translated) label and kwargs, a fifth of the time of a list request.
    - ``to_representation`` is DRF's loop, minus its generic attribute lookup where a field is a
      column: DRF asks every field for its value through ``Field.get_attribute`` (a path walk
      with callable checks and error handling) and builds a ``PKOnlyObject`` per foreign key;
      for a model's own column that is a plain ``getattr``. Other fields (methods, properties,
      nested) take DRF's own path. Each value is still rendered by its field's
      ``to_representation``, so the output is DRF's: ``tests/interfaces/http/test_serializers.py``
      compares the two for every registered resource and for runs.
    - The plan of that loop is built once per class (``_read_plan``) when every readable field
      is one of DRF's own, which render a value whatever serializer they belong to, or a method
      field, called on the serializer at hand (its context). Reading a row then copies no field
      at all: the copies were half the time of rendering one run. A class with other fields
      (nested serializers, custom fields) reads through fields copied per serializer.
    """

    def get_fields(self):
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built  # per class: a subclass builds its own
        return copy.deepcopy(built)

    def to_representation(self, instance: Model) -> dict[str, Any]:
        plan = _read_plan(type(self))
        readers = self._readers if plan is None else plan
        out: dict[str, Any] = {}
        for name, field, read_column, represent in readers:
            if represent is None:  # a method field of the class: the method of this serializer
                out[name] = getattr(self, read_column)(instance)
                continue
            if read_column is not None:
                value = read_column(instance)
            else:
                try:
                    value = field.get_attribute(instance)
                except drf_fields.SkipField:
                    continue
                if isinstance(value, relations.PKOnlyObject) and value.pk is None:
                    value = None
            out[name] = None if value is None else represent(value)
        return out

    @cached_property
    def _readers(self) -> list[tuple[str, drf_fields.Field, Any, Any]]:
        return _readers_of(self, self._readable_fields, plan=False)


_PLANS: dict[type, list | None] = {}


def _read_plan(serializer_class: type) -> list | None:
    """The class's readers, built once from a serializer of its own; None if it cannot have one."""
    if serializer_class not in _PLANS:
        try:
            prototype = serializer_class()
            fields = list(prototype._readable_fields)
        except Exception:  # a serializer that needs arguments: read field by field
            _PLANS[serializer_class] = None
        else:
            standard = all(_renders_alone(field) for field in fields)
            _PLANS[serializer_class] = _readers_of(prototype, fields, plan=True) if standard else None
    return _PLANS[serializer_class]


def _renders_alone(field: drf_fields.Field) -> bool:
    """A field that renders a value the same whatever serializer it belongs to: DRF's own
    value fields and primary keys (they read no context), or a method field."""
    if isinstance(field, serializers.BaseSerializer):
        return False
    if type(field) in (drf_fields.SerializerMethodField, relations.PrimaryKeyRelatedField):
        return True
    return type(field).__module__ == drf_fields.__name__


def _readers_of(serializer, fields, *, plan: bool) -> list[tuple[str, drf_fields.Field, Any, Any]]:
    """(name, field, read the column or None, represent) per readable field, in DRF's order.
    In a class's plan, a method field is (name, field, its method's name, None)."""
    columns = {column.name: column for column in serializer.Meta.model._meta.concrete_fields}
    readers = []
    for field in fields:
        if plan and type(field) is drf_fields.SerializerMethodField:
            readers.append((field.field_name, field, field.method_name, None))
            continue
        column = columns.get(field.source) if len(field.source_attrs) == 1 else None
        if column is not None and column.is_relation:
            if type(field) is relations.PrimaryKeyRelatedField and field.pk_field is None:
                # DRF renders the related row's pk, read without loading it: the attname.
                readers.append((field.field_name, field, attrgetter(column.attname), _same))
                continue
        elif column is not None and type(field).get_attribute is drf_fields.Field.get_attribute:
            readers.append((field.field_name, field, attrgetter(column.attname), field.to_representation))
            continue
        readers.append((field.field_name, field, None, field.to_representation))
    return readers


class ResourceSerializer(FastReadMixin, serializers.ModelSerializer):
    """Base of every generated serializer.

    Validation runs the model's ``full_clean`` on a candidate instance, so the API refuses what
    the admin refuses. Fields in ``write_once_fields`` (by default the primary key) can be set on
    create only.
    """

    write_once_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        instance = getattr(self, "instance", None)
        if isinstance(instance, Model):
            for name in self.write_once_fields:
                if name in fields:
                    fields[name].read_only = True
        return fields

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        model = self.Meta.model
        candidate = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            field = model._meta.get_field(name)
            if field.many_to_many or field.one_to_many:
                continue
            setattr(candidate, name, value)
        try:
            candidate.full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise serializers.ValidationError(exc.message_dict) from None
            raise serializers.ValidationError({"non_field_errors": exc.messages}) from None
        return attrs


API_KEY_STATUS_HELP = (
    "Whether the API key reference resolves in this process: none, set, not set or refused; "
    "the key itself is never shown."
)


class AgentTemplateSerializer(ResourceSerializer):
    """Agent template. ``api_key`` is a reference (env:NAME), never a key; ``api_key_status`` says
    whether it resolves here."""

    api_key_status = serializers.CharField(read_only=True, help_text=API_KEY_STATUS_HELP)
    write_once_fields = ("id",)

    class Meta:
        model = AgentTemplate
        fields = "__all__"
        read_only_fields = ("created_at", "updated_at")


class AgentSerializer(ResourceSerializer):
    """Agent. ``api_key`` is a reference (env:NAME), never a key; ``api_key_status`` says whether
    the agent's own reference resolves here."""

    api_key_status = serializers.CharField(read_only=True, help_text=API_KEY_STATUS_HELP)
    write_once_fields = ("id",)

    class Meta:
        model = Agent
        fields = "__all__"
        read_only_fields = ("source", "created_at", "updated_at")


def _same(value: Any) -> Any:
    return value


class RunLinksSerializer(serializers.Serializer):
    self = serializers.CharField(help_text="This run.")
    events = serializers.CharField(help_text="The run's events as JSON pages (?after=N).")
    stream = serializers.CharField(help_text="The run's events as Server-Sent Events.")
    websocket = serializers.CharField(help_text="The run's events on a websocket.")
    cancel = serializers.CharField(help_text="POST here to cancel the run.")


class InterruptSerializer(serializers.Serializer):
    """An interrupt as every door shows it (``cosmos.services.interrupts.describe``)."""

    id = serializers.UUIDField()
    runId = serializers.UUIDField(help_text="The run that paused (the run itself, or a child of it).")
    kind = serializers.ChoiceField(choices=InterruptKind.choices)
    request = serializers.JSONField(
        help_text="An approval: {toolCallId, tool, arguments}; a question: {toolCallId, question, schema?}."
    )
    status = serializers.ChoiceField(choices=InterruptStatus.choices)
    decision = serializers.CharField(allow_null=True, help_text="approve, reject, edit or answer; null while pending.")
    response = serializers.JSONField(allow_null=True, help_text="The edited arguments, the answer, the message.")
    resolvedBy = serializers.CharField(allow_null=True, help_text="Who decided: key:<prefix>, user:<name>, timeout.")
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True)
    resolvedAt = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Interrupt) -> dict:
        return describe(instance)


class InterruptItemSerializer(InterruptSerializer):
    """An interrupt of ``GET /api/interrupts``: with what its top-level run runs."""

    target = serializers.CharField(help_text="The id of the agent, star or workflow of the top-level run.")
    runKind = serializers.CharField(help_text="The kind of the top-level run (agent, star, workflow, ...).")

    def to_representation(self, instance: Interrupt) -> dict:
        root = instance.root_run  # select_related by the view: no query per row
        return {**describe(instance), "target": root.target, "runKind": root.kind}


class ResumeSerializer(serializers.Serializer):
    """Body of ``POST /api/runs/{id}/resume``."""

    interrupt_id = serializers.UUIDField(
        required=False, help_text="The interrupt to resolve; may be left out when the run waits for exactly one."
    )
    decision = serializers.ChoiceField(
        choices=(APPROVE, REJECT, EDIT, ANSWER), help_text="approve, reject or edit an approval; answer a question."
    )
    arguments = serializers.DictField(
        required=False, help_text="With edit: the arguments to run the tool with instead."
    )
    answer = serializers.JSONField(required=False, help_text="With answer: the answer (checked against its schema).")
    message = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, help_text="Why, for the model (and the record)."
    )

    def get_initial(self) -> dict:
        return {"decision": APPROVE}  # the browsable API's form: a body the endpoint accepts


class RunListSerializer(serializers.ListSerializer):
    """A page of runs: the interrupts of all of them are read in one query, and their totals in
    one query a level of children, not one per run."""

    def to_representation(self, data: Any) -> list[dict]:
        runs = list(data.all() if hasattr(data, "all") else data)
        self.child.interrupts_by_run = interrupts_of(runs)
        self.child.totals_by_run = costs.tree_usage(runs)
        try:
            return [self.child.to_representation(run) for run in runs]
        finally:
            self.child.interrupts_by_run = None
            self.child.totals_by_run = None


class RunTotalSerializer(serializers.Serializer):
    """A run and every run below it (a star's members, a workflow's steps, their children)."""

    runs = serializers.IntegerField(help_text="How many runs the sums cover, the run itself included.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="USD.")


class RunSerializer(FastReadMixin, serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    interrupts = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    total = serializers.SerializerMethodField()

    # Filled by ``RunListSerializer`` for the page being rendered.
    interrupts_by_run: dict[str, list[Interrupt]] | None = None
    totals_by_run: dict[str, dict] | None = None

    class Meta:
        model = Run
        fields = (
            "id",
            "kind",
            "target",
            "revision",
            "origin",
            "status",
            "parent",
            "session",
            "input",
            "metadata",
            "output",
            "error",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost",
            "cost_unpriced",
            "provider",
            "model",
            "total",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "caller",
            "idempotency_key",
            "worker_id",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
            "duration_seconds",
            "interrupts",
            "links",
        )
        read_only_fields = fields
        list_serializer_class = RunListSerializer

    @extend_schema_field(InterruptSerializer(many=True))
    def get_interrupts(self, run: Run) -> list[dict]:
        """Every interrupt of the run (as the top-level run), oldest first: pending and resolved."""
        found = self.interrupts_by_run
        if found is None and getattr(run, "has_interrupts", None) is False:
            return []  # read with the row (cosmos.services.runs.with_tree_flags)
        rows = found[str(run.pk)] if found is not None and str(run.pk) in found else interrupts_of([run])[str(run.pk)]
        return [describe(interrupt) for interrupt in rows]

    @extend_schema_field(RunTotalSerializer)
    def get_total(self, run: Run) -> dict:
        """The run's own figures plus its children's, all the way down (its own alone when it has none)."""
        found = self.totals_by_run
        if found is not None and str(run.pk) in found:
            totals = found
        else:
            totals = costs.tree_usage([run], childless=getattr(run, "has_children", None) is False)
        return RunTotalSerializer(totals[str(run.pk)]).data

    @extend_schema_field(RunLinksSerializer)
    def get_links(self, run: Run) -> dict:
        return run_links(self.context.get("request"), run.pk)


class RunRequestSerializer(serializers.Serializer):
    """Body of ``POST .../run`` and ``.../execute``."""

    input = serializers.JSONField(required=False, help_text="The input: text, or a JSON object.")
    message = serializers.JSONField(required=False, help_text="Same as input (the seed's name).")
    messages = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="A full conversation instead of one input."
    )
    session_id = serializers.CharField(
        required=False, allow_null=True, min_length=1, max_length=128, help_text="Continue (or start) this session."
    )
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Answer with the SSE stream of the run's events."
    )
    metadata = serializers.DictField(required=False, allow_null=True, help_text="Kept on the run, passed to tools.")
    revision = serializers.IntegerField(
        required=False, min_value=1, help_text="Run this revision of the definition (default: the latest)."
    )

    def get_initial(self) -> dict:
        # The browsable API's raw-data form starts from this: a body the endpoint accepts as it is
        # (each field's own blank value would be a null input and an empty session id).
        return {"input": "Hello", "stream": False}

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("input", "message", "messages") if name in attrs]
        if not given:
            raise serializers.ValidationError({"input": "Give 'input' (or 'message') text, or a 'messages' list."})
        if "input" in attrs and "message" in attrs:
            raise serializers.ValidationError({"input": "Give 'input' or 'message', not both."})
        return attrs

    def run_input(self) -> Any:
        data = self.validated_data
        if "messages" in data and "input" not in data and "message" not in data:
            return {"messages": data["messages"]}
        raw: dict[str, Any] = {"message": data.get("input", data.get("message"))}
        if "messages" in data:
            raw["messages"] = data["messages"]
        return raw


class AgentStatusSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=("idle", "busy"))
    active_runs = serializers.ListField(child=serializers.CharField())
    total_runs = serializers.IntegerField()
    total_errors = serializers.IntegerField()
    total_tokens = serializers.IntegerField(help_text="Input, cached input and output tokens of its runs.")
    total_cost = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="USD, from the price table.")
    last_activity = serializers.DateTimeField(allow_null=True)


class StarMessageSerializer(serializers.Serializer):
    """One message between members of a star run (``stars.services.message_dict``)."""

    id = serializers.IntegerField()
    star = serializers.CharField()
    run = serializers.CharField(allow_null=True)
    sender = serializers.CharField(source="from", help_text="The member who spoke.")
    recipient = serializers.CharField(source="to", help_text="A member name, or '*' for everyone.")
    content = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # The wire keys are "from" and "to", as in the seed (Python keywords as field names).
        data["from"], data["to"] = data.pop("sender"), data.pop("recipient")
        return data


class MemberSerializer(serializers.Serializer):
    """A star member (``stars.services.member_dict``)."""

    name = serializers.CharField()
    agent_id = serializers.CharField()
    agent_name = serializers.CharField()
    agent_enabled = serializers.BooleanField()
    role = serializers.ChoiceField(choices=Role.choices)
    order = serializers.IntegerField()
    description = serializers.CharField(allow_blank=True)
    notes = serializers.CharField(allow_blank=True)
    status = serializers.CharField(help_text="idle, or busy while it works in a star run.")
    active_runs = serializers.ListField(child=serializers.CharField())
    joined_at = serializers.DateTimeField(allow_null=True)


class JoinSerializer(serializers.Serializer):
    agent_id = serializers.CharField(max_length=64, required=False, help_text="The agent id.")
    agent = serializers.CharField(max_length=64, required=False, write_only=True, help_text="Same as agent_id.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.WORKER)
    name = serializers.CharField(
        required=False, max_length=64, help_text="The member's name; defaults to the agent id."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    order = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)

    def validate(self, attrs: dict) -> dict:
        agent = attrs.pop("agent", None)
        attrs["agent_id"] = attrs.get("agent_id") or agent
        if not attrs["agent_id"]:
            raise serializers.ValidationError({"agent_id": "Give the 'agent_id' of the agent that joins."})
        return attrs


class LeaveSerializer(serializers.Serializer):
    agent_id = serializers.CharField(required=False, max_length=64, help_text="The agent id to remove.")
    agent = serializers.CharField(required=False, max_length=64, write_only=True, help_text="Same as agent_id.")
    name = serializers.CharField(required=False, max_length=64, help_text="Or the member name to remove.")

    def validate(self, attrs: dict) -> dict:
        agent = attrs.pop("agent", None)
        if agent and not attrs.get("agent_id"):
            attrs["agent_id"] = agent
        if bool(attrs.get("agent_id")) == bool(attrs.get("name")):
            raise serializers.ValidationError({"agent_id": "Give exactly one of 'agent_id' or the member 'name'."})
        return attrs


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="1, 2, 3, ... per run, no gaps.")
    type = serializers.CharField(help_text="The AG-UI event type.")
    event = serializers.JSONField(help_text="The AG-UI event, as sent on the stream.")


class EventPageSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    status = serializers.CharField(
        help_text="The run's status now (queued, running, interrupted, succeeded, failed, cancelled)."
    )
    last_seq = serializers.IntegerField(help_text="The seq of the last event in this page (or ?after when empty).")
    next = serializers.CharField(allow_null=True, help_text="The next page; null once the run is over and read.")
    results = EventSerializer(many=True)


class ToolSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    parameters = serializers.DictField(help_text="The JSON schema of the arguments.")
    timeout = serializers.FloatField(help_text="Seconds before a call is abandoned.")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=("ok", "degraded", "down"))
    name = serializers.CharField(required=False)
    version = serializers.CharField(required=False)
    mode = serializers.ChoiceField(choices=("embedded", "distributed"), required=False)
    interfaces = serializers.DictField(
        child=serializers.BooleanField(), required=False, help_text="The protocol doors served: a2a, agui, mcp."
    )
    failing = serializers.ListField(child=serializers.CharField(), required=False)
    checks = serializers.DictField(child=serializers.DictField(), required=False)


class APIRootSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    resources = serializers.DictField(child=serializers.CharField(), help_text="Every registered resource and its URL.")
    links = serializers.DictField(child=serializers.CharField())
