"""Remote A2A agents as tools: our agents can call any A2A 1.0 agent, anywhere.

``register_remote_agent("researcher", "https://agents.example.com/a2a/agents/research")`` adds a
tool named ``researcher`` to the tool registry; an agent that lists it sends a message to the
remote agent and gets its answer (the text of its artifacts) as the tool result. The remote
stream is forwarded into the calling run's events while it lasts:

- ``SUBAGENT_STARTED`` / ``SUBAGENT_FINISHED`` / ``SUBAGENT_ERROR`` around the call (``agent``,
  ``url``, ``toolCallId``, the remote ``taskId`` and ``contextId``, and ``output`` at the end);
- one ``CUSTOM`` event named ``a2a.remote`` per remote ``StreamResponse`` (``value``:
  ``{"toolCallId", "agent", "payload"}``), so dashboards and clients see the remote answer grow.

The client is small and speaks A2A 1.0 only: it reads the card (``<url>/.well-known/agent-card.json``
or the card URL itself), picks the first ``JSONRPC`` or ``HTTP+JSON`` interface of protocol 1.0
(or the one asked for), and streams when the card says it can. Register remote agents in an app's
``asteros.py`` or ``tools.py`` (both imported in every process, workers included), or declare them
in the admin (``interfaces.connectors.declared``).

Every request, redirects included, must go to the remote agent's own host (as its URL names it:
``host``, or ``host:port`` when the URL has a port) or to a host of ``ASTEROS_A2A_REMOTE_ALLOWLIST``
(``host``, ``host:port`` or ``*.domain``); anything else is refused with ``RemoteA2ANotAllowed``
before it is sent. (The hosts of that list are also folded into ``ASTEROS_OUTBOUND_ALLOWLIST``:
they may be on private addresses.) Every request goes through the one outbound client
(``cosmos.outbound``): private, loopback, link-local and metadata addresses are refused unless
on ``ASTEROS_OUTBOUND_ALLOWLIST``, on the address actually connected to, and every network failure
reads the same (``OutboundError``; the detail is in the server log).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from django.conf import settings

from cosmos import outbound
from cosmos.logging import run_id_var
from cosmos.runtime.errors import ModelError
from cosmos.runtime.events import Emit, EventType, make_event
from cosmos.runtime.providers import Finish, ModelRequest, ProviderEvent, TextDelta
from cosmos.runtime.tools import Tool, ToolContext, tool_registry
from interfaces.edge.a2a_spec import HTTP_JSON, JSONRPC, SUPPORTED_VERSIONS, TERMINAL_STATES, VERSION_HEADER

CARD_PATH = "/.well-known/agent-card.json"
DEFAULT_TIMEOUT = 300.0
CARD_MAX_AGE = 300.0  # a card is read again after this long, so a moved endpoint is followed
MAX_REDIRECTS = 5
ALLOWLIST_OPTION = "ASTEROS_A2A_REMOTE_ALLOWLIST"
# Run error codes of the ``a2a`` provider (an agent that is a remote agent).
REMOTE_AGENT_NOT_FOUND = "remote_agent_not_found"
REMOTE_AGENT_NOT_ALLOWED = "remote_agent_not_allowed"
REMOTE_AGENT_FAILED = "remote_agent_failed"
REMOTE_EVENT = "a2a.remote"
FAILED_STATES = frozenset({"TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"})
MESSAGE_PARAMETERS = {
    "type": "object",
    "properties": {"message": {"type": "string", "description": "What to ask or tell the remote agent."}},
    "required": ["message"],
}

Headers = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


class RemoteA2AError(Exception):
    """The remote agent could not be reached, answered an error, or its task failed."""


class RemoteA2ANotAllowed(RemoteA2AError):
    """A request (or a redirect) would leave the hosts a remote agent may reach."""


def remote_allowlist() -> tuple[str, ...]:
    """The hosts of ``ASTEROS_A2A_REMOTE_ALLOWLIST``, lower-cased; read at call time."""
    options = getattr(settings, "ASTEROS", None)
    return tuple(h.lower() for h in getattr(options, "a2a_remote_allowlist", ()) or ())


def own_host_entry(url: str) -> str:
    """The allowlist entry a remote agent's URL grants: its host, with the port if the URL names one."""
    parsed = httpx.URL(url)
    host = (parsed.host or "").lower()
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parsed.port}" if parsed.port else host


