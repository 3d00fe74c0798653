"""An offline, deterministic model: no network, no key, reproducible output.

It exists for demos, tests and benchmarks. Its model name is "scripted-offline"; it never claims
to be a real model. Knobs come from the agent's parameters:

- ``ttft_ms``: delay before the first token; ``tokens_per_second``: pacing (0 = unlimited).
- ``reply``: reply template, ``{input}`` is the last user message; ``reply_tokens``: exactly N tokens.
- ``rules``: scripted tool calls, ``[{"when": regex, "call": tool, "arguments": {...}}]``. Every
  matching rule fires (several rules give parallel calls). Strings in ``arguments`` may use
  ``$match`` and ``$1``..``$9``; ``raw_arguments`` sends a raw (possibly invalid) JSON string;
  ``after_tool: true`` also fires after tool results (a model that never stops calling tools);
  ``if_offered: true`` fires only when the tool is offered (an agent that delegates as a star's
  leader and answers alone elsewhere). A rule with ``reply`` instead of ``call`` answers with that
  template (``$match``, ``$1``..``$9``) when no call fires; the first matching one wins.
  Without ``rules``: when the last user message holds an arithmetic expression and ``calculator``
  is offered, it calls ``calculator``. After tool results it answers with them.
- ``results_reply``: the answer after tool results, ``{results}`` their contents (one per line);
  without it, "The result is ...".
- ``fail`` (true or a message) with ``error_code``: fail the model call, for tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from ..errors import MODEL_ERROR, ModelError
from .base import Finish, ModelRequest, ProviderEvent, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage

MODEL_NAME = "scripted-offline"
DEFAULT_REPLY = "(offline scripted model) You said: {input}"

# At least two numbers joined by an operator, with optional signs and parentheses.
_NUMBER = r"\d+(?:\.\d+)?"
ARITHMETIC = re.compile(rf"(?:[-+(]\s*)*{_NUMBER}\s*\)*(?:\s*(?:\*\*|//|[-+*/%])\s*(?:[-+(]\s*)*{_NUMBER}\s*\)*)+")
_TOKEN = re.compile(r"\s*\S+")
_PLACEHOLDER = re.compile(r"\$(match|\d)")
_VOCABULARY = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


class ScriptedProvider:
    name = "scripted"

    def __repr__(self) -> str:
        return "<ScriptedProvider>"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        params = request.params
        if params.get("fail"):
            code = str(params.get("error_code") or MODEL_ERROR)
            fail = params["fail"]
            raise ModelError(code, fail if isinstance(fail, str) else f"Scripted model failure ({code}).")
        pacer = _Pacer(float(params.get("ttft_ms") or 0) / 1000, float(params.get("tokens_per_second") or 0))
        calls = _planned_calls(request)
        output_tokens = 0
        if calls:
            turn = sum(1 for m in request.messages if m.get("role") == "assistant")
            for index, (name, arguments) in enumerate(calls):
                await pacer.tick()
                call_id = f"call_{turn}_{index}"
                yield ToolCallStart(call_id, name)
                if arguments:
                    yield ToolCallArgsDelta(call_id, arguments)
                yield ToolCallEnd(call_id)
                output_tokens += 1
            reason = "tool_calls"
        else:
            for token in _reply_tokens(request):
                await pacer.tick()
                yield TextDelta(token)
                output_tokens += 1
            reason = "stop"
        yield Usage(_count_input(request), output_tokens)
        yield Finish(reason)


class _Pacer:
    """Sleeps so token k lands at ttft + k / tokens_per_second; never sleeps when both are zero."""

    __slots__ = ("_count", "_interval", "_start", "_ttft")

    def __init__(self, ttft: float, tokens_per_second: float) -> None:
        self._ttft = ttft
        self._interval = 1 / tokens_per_second if tokens_per_second > 0 else 0.0
        self._start = time.monotonic() if ttft or self._interval else 0.0
        self._count = 0

    async def tick(self) -> None:
        count = self._count
        self._count += 1
        if not (self._ttft or self._interval):
            if count and count % 256 == 0:
                await asyncio.sleep(0)  # unlimited speed still lets other tasks (and cancellation) in
            return
        delay = self._start + self._ttft + count * self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _last_user_text(messages: Sequence[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _trailing_tool_results(messages: Sequence[dict]) -> list[dict]:
    results: list[dict] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(message)
    results.reverse()
    return results


def _substitute(value: Any, match: re.Match) -> Any:
    if isinstance(value, str):

        def group(m: re.Match) -> str:
            key = m.group(1)
            if key == "match":
                return match.group(0)
            index = int(key)
            return (match.group(index) or "") if index <= (match.re.groups or 0) else m.group(0)

        return _PLACEHOLDER.sub(group, value)
    if isinstance(value, dict):
        return {k: _substitute(v, match) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, match) for v in value]
    return value


def _planned_calls(request: ModelRequest) -> list[tuple[str, str]]:
    """The tool calls of this turn as (name, raw JSON arguments); empty means answer with text."""
    messages = request.messages
    if not messages:
        return []
    after_tool = messages[-1].get("role") == "tool"
    if not after_tool and messages[-1].get("role") != "user":
        return []
    text = _last_user_text(messages)
    rules = request.params.get("rules")
    if rules is None:
        if after_tool or not any(t["name"] == "calculator" for t in request.tools):
            return []
        match = ARITHMETIC.search(text)
        return [("calculator", json.dumps({"expression": match.group(0).strip()}))] if match else []
    offered = {t["name"] for t in request.tools}
    calls: list[tuple[str, str]] = []
    for rule in _checked_rules(rules):
        if not rule.get("call") or (after_tool and not rule.get("after_tool")):
            continue
        if rule.get("if_offered") and rule["call"] not in offered:
            continue
        match = _rule_match(rule, text)
        if match is None:
            continue
        if "raw_arguments" in rule:
            arguments = str(rule["raw_arguments"])
        else:
            arguments = json.dumps(_substitute(rule.get("arguments") or {}, match))
        calls.append((str(rule["call"]), arguments))
    return calls


def _checked_rules(rules: Any) -> list[dict]:
    if not isinstance(rules, list) or not all(
        isinstance(r, dict) and (r.get("call") or isinstance(r.get("reply"), str)) for r in rules
    ):
        raise ModelError(
            MODEL_ERROR, 'Scripted "rules" must be a list of {"when": regex, "call": tool, ...} or {"when", "reply"}.'
        )
    return rules


def _rule_match(rule: dict, text: str) -> re.Match | None:
    try:
        return re.search(str(rule.get("when", "")), text, re.IGNORECASE)
    except re.error as exc:
        raise ModelError(MODEL_ERROR, f"Scripted rule has a bad regex {rule.get('when')!r}: {exc}") from None


def _rule_reply(rules: Any, text: str) -> str | None:
    """The first matching ``reply`` rule's text, its placeholders filled from the match."""
    for rule in _checked_rules(rules):
        if rule.get("call"):
            continue
        match = _rule_match(rule, text)
        if match is not None:
            return _substitute(rule["reply"], match)
    return None


