"""Remote A2A agents declared in the admin: each becomes a tool named after it (``declared.py``).

No secret is stored: ``auth_secret`` is a reference (``env:NAME``, see ``cosmos.secrets``) to an
environment variable that holds the token, read in the process that calls the remote agent (API
and worker processes alike).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from cosmos.secrets import reference_problem, reference_status

# What the model APIs accept as a function name (Anthropic and OpenAI alike).
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
DEFAULT_AUTH_HEADER = "Authorization"

tool_name_validator = RegexValidator(
    TOOL_NAME,
    "A tool name: a letter, then letters, digits, '_' or '-' (at most 64 characters).",
    code="invalid_tool_name",
)


class Binding(models.TextChoices):
    # The protocol bindings of an A2A card (interfaces.a2a.cards.JSONRPC and HTTP_JSON).
    ANY = "", "As the card prefers (JSON-RPC, then HTTP+JSON)"
    JSONRPC = "JSONRPC", "JSON-RPC"
    HTTP_JSON = "HTTP+JSON", "HTTP+JSON"


class RemoteAgent(models.Model):
    """A remote A2A 1.0 agent that our agents can call as a tool, or use as their model."""

    name = models.CharField(
        primary_key=True,
        max_length=64,
        validators=[tool_name_validator],
        help_text="The tool's name (what agents list in their tools, or the model of an a2a agent).",
    )
    url = models.URLField(
        "URL",
        max_length=500,
        help_text="The agent's A2A base URL, or its card's URL (ending in .json).",
    )
    description = models.TextField(
        blank=True, help_text="What the model is told the tool does. Empty: the card's description."
    )
    enabled = models.BooleanField(default=True, help_text="A disabled remote agent is no tool at all.")
    auth_secret = models.CharField(
        "token reference",
        max_length=110,
        blank=True,
        help_text="A reference to the token, never the token itself: env:NAME, where the environment variable "
        "NAME starts with ASTEROS_SECRET_ (or is listed in ASTEROS_SECRET_ENV). Empty: no auth.",
    )
    auth_header = models.CharField(
        max_length=100,
        default=DEFAULT_AUTH_HEADER,
        help_text='The header that carries the token: "Authorization" sends "Bearer <token>", any other '
        "header (e.g. X-API-Key) the token as it is.",
    )
    binding = models.CharField(max_length=16, choices=Binding.choices, default=Binding.ANY, blank=True)
    timeout = models.FloatField(default=300.0, help_text="Seconds a call may take, its whole stream included.")
    card_name = models.CharField(max_length=200, blank=True, editable=False)
    card_description = models.TextField(blank=True, editable=False)
    card_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    card_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "interfaces_remoteagent"  # the table kept its name when the model moved here from interfaces
        verbose_name = "remote A2A agent"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def tool_description(self) -> str:
        return self.description or self.card_description or f"Ask the remote A2A agent at {self.url}."

    @property
    def auth_secret_status(self) -> str:
        """Whether this process can resolve the token reference: none, set, not set or refused."""
        return reference_status(self.auth_secret)

    def clean(self) -> None:
        from cosmos.runtime.tools import tool_registry

        errors: dict[str, str] = {}
        if self.name and tool_registry.get(self.name, resolve=False) is not None:
            errors["name"] = f"{self.name!r} is the name of a tool registered from code; choose another."
        url_problem = _url_problem(self.url)
        if url_problem:
            errors["url"] = url_problem
        secret_problem = reference_problem(self.auth_secret)
        if secret_problem:
            errors["auth_secret"] = secret_problem
        if not HEADER_NAME.match(self.auth_header or ""):
            errors["auth_header"] = "A header name such as Authorization or X-API-Key."
        if self.timeout is not None and not 0 < self.timeout <= 3600:
            errors["timeout"] = "Seconds, more than 0 and at most 3600."
        if errors:
            raise ValidationError(errors)


def _url_problem(url: str) -> str | None:
    if not url:
        return None  # the field's own check says it is required
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An http:// or https:// URL with a host."
    if parts.username or parts.password:
        return "No credentials in the URL: put the token in an environment variable and reference it below."
    if parts.fragment:
        return "No #fragment: the agent's base URL, or its card's URL."
    return None


# ---------------------------------------------------------------------------------------------
# MCP servers: their tools join the catalogue as ``mcp:<server>/<tool>`` (``mcp_tools.py``)

# Short, so that ``mcp__<server>__<tool>`` (the name the model sees) fits the model APIs' 64.
MCP_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

mcp_server_name_validator = RegexValidator(
    MCP_SERVER_NAME,
    "A server name: lower-case letters, digits, '_' or '-', starting with a letter or digit (at most 32).",
    code="invalid_mcp_server_name",
)


class MCPTransport(models.TextChoices):
    HTTP = "http", "Streamable HTTP (a URL)"
    # Only commands the operator listed in ASTEROS_MCP_STDIO_COMMANDS, by name; never from the API.
    STDIO = "stdio", "stdio (a command listed in ASTEROS_MCP_STDIO_COMMANDS)"


class MCPServer(models.Model):
    """An MCP server whose tools our agents may use (``mcp:<name>/<tool>`` or ``mcp:<name>/*``)."""

    name = models.CharField(
        primary_key=True,
        max_length=32,
        validators=[mcp_server_name_validator],
        help_text="Agents list this server's tools as mcp:<name>/<tool>, or all of them as mcp:<name>/*.",
    )
    description = models.TextField(blank=True, help_text="What this server is for (for people; not sent anywhere).")
    transport = models.CharField(max_length=8, choices=MCPTransport.choices, default=MCPTransport.HTTP)
    url = models.URLField(
        "URL", max_length=500, blank=True, help_text="The server's Streamable HTTP endpoint (transport http)."
    )
    command = models.CharField(
        max_length=64,
        blank=True,
        help_text="The name of a command listed in ASTEROS_MCP_STDIO_COMMANDS (transport stdio). "
        "A command line is never stored here.",
    )
    headers = models.JSONField(
        default=dict,
        blank=True,
        help_text='Headers sent with every request, each value a reference, never a value: {"Authorization": '
        '"env:ASTEROS_SECRET_GITHUB"}. "Authorization" sends "Bearer <token>"; other headers the value as it is.',
    )
    call_timeout = models.FloatField(default=60.0, help_text="Seconds one tool call may take.")
    connect_timeout = models.FloatField(
        default=10.0, help_text="Seconds to connect and to list the tools (the list is cached for a short time)."
    )
    requires_approval = models.CharField(
        max_length=500,
        default="never",
        help_text='Whether a person approves each call of this server\'s tools: "never", "always" or a rule '
        'over the arguments such as "amount > 100". An agent\'s own approvals win.',
    )
    tool_approvals = models.JSONField(
        default=dict,
        blank=True,
        help_text='Rules for single tools, by the server\'s tool name: {"delete_file": "always"}. '
        "They win over the rule above.",
    )
    enabled = models.BooleanField(default=True, help_text="A disabled server offers no tools.")
    # The last tool list read from the server (used while it is unreachable), and how that went.
    tools_snapshot = models.JSONField(default=list, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP server"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def header_status(self) -> dict[str, str]:
        """Whether this process resolves each header's reference: none, set, not set or refused."""
        return {name: reference_status(ref) for name, ref in (self.headers or {}).items()}

    def clean(self) -> None:
        from cosmos.runtime.interrupts import check_rule

        errors: dict[str, str] = {}
        if self.transport == MCPTransport.HTTP:
            if not self.url:
                errors["url"] = "A Streamable HTTP server needs its URL."
            elif problem := _url_problem(self.url):
                errors["url"] = problem
            if self.command:
                errors["command"] = "Only a stdio server has a command."
        elif self.transport == MCPTransport.STDIO:
            if self.url:
                errors["url"] = "A stdio server has no URL."
            if problem := stdio_command_problem(self.command):
                errors["command"] = problem
        if problem := _headers_problem(self.headers):
            errors["headers"] = problem
        for field in ("call_timeout", "connect_timeout"):
            value = getattr(self, field)
            if value is not None and not 0 < value <= 3600:
                errors[field] = "Seconds, more than 0 and at most 3600."
        if problem := check_rule(self.requires_approval or "never"):
            errors["requires_approval"] = problem
        if not isinstance(self.tool_approvals, dict) or not all(isinstance(k, str) for k in self.tool_approvals):
            errors["tool_approvals"] = 'A JSON object of tool name -> rule, e.g. {"delete_file": "always"}.'
        else:
            for tool, rule in self.tool_approvals.items():
                if problem := check_rule(rule):
                    errors["tool_approvals"] = f"{tool}: {problem}"
                    break
        if errors:
            raise ValidationError(errors)


def stdio_commands() -> dict[str, list[str]]:
    """The stdio commands the operator allowed (``ASTEROS_MCP_STDIO_COMMANDS``), by name."""
    from django.conf import settings

    return dict(settings.ASTEROS.mcp_stdio_commands)


def stdio_command_problem(name: str) -> str | None:
    allowed = stdio_commands()
    if not name:
        return f"Name one of the commands listed in ASTEROS_MCP_STDIO_COMMANDS ({', '.join(allowed) or 'none'})."
    if name not in allowed:
        return (
            f"{name!r} is not listed in ASTEROS_MCP_STDIO_COMMANDS "
            f"(listed: {', '.join(allowed) or 'none'}); an operator lists the commands a server may run."
        )
    return None


def _headers_problem(headers: object) -> str | None:
    if not isinstance(headers, dict):
        return 'A JSON object of header name -> reference, e.g. {"Authorization": "env:ASTEROS_SECRET_TOKEN"}.'
    for name, reference in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            return f"{name!r} is not a header name."
        if not isinstance(reference, str) or not reference:
            return f"{name}: a reference such as env:ASTEROS_SECRET_TOKEN."
        if problem := reference_problem(reference):
            return f"{name}: {problem}"
    return None