class RemoteA2AAgent:
    """A client for one remote A2A 1.0 agent, given its base URL or its card's URL."""

    def __init__(
        self, url: str, *, headers: Headers = None, binding: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = headers
        self.binding = binding
        self.timeout = timeout
        self._card: dict[str, Any] | None = None
        self._card_expires = 0.0

    @property
    def card_url(self) -> str:
        return self.url if self.url.endswith(".json") else self.url + CARD_PATH

    def headers(self) -> dict[str, str]:
        extra = self._headers() if callable(self._headers) else self._headers
        return {VERSION_HEADER: SUPPORTED_VERSIONS[-1], **dict(extra or {})}

    def allowed(self, url: httpx.URL) -> bool:
        """May a request go to ``url``? Its own host, or one of the allowlist."""
        return outbound.url_allowed(url, (own_host_entry(self.url), *remote_allowlist()))

    async def _check_request(self, request: httpx.Request) -> None:
        # An httpx request hook: it sees every request, each redirect hop included, before it is sent.
        url = request.url
        if url.scheme not in ("http", "https"):
            raise RemoteA2ANotAllowed(f"Refused to call {url}: only http and https URLs are allowed.")
        if not self.allowed(url):
            where = f"{url.host}:{url.port}" if url.port else url.host
            raise RemoteA2ANotAllowed(
                f"Refused to call {url}: {where!r} is not the remote agent's own host "
                f"({own_host_entry(self.url)}) and not on {ALLOWLIST_OPTION}."
            )

    def client(self, timeout: float | None = None) -> httpx.AsyncClient:
        """The outbound client (``cosmos.outbound``), following redirects only while they stay on
        allowed hosts."""
        timeout = self.timeout if timeout is None else timeout
        return outbound.async_client(
            timeout=timeout,
            deadline=timeout,
            max_redirects=MAX_REDIRECTS,
            event_hooks={"request": [self._check_request]},
        )

    async def card(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if self._card is None or time.monotonic() >= self._card_expires:
            try:
                response = await http.get(self.card_url, headers=self.headers())
                response.raise_for_status()
                card = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise RemoteA2AError(f"Cannot read the agent card at {self.card_url}: {exc}") from None
            if not isinstance(card, dict) or not isinstance(card.get("supportedInterfaces"), list):
                raise RemoteA2AError(f"{self.card_url} is not an A2A 1.0 agent card (no supportedInterfaces).")
            self._card, self._card_expires = card, time.monotonic() + CARD_MAX_AGE
        return self._card

    async def fetch_card(self, timeout: float | None = None) -> dict[str, Any]:
        """Read the card now (not from the cache), with its own client."""
        self._card = None
        async with self.client(timeout) as http:
            return await self.card(http)

    def interface(self, card: dict[str, Any]) -> tuple[str, str]:
        """(binding, url) of the first usable interface, in the card's order of preference."""
        wanted = (self.binding,) if self.binding else (JSONRPC, HTTP_JSON)
        for entry in card.get("supportedInterfaces") or ():
            if not isinstance(entry, dict):
                continue
            version = str(entry.get("protocolVersion") or "")
            if entry.get("protocolBinding") in wanted and version[:3] in SUPPORTED_VERSIONS and entry.get("url"):
                return entry["protocolBinding"], str(entry["url"]).rstrip("/")
        raise RemoteA2AError(f"The agent at {self.card_url} offers no A2A 1.0 interface over {' or '.join(wanted)}.")

    async def send(self, text: str, *, context_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Send one text message; yield the remote ``StreamResponse`` payloads (camelCase JSON)."""
        message: dict[str, Any] = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
        if context_id:
            message["contextId"] = context_id
        params = {"message": message}
        async with self.client() as http:
            card = await self.card(http)
            binding, url = self.interface(card)
            streaming = bool((card.get("capabilities") or {}).get("streaming"))
            if binding == JSONRPC:
                source = self._jsonrpc(http, url, params, streaming)
            else:
                source = self._rest(http, url, params, streaming)
            async for payload in source:
                yield payload

    async def _jsonrpc(
        self, http: httpx.AsyncClient, url: str, params: dict[str, Any], streaming: bool
    ) -> AsyncIterator[dict[str, Any]]:
        method = "SendStreamingMessage" if streaming else "SendMessage"
        body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
        if not streaming:
            response = await self._post(http, url, body)
            yield _rpc_result(response.json())
            return
        async for _event, data in self._sse(http, url, body):
            yield _rpc_result(data)

    async def _rest(
        self, http: httpx.AsyncClient, url: str, params: dict[str, Any], streaming: bool
    ) -> AsyncIterator[dict[str, Any]]:
        if not streaming:
            yield (await self._post(http, f"{url}/message:send", params)).json()
            return
        async for event, data in self._sse(http, f"{url}/message:stream", params):
            if event == "error":
                raise RemoteA2AError(_status_message(data))
            yield data

    async def _post(self, http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await http.post(url, json=body, headers=self.headers())
        except httpx.HTTPError as exc:
            raise RemoteA2AError(f"Cannot reach the A2A agent at {url}: {exc}") from None
        if response.status_code >= 400:
            raise RemoteA2AError(_http_error(response))
        return response

    async def _sse(
        self, http: httpx.AsyncClient, url: str, body: dict[str, Any]
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        headers = self.headers() | {"Accept": "text/event-stream"}
        try:
            async with http.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise RemoteA2AError(_http_error(response))
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    await response.aread()  # an error answered as plain JSON before any stream
                    yield "message", response.json()
                    return
                event, data = "message", []
                async for line in response.aiter_lines():
                    if not line:
                        if data:
                            yield event, json.loads("\n".join(data))
                        event, data = "message", []
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                if data:
                    yield event, json.loads("\n".join(data))
        except httpx.HTTPError as exc:
            raise RemoteA2AError(f"The stream from {url} broke: {exc}") from None
        except ValueError as exc:
            raise RemoteA2AError(f"{url} sent a stream event that is not JSON: {exc}") from None


def _rpc_result(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RemoteA2AError("The remote agent answered something that is not a JSON-RPC response.")
    if isinstance(data.get("error"), dict):
        error = data["error"]
        raise RemoteA2AError(f"The remote agent answered error {error.get('code')}: {error.get('message')}")
    result = data.get("result")
    if not isinstance(result, dict):
        raise RemoteA2AError("The remote agent's JSON-RPC response has no result.")
    return result


def _status_message(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"The remote agent answered {error.get('status') or error.get('code')}: {error.get('message')}"
    return f"The remote agent answered an error: {str(data)[:300]}"


def _http_error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"The remote agent answered HTTP {response.status_code}."
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and "jsonrpc" in data:
        return f"The remote agent answered HTTP {response.status_code}: {data['error'].get('message')}"
    return f"HTTP {response.status_code}: " + _status_message(data)


class _Answer:
    """Folds remote stream responses into the answer: artifact text (honouring ``append``)."""

    def __init__(self) -> None:
        self.artifacts: dict[str, str] = {}
        self.message = ""
        self.state = ""
        self.status_text = ""
        self.task_id = ""
        self.context_id = ""

    def add(self, payload: dict[str, Any]) -> None:
        if "task" in payload:
            task = payload["task"]
            self.task_id, self.context_id = task.get("id", ""), task.get("contextId", "")
            self._status(task.get("status") or {})
            for artifact in task.get("artifacts") or ():
                self.artifacts[artifact.get("artifactId", "")] = _text(artifact.get("parts"))
        elif "artifactUpdate" in payload:
            update = payload["artifactUpdate"]
            artifact = update.get("artifact") or {}
            key = artifact.get("artifactId", "")
            chunk = _text(artifact.get("parts"))
            self.artifacts[key] = self.artifacts.get(key, "") + chunk if update.get("append") else chunk
        elif "statusUpdate" in payload:
            self._status(payload["statusUpdate"].get("status") or {})
        elif "message" in payload:
            self.message = _text(payload["message"].get("parts"))

    def _status(self, status: dict[str, Any]) -> None:
        self.state = status.get("state", self.state)
        message = status.get("message")
        if isinstance(message, dict):
            self.status_text = _text(message.get("parts"))

    @property
    def artifact_text(self) -> str:
        return "\n\n".join(text for text in self.artifacts.values() if text)

    @property
    def text(self) -> str:
        return self.artifact_text or self.message or self.status_text


def _text(parts: Any) -> str:
    return "".join(p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str))


class Exchange:
    """One message to a remote agent and its answer, forwarded into a run's events as it streams.

    ``deltas`` yields the answer's text as it grows (the artifacts' text; a message or status
    text at the end when there is no artifact), and emits ``SUBAGENT_STARTED``, one ``CUSTOM
    a2a.remote`` per remote ``StreamResponse``, then ``SUBAGENT_FINISHED`` or ``SUBAGENT_ERROR``.
    It raises ``RemoteA2AError`` when the remote cannot be reached or its task fails.
    """

    def __init__(self, remote: RemoteA2AAgent, name: str, emit: Emit, **ids: Any) -> None:
        self.remote = remote
        self.name = name
        self.emit = emit
        self.ids = {k: v for k, v in ids.items() if v is not None}  # toolCallId, parentRunId
        self.answer = _Answer()

    async def deltas(self, message: str) -> AsyncIterator[str]:
        answer = self.answer
        fields = {"agent": self.name, "url": self.remote.url, **self.ids}
        await self.emit(make_event(EventType.SUBAGENT_STARTED, **fields))
        sent = ""
        try:
            async for payload in self.remote.send(message):
                answer.add(payload)
                value = {**self.ids, "agent": self.name, "payload": payload}
                await self.emit(make_event(EventType.CUSTOM, name=REMOTE_EVENT, value=value))
                grown = answer.artifact_text
                if len(grown) > len(sent) and grown.startswith(sent):
                    yield grown[len(sent) :]
                    sent = grown
            if answer.state in FAILED_STATES:
                raise RemoteA2AError(
                    f"The remote agent's task ended {answer.state}: {answer.status_text or 'no reason given'}"
                )
            if answer.state and answer.state not in TERMINAL_STATES and not answer.text:
                raise RemoteA2AError(f"The remote agent stopped in {answer.state} without an answer.")
            if not sent and answer.text:
                yield answer.text
        except RemoteA2AError as exc:
            await self.emit(
                make_event(EventType.SUBAGENT_ERROR, **fields, taskId=answer.task_id or None, message=str(exc))
            )
            raise
        await self.emit(
            make_event(
                EventType.SUBAGENT_FINISHED,
                **fields,
                taskId=answer.task_id or None,
                contextId=answer.context_id or None,
                output=answer.text,
            )
        )


def remote_agent_tool(
    name: str,
    url: str | RemoteA2AAgent,
    *,
    description: str | None = None,
    headers: Headers = None,
    binding: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tool:
    """A tool that asks the remote A2A agent at ``url`` (or this client) and returns its answer."""
    if isinstance(url, RemoteA2AAgent):
        remote = url
    else:
        remote = RemoteA2AAgent(url, headers=headers, binding=binding, timeout=timeout)

    async def ask(message: str, context: ToolContext) -> str:
        exchange = Exchange(remote, name, context.emit, toolCallId=context.tool_call_id, parentRunId=context.run_id)
        async for _delta in exchange.deltas(message):
            pass
        return exchange.answer.text

    return Tool(
        name,
        description or f"Ask the remote A2A agent at {remote.url}; it answers in text.",
        MESSAGE_PARAMETERS,
        ask,
        timeout=remote.timeout,
        needs_context=True,
    )


# Remote agents registered from code, by name: the ``a2a`` provider finds them here too.
_code_remotes: dict[str, RemoteA2AAgent] = {}


def register_remote_agent(
    name: str,
    url: str,
    *,
    description: str | None = None,
    headers: Headers = None,
    binding: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tool:
    """Add a remote A2A agent to the tool registry under ``name`` (see ``remote_agent_tool``)."""
    remote = RemoteA2AAgent(url, headers=headers, binding=binding, timeout=timeout)
    tool = tool_registry.register(remote_agent_tool(name, remote, description=description))
    _code_remotes[name] = remote
    return tool


def code_remote(name: str) -> RemoteA2AAgent | None:
    """The remote agent registered from code under ``name``, while its tool is registered."""
    remote = _code_remotes.get(name)
    return remote if remote is not None and tool_registry.get(name, resolve=False) is not None else None


# ---------------------------------------------------------------------------------------------
# The ``a2a`` provider: an agent whose "model" is a remote agent (e.g. a star member)


async def _no_events(event: dict) -> None:
    return None


class RemoteAgentProvider:
    """Sends the conversation's last user message to the remote agent named by the request's
    model and streams its answer as the agent's own text. ``find`` maps a name to a client
    (remote agents from code, then those declared in the admin)."""

    name = "a2a"

    def __init__(self, find: Callable[[str], Any]) -> None:
        self._find = find  # async: name -> RemoteA2AAgent | None

    def __repr__(self) -> str:
        return "<RemoteAgentProvider>"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        remote = await self._find(request.model) if request.model else None
        if remote is None:
            raise ModelError(
                REMOTE_AGENT_NOT_FOUND,
                f"No enabled remote A2A agent named {request.model!r} (the model of an agent of provider a2a).",
            )
        exchange = Exchange(remote, request.model, request.emit or _no_events, parentRunId=run_id_var.get())
        try:
            async for delta in exchange.deltas(_last_user_text(request.messages)):
                yield TextDelta(delta)
        except RemoteA2ANotAllowed as exc:
            raise ModelError(REMOTE_AGENT_NOT_ALLOWED, str(exc)) from None
        except RemoteA2AError as exc:
            raise ModelError(REMOTE_AGENT_FAILED, str(exc)) from None
        yield Finish("stop")


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""
