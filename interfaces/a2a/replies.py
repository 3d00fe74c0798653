"""A message to an input-required task, read as the decisions it carries (no database here).

A task is input-required while its run waits for people (``cosmos.services.interrupts``). The
message that answers names the task (``taskId``) and says, for each pending interrupt:

- in a ``data`` part, ``{"decision": "approve"|"reject"|"edit"|"answer", "arguments"?,
  "answer"?, "message"?, "interruptId"?}``; ``interruptId`` may be left out while one interrupt
  waits. For a question, a ``data`` part without ``decision`` is the answer itself.
- in text: for a question, the text is the answer (read as JSON when the question's schema asks
  for something other than a string); for an approval, a text that starts with yes, y, ok,
  approve(d) approves and one that starts with no, n, reject(ed), deny approves nothing, the
  rest of the text being the reviewer's message. Text needs exactly one pending interrupt.

Whether a decision fits its interrupt (``edit`` without arguments, an answer against the
schema) is left to ``cosmos.services.interrupts.resolve``, the one judge for every door.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cosmos.runtime.interrupts import ANSWER, APPROVAL, APPROVE, DECISIONS, QUESTION, REJECT
from interfaces.a2a.errors import InvalidParamsError
from interfaces.a2a.protocol import IncomingMessage

_YES = re.compile(r"^\s*(?:yes|y|ok|okay|approve|approved)\b[\s,.:;!-]*(.*)$", re.IGNORECASE | re.DOTALL)
_NO = re.compile(r"^\s*(?:no|n|reject|rejected|deny|denied)\b[\s,.:;!-]*(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Pending:
    """A pending interrupt, as the reply is read against it."""

    id: str
    kind: str
    request: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One decision for ``resolve``."""

    interrupt_id: str
    decision: str
    arguments: Any = None
    answer: Any = None
    message: str = ""


def read_reply(message: IncomingMessage, pending: list[Pending]) -> list[Reply]:
    """The decisions in ``message``, one per interrupt it names; InvalidParams when unreadable."""
    data = [(index, part["data"]) for index, part in enumerate(message.parts) if "data" in part]
    texts = [part["text"] for part in message.parts if "text" in part and part["text"].strip()]
    decided = [(index, value) for index, value in data if isinstance(value, dict) and "decision" in value]
    if decided:
        replies = [_structured(value, index, pending) for index, value in decided]
        named = [reply.interrupt_id for reply in replies]
        if len(set(named)) != len(named):
            raise _invalid("Each interrupt takes one decision per message.", "message.parts", "one decision each")
        return replies
    only = _only(pending, "message.parts")
    if data:
        index, value = data[0]
        if only.kind != QUESTION:
            raise _invalid(
                'Approve or reject with a data part {"decision": "approve"} (or "reject", "edit"), '
                "or a text part yes or no.",
                f"message.parts[{index}].data",
                "needs a decision",
            )
        return [Reply(only.id, ANSWER, answer=value)]
    text = "\n\n".join(texts)
    if not text:
        raise _invalid("The reply is empty: send a text or data part.", "message.parts", "no text or data content")
    if only.kind == APPROVAL:
        return [_approval_text(only, text)]
    return [Reply(only.id, ANSWER, answer=_answer_text(only, text))]


def _structured(value: dict[str, Any], index: int, pending: list[Pending]) -> Reply:
    where = f"message.parts[{index}].data"
    decision = value.get("decision")
    if not isinstance(decision, str) or not decision:
        raise _invalid("'decision' must be a string: approve, reject, edit or answer.", f"{where}.decision", "string")
    interrupt_id = value.get("interruptId")
    if interrupt_id is None:
        target = _only(pending, f"{where}.interruptId")
    else:
        target = next((p for p in pending if p.id == str(interrupt_id)), None)
        if target is None:
            raise _invalid(
                f"Interrupt {interrupt_id!r} is not pending on this task; pending: "
                f"{', '.join(p.id for p in pending) or 'none'}.",
                f"{where}.interruptId",
                "not a pending interrupt of this task",
            )
    message = value.get("message")
    if message is not None and not isinstance(message, str):
        raise _invalid("'message' must be text.", f"{where}.message", "string")
    allowed = DECISIONS.get(target.kind, ())
    if decision not in allowed:
        # Checked before anything is resolved, so a reply for several interrupts is all or nothing here.
        raise _invalid(
            f"A {target.kind} takes one of {', '.join(allowed)}, not {decision!r}.",
            f"{where}.decision",
            f"one of {', '.join(allowed)}",
        )
    arguments, answer = value.get("arguments"), value.get("answer")
    return Reply(target.id, decision, arguments=arguments, answer=answer, message=message or "")


def _only(pending: list[Pending], field: str) -> Pending:
    if len(pending) != 1:
        ids = ", ".join(p.id for p in pending)
        raise _invalid(
            f"{len(pending)} interrupts wait on this task ({ids}): send one data part per interrupt, "
            'each with its "interruptId" and "decision".',
            field,
            "name the interrupt",
        )
    return pending[0]


def _approval_text(pending: Pending, text: str) -> Reply:
    if yes := _YES.match(text):
        return Reply(pending.id, APPROVE, message=yes.group(1).strip())
    if no := _NO.match(text):
        return Reply(pending.id, REJECT, message=no.group(1).strip())
    raise _invalid(
        'Reply yes (approve) or no (reject), or send a data part {"decision": "approve"|"reject"|"edit"}.',
        "message.parts",
        "yes or no",
    )


def _answer_text(pending: Pending, text: str) -> Any:
    schema = pending.request.get("schema")
    if isinstance(schema, dict) and schema.get("type") not in (None, "string"):
        try:
            return json.loads(text)
        except ValueError:
            return text  # resolve says why it does not fit the schema
    return text


def _invalid(message: str, field: str, description: str) -> InvalidParamsError:
    return InvalidParamsError(message, field_violations=[(field, description)])
