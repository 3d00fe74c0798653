"""A tool that writes a line to a file each time it runs, to count calls across processes.

A worker process registers it with ``celery worker -I tests.reliability.recorded_tool``
(``WorkerProcess(include=...)``); the test process imports it too, so an agent may name it.
The file is ``$ASTEROS_TEST_TOOL_LOG``; each line is the JSON of one call (the process, the
arguments).
"""

from __future__ import annotations

import json
import os

from cosmos.runtime.tools import tool

LOG_VARIABLE = "ASTEROS_TEST_TOOL_LOG"
NAME = "record_call"


@tool(name=NAME)
def record_call(note: str) -> str:
    """Record that this call ran, and say so.

    Args:
        note: What to record.
    """
    with open(os.environ[LOG_VARIABLE], "a", encoding="utf-8") as log:
        log.write(json.dumps({"pid": os.getpid(), "note": note}) + "\n")
    return f"recorded {note}"


def recorded_calls(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as log:
            return [json.loads(line) for line in log if line.strip()]
    except FileNotFoundError:
        return []