def _answer_from_results(results: Sequence[dict]) -> str:
    if len(results) == 1:
        result = results[0]
        if result.get("is_error"):
            return f"The tool failed: {result.get('content', '')}"
        return f"The result is {result.get('content', '')}."
    parts = [("error: " if r.get("is_error") else "") + str(r.get("content", "")) for r in results]
    return "The results are: " + "; ".join(parts) + "."


def _reply_tokens(request: ModelRequest) -> Iterable[str]:
    params = request.params
    results = _trailing_tool_results(request.messages)
    if results:
        template = params.get("results_reply")
        if isinstance(template, str):
            contents = "\n".join(str(r.get("content", "")) for r in results)
            return _TOKEN.findall(template.replace("{results}", contents))
        return _TOKEN.findall(_answer_from_results(results))
    if params.get("rules") is not None:
        reply = _rule_reply(params["rules"], _last_user_text(request.messages))
        if reply is not None:
            return _TOKEN.findall(reply)
    count = params.get("reply_tokens")
    if count:
        return (("" if i == 0 else " ") + _VOCABULARY[i % len(_VOCABULARY)] for i in range(int(count)))
    template = str(params.get("reply") or DEFAULT_REPLY)
    return _TOKEN.findall(template.replace("{input}", _last_user_text(request.messages)))


def _count_input(request: ModelRequest) -> int:
    # A rough word count: enough for usage accounting to be visible and deterministic.
    total = len(request.system.split())
    for message in request.messages:
        content = message.get("content")
        total += len(content.split()) if isinstance(content, str) else 0
    return total
