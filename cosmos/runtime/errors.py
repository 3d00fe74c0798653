"""Errors that end a run. The executor turns them into RUN_ERROR {code, message}."""

from __future__ import annotations

from typing import Any

# Stable codes: clients and the dashboard branch on these, so never rename one.
MODEL_AUTH = "model_auth"
MODEL_NOT_FOUND = "model_not_found"
MODEL_RATE_LIMITED = "model_rate_limited"
MODEL_UNAVAILABLE = "model_unavailable"
MODEL_TIMEOUT = "model_timeout"
MODEL_ERROR = "model_error"
MAX_TURNS_EXCEEDED = "max_turns_exceeded"
UNKNOWN_PROVIDER = "unknown_provider"
UNKNOWN_TOOL = "unknown_tool"


class RunFailed(Exception):
    """A run cannot go on. ``code`` is machine-readable, ``message`` is for humans (and ``str()``)."""

    def __init__(self, code: str, message: str, *, details: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.details = details
        # What the run's model calls used before it failed, set by the agent loop (see run_agent).
        self.usage: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class ModelError(RunFailed):
    """The model provider failed: auth, unknown model, rate limit, outage, timeout, or a bad reply."""
