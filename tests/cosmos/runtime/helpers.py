"""Helpers shared by the runtime tests."""

from __future__ import annotations

from collections.abc import Iterable


class Recorder:
    """An emit that keeps every event, with a check that the AG-UI stream is well formed."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    async def __call__(self, event: dict) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, type_: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type_]


def assert_well_formed(events: Iterable[dict]) -> None:
    """Every START is closed by its END, content only inside, results only after the call closed."""
    open_text: str | None = None
    open_calls: set[str] = set()
    closed_calls: set[str] = set()
    seen_text: set[str] = set()
    for event in events:
        assert None not in event.values(), f"null in {event}"
        kind = event["type"]
        if kind == "TEXT_MESSAGE_START":
            assert open_text is None, "text message opened twice"
            assert not open_calls, "text message opened while a tool call is open"
            assert event["messageId"] not in seen_text, "message id reused"
            assert event["role"] == "assistant"
            open_text = event["messageId"]
            seen_text.add(open_text)
        elif kind == "TEXT_MESSAGE_CONTENT":
            assert event["messageId"] == open_text, "content outside its message"
            assert event["delta"], "empty delta"
        elif kind == "TEXT_MESSAGE_END":
            assert event["messageId"] == open_text, "END for a message that is not open"
            open_text = None
        elif kind == "TOOL_CALL_START":
            assert open_text is None, "tool call opened while a text message is open"
            assert event["toolCallId"] not in open_calls | closed_calls
            assert event["toolCallName"] and event["parentMessageId"]
            open_calls.add(event["toolCallId"])
        elif kind == "TOOL_CALL_ARGS":
            assert event["toolCallId"] in open_calls and event["delta"]
        elif kind == "TOOL_CALL_END":
            assert event["toolCallId"] in open_calls, "END for a call that is not open"
            open_calls.remove(event["toolCallId"])
            closed_calls.add(event["toolCallId"])
        elif kind == "TOOL_CALL_RESULT":
            assert event["toolCallId"] in closed_calls, "result before the call closed"
            assert event["role"] == "tool" and event["messageId"] and isinstance(event["content"], str)
        assert kind not in ("RUN_STARTED", "RUN_FINISHED", "RUN_ERROR"), "the loop must not own run boundaries"
    assert open_text is None, "text message left open"
    assert not open_calls, f"tool calls left open: {open_calls}"
