"""Structured-logging context: the request id and run id on every log record."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("asteros_request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("asteros_run_id", default=None)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "run_id"):
            record.run_id = run_id_var.get()
        return True


class DropServerAccessLines(logging.Filter):
    """Drops a server's own line for a finished HTTP request (runserver logs it with the request's
    method and status as arguments): the ``asteros.access`` line already says it, with more."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, dict) and "method" in args and "status" in args)
