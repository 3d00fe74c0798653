"""Cosmos models: agent definitions, sessions, and the durable run log.

A ``Run`` is every execution (agent, star, workflow, and their children); a ``RunEvent`` is
one AG-UI event of a run with a gapless ``seq``. Status transitions are conditional UPDATEs
done in ``cosmos.services.runs`` and ``cosmos.services.leases``; nothing else writes ``Run.status``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .kinds import kind_choices
from .secrets import reference_problem, reference_status
from .validators import base_url_problem, slug_id_validator

# The currency of ModelPrice and Run.cost (and of API keys' cost quotas).
PRICE_CURRENCY = "USD"


class Source(models.TextChoices):
    DATABASE = "database", "Database"
    CODE = "code", "Code"


class Definition(models.Model):
    """Fields shared by everything a user registers: agents, stars and workflows."""

    id = models.SlugField(primary_key=True, max_length=64, validators=[slug_id_validator])
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DATABASE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name or self.id

    def save(self, *args, **kwargs):
        if not self.name:
            self.name = self.id
        super().save(*args, **kwargs)


def _model_problem(provider: str, model: str) -> str | None:
    """Why a registered provider (e.g. ``a2a``) refuses this model name, or None."""
    from .runtime.providers import model_problem

    return model_problem(provider, model) if provider else None


def _validate_provider_and_tools(provider: str, tools: object, errors: dict) -> None:
    from .runtime.providers import provider_names
    from .runtime.tools import tool_registry

    if provider and provider not in provider_names():
        errors["provider"] = f"Unknown provider {provider!r}; choose one of {', '.join(sorted(provider_names()))}."
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        errors["tools"] = 'Tools must be a list of tool names, e.g. ["calculator"].'
        return
    unknown = [t for t in tools if t not in tool_registry]
    if unknown:
        errors["tools"] = f"Unknown tool(s): {', '.join(unknown)}. Known tools: {', '.join(tool_registry.names())}."
    if len(set(tools)) != len(tools):
        errors["tools"] = "A tool is listed twice."


# Providers that call a real model API: they need a model name.
REAL_PROVIDERS = frozenset({"anthropic", "openai"})

BASE_URL_HELP = (
    "The model API's address, for a gateway or an OpenAI-compatible server "
    "(Ollama: http://localhost:11434/v1). Empty: ANTHROPIC_BASE_URL / OPENAI_BASE_URL, else the provider's own."
)
API_KEY_HELP = (
    "A reference, never the key itself: env:NAME, where NAME starts with ASTEROS_SECRET_ or is listed in "
    "ASTEROS_SECRET_ENV; read by the worker at each run. Empty: ANTHROPIC_API_KEY / OPENAI_API_KEY "
    "(a local server with a base URL needs no key)."
)


def _connection_problems(base_url: str, api_key: str, errors: dict) -> None:
    """The base URL and the API key reference, as agents and templates check them."""
    if problem := base_url_problem(base_url):
        errors["base_url"] = problem
    if problem := reference_problem(api_key):
        errors["api_key"] = problem


def _model_rule_problem(provider: str, model: str, *, require: bool) -> str | None:
    """A real provider needs a model (``require``: an agent, after merging with its template);
    ``scripted`` knows only its own model; a registered provider checks its own names."""
    from .runtime.providers.scripted import MODEL_NAME

    if provider in REAL_PROVIDERS:
        if require and not model:
            return f"The {provider} provider needs a model name (here or on the template)."
        return None
    if provider == "scripted":
        if model and model != MODEL_NAME:
            return f"The scripted provider's only model is {MODEL_NAME!r} (or leave it empty)."
        return None
    return _model_problem(provider, model)


def _approvals_problem(approvals: object) -> str | None:
    from .runtime.interrupts import check_rule

    if not isinstance(approvals, dict):
        return 'Approvals must be a JSON object of tool name -> rule, e.g. {"refund": "amount > 100"}.'
    for name, rule in approvals.items():
        if problem := check_rule(rule):
            return f"{name}: {problem}"
    return None


class AgentTemplate(models.Model):
    """Reusable defaults for agents: a system prompt, model settings and tools."""

    id = models.SlugField(primary_key=True, max_length=64, validators=[slug_id_validator])
    name = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    provider = models.CharField(max_length=32, blank=True, help_text="anthropic, openai or scripted")
    model = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="temperature, max_tokens, ...")
    tools = models.JSONField(default=list, blank=True)
    base_url = models.CharField("base URL", max_length=500, blank=True, help_text=BASE_URL_HELP)
    api_key = models.CharField("API key reference", max_length=200, blank=True, help_text=API_KEY_HELP)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name or self.id

    def clean(self) -> None:
        errors: dict[str, str] = {}
        _validate_provider_and_tools(self.provider, self.tools, errors)
        # A template may leave the model for its agents to name.
        if (
            "provider" not in errors
            and self.model
            and (problem := _model_rule_problem(self.provider, self.model, require=False))
        ):
            errors["model"] = problem
        _connection_problems(self.base_url, self.api_key, errors)
        if not isinstance(self.parameters, dict):
            errors["parameters"] = "Parameters must be a JSON object."
        if errors:
            raise ValidationError(errors)

    @property
    def api_key_status(self) -> str:
        """Whether this process resolves the key reference: none, set, not set or refused."""
        return reference_status(self.api_key)


class Agent(Definition):
    """An agent definition: its template merged with these overrides gives the runtime agent."""

    template = models.ForeignKey(AgentTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="agents")
    system_prompt = models.TextField(blank=True, help_text="Overrides the template's prompt when set.")
    provider = models.CharField(max_length=32, blank=True, help_text="Overrides the template's provider.")
    model = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(default=list, blank=True, help_text="Tool names, added to the template's.")
    base_url = models.CharField(
        "base URL", max_length=500, blank=True, help_text=f"Overrides the template's. {BASE_URL_HELP}"
    )
    api_key = models.CharField(
        "API key reference", max_length=200, blank=True, help_text=f"Overrides the template's. {API_KEY_HELP}"
    )
    metadata = models.JSONField(default=dict, blank=True)
    approvals = models.JSONField(
        default=dict,
        blank=True,
        help_text='Tool name -> "never", "always" or a rule over its arguments, e.g. {"refund": "amount > 100"}.',
    )
    interrupt_timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long an approval or a question waits for a person; empty: forever."
    )
    on_interrupt_timeout = models.CharField(
        max_length=16,
        choices=[("reject", "Reject"), ("approve", "Approve")],
        default="reject",
        help_text="What an approval becomes when nobody answers in time (a question is left unanswered).",
    )

    class Meta(Definition.Meta):
        pass

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            template = self.template if self.template_id else None
        except AgentTemplate.DoesNotExist:  # reported by the field's own check
            template = None
        model = self.model or (template.model if template else "")
        provider = self.provider or (template.provider if template else "")
        _validate_provider_and_tools(self.provider, self.tools, errors)
        if "provider" not in errors and provider and (problem := _model_rule_problem(provider, model, require=True)):
            errors["model"] = problem
        _connection_problems(self.base_url, self.api_key, errors)
        if not isinstance(self.parameters, dict):
            errors["parameters"] = "Parameters must be a JSON object."
        if not isinstance(self.metadata, dict):
            errors["metadata"] = "Metadata must be a JSON object."
        if problem := _approvals_problem(self.approvals):
            errors["approvals"] = problem
        if not self.provider and not (template and template.provider):
            errors.setdefault("provider", "Set a provider here or on the template.")
        if errors:
            raise ValidationError(errors)

    @property
    def api_key_status(self) -> str:
        """Whether this process resolves the key reference the agent runs with (its own, else its
        template's): none, set, not set or refused."""
        if self.api_key or not self.template_id:
            return reference_status(self.api_key)
        return reference_status(self.template.api_key)


class SessionPolicy(models.TextChoices):
    ENQUEUE = "enqueue", "Enqueue after the active run"
    REJECT = "reject", "Reject while a run is active"
    INTERRUPT = "interrupt", "Cancel the active run, then start"


class Session(models.Model):
    """A conversation thread: message history and AG-UI state carried across runs."""

    id = models.CharField(primary_key=True, max_length=128)
    kind = models.CharField(max_length=16, blank=True)
    target = models.CharField(max_length=64, blank=True)
    messages = models.JSONField(default=list, blank=True)
    state = models.JSONField(default=dict, blank=True)
    policy = models.CharField(max_length=16, choices=SessionPolicy.choices, default=SessionPolicy.ENQUEUE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-updated_at",)

    def __str__(self) -> str:
        return self.id


# The run kind of an agent (``Run.kind``), registered in ``CosmosConfig.ready()``. Every kind is
# in the catalogue (``cosmos.kinds``): each app registers its own.
AGENT_KIND = "agent"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Waiting for a person (an approval or a question): no worker, no lease, a row only.
    INTERRUPTED = "interrupted", "Interrupted"


TERMINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
# Not finished yet: a later run of the session waits for these, and they can be cancelled.
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.INTERRUPTED)
# Waiting for or holding a worker: what a concurrency quota counts.
EXECUTING_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """Every UPDATE of runs (claim, renew, finish, cancel, reap, requeue) sets ``updated_at``:
        a queryset ``update()`` bypasses ``auto_now``, and status changes are all conditional
        updates, so this is the one place that keeps the column true."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Run(models.Model):
    """One execution. Its status moves forward: queued -> running -> a terminal status, with
    running -> interrupted -> queued while a person decides."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The choices are the catalogue, read each time they are used (forms, the admin's list filter,
    # ``?kind=`` on the API): a kind an app registers needs no migration here.
    kind = models.CharField(max_length=16, choices=kind_choices)
    target = models.CharField(max_length=64, help_text="The agent, star or workflow id.")
    origin = models.CharField(
        max_length=16, default="api", help_text="api, a2a, agui, mcp, cli, admin, schedule, star, workflow"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    input = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    # Tokens as the model APIs bill them: input is the prompts' uncached part; the cached part
    # is read from (cache_read) or written to (cache_write) the provider's prompt cache.
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    # What the run's own model calls cost, priced by ModelPrice when the usage was recorded (USD).
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=Decimal(0))
    cost_unpriced = models.BooleanField(
        default=False, help_text="The run used a model the price table has no price for: its cost counts 0."
    )
    provider = models.CharField(max_length=32, blank=True, help_text="The model provider of the run's calls.")
    model = models.CharField(max_length=200, blank=True, help_text="The model of the run's calls.")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    worker_id = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # NULL, not "", means "no key": the unique constraint below only applies to real keys.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    caller = models.CharField(max_length=200, blank=True, help_text="Who asked: an API key prefix or a user.")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="Last time a task was sent to the broker.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Where an interrupted run resumes: the runtime's checkpoint of its last pause.
    checkpoint = models.JSONField(null=True, blank=True, editable=False)
    # The W3C trace context of the request that started the run ({"traceparent": ...}), so the
    # worker's run span joins the request's trace across the broker hop. Empty when tracing is off.
    trace_context = models.JSONField(default=dict, blank=True, editable=False)
    # The revision of the definition the run executes (cosmos.services.revisions): pinned when
    # the run is accepted, so an edit never changes a run in flight. NULL for runs from before
    # revisions existed and for kinds that keep none.
    revision = models.PositiveIntegerField(null=True, blank=True, editable=False)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_idempotency_per_caller",
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "target", "status"]),
            # A caller's active runs and its tokens since midnight (per-API-key quotas).
            models.Index(fields=["caller", "status", "finished_at"], name="run_caller_status_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.target} {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RunEvent(models.Model):
    """One AG-UI event of a run. ``seq`` is 1, 2, 3, ... per run with no gaps."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("run", "seq")
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"


class WorkerHeartbeat(models.Model):
    """Workers seen recently, for /health and the dashboard."""

    worker_id = models.CharField(primary_key=True, max_length=200)
    mode = models.CharField(max_length=16)
    active_runs = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id


class InterruptKind(models.TextChoices):
    APPROVAL = "approval", "Approval"
    QUESTION = "question", "Question"


class InterruptStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    ANSWERED = "answered", "Answered"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class Interrupt(models.Model):
    """One pause of a run for a person: a tool call to approve, or a question to answer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="interrupts")
    # The top-level run a person sees (the run itself, or the star or workflow it belongs to).
    root_run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=InterruptKind.choices)
    request = models.JSONField(help_text="The tool call (tool, arguments) or the question (question, schema).")
    status = models.CharField(
        max_length=16, choices=InterruptStatus.choices, default=InterruptStatus.PENDING, db_index=True
    )
    decision = models.CharField(max_length=16, blank=True)
    response = models.JSONField(null=True, blank=True, help_text="Edited arguments, the answer, or a message.")
    resolved_by = models.CharField(max_length=200, blank=True)
    on_timeout = models.CharField(max_length=16, default="reject")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at",)
        indexes = [models.Index(fields=["status", "created_at"], name="interrupt_status_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def tool_call_id(self) -> str:
        return str(self.request.get("toolCallId", ""))


class ModelPrice(models.Model):
    """What a model's tokens cost, per million, for the cost of runs (cosmos.services.costs).

    ``model`` is a model name, or a prefix ending in ``*`` (``claude-sonnet-4*``); an exact name
    wins over a prefix, and a longer prefix over a shorter one. A run is priced once, when its
    usage is recorded: editing a price changes the runs that follow, never the past.
    """

    provider = models.CharField(max_length=32, help_text="anthropic, openai, scripted, ...")
    model = models.CharField(
        max_length=200, help_text='A model name, or a prefix ending in "*" (e.g. claude-sonnet-4*; "*" alone: any).'
    )
    input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)], help_text="Uncached input tokens."
    )
    output_per_million = models.DecimalField(max_digits=12, decimal_places=6, validators=[MinValueValidator(0)])
    cache_read_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)], help_text="Prompt tokens read from cache."
    )
    cache_write_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)], help_text="Prompt tokens written to cache."
    )
    currency = models.CharField(
        max_length=3,
        default=PRICE_CURRENCY,
        choices=[(PRICE_CURRENCY, PRICE_CURRENCY)],
        help_text="Costs are summed in one currency: USD.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("provider", "model")
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="model_price_unique")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def is_prefix(self) -> bool:
        return self.model.endswith("*")

    def matches(self, model: str) -> bool:
        return model.startswith(self.model[:-1]) if self.is_prefix else model == self.model


class Revision(models.Model):
    """One saved state of a definition (agent, template, star, workflow): immutable.

    Written by ``cosmos.services.revisions`` when a save changes the definition; numbered 1, 2, 3,
    … per definition. A run executes the revision it recorded when it was accepted. Revisions
    outlive their definition: a deleted agent's runs in flight still find theirs.
    """

    resource = models.CharField(max_length=16, help_text="agent, template, star or workflow")
    target = models.CharField(max_length=64, help_text="The definition's id.")
    number = models.PositiveIntegerField()
    author = models.CharField(max_length=200, blank=True, help_text="Who saved it: user:NAME, an API key, code.")
    note = models.CharField(max_length=200, blank=True, help_text="Why, when not an edit: restored from 3, …")
    definition = models.JSONField(help_text="The whole definition as it was saved.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("resource", "target", "-number")
        constraints = [
            models.UniqueConstraint(fields=["resource", "target", "number"], name="revision_number_once"),
        ]

    def __str__(self) -> str:
        return f"{self.resource}:{self.target} revision {self.number}"
