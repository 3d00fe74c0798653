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
