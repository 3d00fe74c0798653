"""The A2A 1.0 wire: the version service parameter, request parsing and validation, enums.

Requests are ProtoJSON: camelCase field names (the proto's snake_case names are accepted too,
as ProtoJSON parsers do), enums by name, unknown fields ignored (section 5.7). Bad input raises
``InvalidParamsError`` naming the field; nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interfaces.a2a.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    VersionNotSupportedError,
)
from interfaces.edge.a2a_spec import (  # noqa: F401  (the door's names for the shared vocabulary)
    AUTH_REQUIRED,
    CANCELED,
    COMPLETED,
    FAILED,
    INPUT_REQUIRED,
    INTERRUPTED_STATES,
    REJECTED,
    ROLE_AGENT,
    ROLE_USER,
    SUBMITTED,
    SUPPORTED_VERSIONS,
    TASK_STATES,
    TERMINAL_STATES,
    VERSION_HEADER,
    WORKING,
)
from interfaces.webhooks.targets import receiver_url_problem

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_ID_LENGTH = 128
# What the agents produce is text; a client that accepts none of these cannot be served.
ACCEPTABLE_OUTPUT_MODES = frozenset({"text/plain", "text/markdown", "text/*", "*/*", "application/json"})
_VERSION = re.compile(r"^\s*(\d+)\.(\d+)(?:\.\d+)?\s*$")
_PART_CONTENT = ("text", "raw", "url", "data")


# --- the version service parameter (sections 3.6 and 3.2.6)


def check_version(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """Return the requested ``Major.Minor``; raise VersionNotSupported unless it is one we speak.

    The header wins over the ``A2A-Version`` query parameter. An empty or missing version means
    0.3 (section 3.6.2), which this server does not speak.
    """
    raw = headers.get(VERSION_HEADER) or query.get(VERSION_HEADER) or ""
    supported = ", ".join(SUPPORTED_VERSIONS)
    if not raw.strip():
        raise VersionNotSupportedError(
            f"No A2A-Version was sent, which means version 0.3; this agent speaks A2A {supported}. "
            f"Send the header 'A2A-Version: {SUPPORTED_VERSIONS[-1]}'.",
            metadata={"requestedVersion": "0.3", "supportedVersions": supported},
        )
    match = _VERSION.match(raw)
    version = f"{match.group(1)}.{match.group(2)}" if match else raw.strip()[:20]
    if version not in SUPPORTED_VERSIONS:
        raise VersionNotSupportedError(
            f"A2A version {version!r} is not supported by this agent; it speaks A2A {supported}.",
            metadata={"requestedVersion": version, "supportedVersions": supported},
        )
    return version


# --- field access


def field_value(obj: Mapping[str, Any], camel: str, default: Any = None) -> Any:
    """``obj[camel]``, or the proto's snake_case name (ProtoJSON parsers accept both)."""
    if camel in obj:
        return obj[camel]
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
    return obj.get(snake, default)


def optional_int(value: Any, name: str, *, low: int = 0, high: int | None = None) -> int | None:
    """An int32 from JSON (a number or a decimal string, as ProtoJSON allows), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidParamsError(f"'{name}' must be an integer.", field_violations=[(name, "must be an integer")])
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidParamsError(f"'{name}' must be an integer.", field_violations=[(name, "must be an integer")])
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidParamsError(
            f"'{name}' must be {bounds}, got {value}.", field_violations=[(name, f"must be {bounds}")]
        )
    return value


def optional_bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParamsError(f"'{name}' must be true or false.", field_violations=[(name, "must be a boolean")])


def optional_string(value: Any, name: str, *, max_length: int = MAX_ID_LENGTH) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidParamsError(
            f"'{name}' must be a string of at most {max_length} characters.",
            field_violations=[(name, f"must be a string of at most {max_length} characters")],
        )
    return value


def optional_object(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParamsError(f"'{name}' must be a JSON object.", field_violations=[(name, "must be an object")])
    return value


def require_params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidParamsError("'params' must be a JSON object.", field_violations=[("params", "must be an object")])
    return params


def task_id_param(params: Mapping[str, Any], name: str = "id") -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidParamsError(f"'{name}' (the task id) is required.", field_violations=[(name, "is required")])
    return value.strip()


# --- messages and parts


@dataclass
class IncomingMessage:
    message_id: str
    parts: list[dict[str, Any]]
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None
    reference_task_ids: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)

    def as_json(self, *, task_id: str, context_id: str) -> dict[str, Any]:
        """The message as it appears in a task's history."""
        message: dict[str, Any] = {
            "messageId": self.message_id,
            "contextId": context_id,
            "taskId": task_id,
            "role": ROLE_USER,
            "parts": self.parts,
        }
        if self.metadata:
            message["metadata"] = self.metadata
        if self.extensions:
            message["extensions"] = self.extensions
        if self.reference_task_ids:
            message["referenceTaskIds"] = self.reference_task_ids
        return message

    def stored(self) -> dict[str, Any]:
        """What is kept in ``Run.metadata['a2a']`` to rebuild the history later."""
        return {key: value for key, value in self.as_json(task_id="", context_id="").items() if value}


@dataclass
class SendParams:
    message: IncomingMessage
    accepted_output_modes: list[str] = field(default_factory=list)
    history_length: int | None = None
    return_immediately: bool = False
    metadata: dict[str, Any] | None = None
    push_config: PushConfigParams | None = None  # configuration.taskPushNotificationConfig


def _string_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParamsError(f"'{name}' must be a list of strings.", field_violations=[(name, "list of strings")])
    return list(value)


def parse_part(part: Any, index: int) -> dict[str, Any]:
    name = f"message.parts[{index}]"
    if not isinstance(part, dict):
        raise InvalidParamsError(f"'{name}' must be an object.", field_violations=[(name, "must be an object")])
    present = [key for key in _PART_CONTENT if key in part]
    if len(present) != 1:
        raise InvalidParamsError(
            f"'{name}' must have exactly one of text, raw, url or data.",
            field_violations=[(name, "exactly one of text, raw, url, data")],
        )
    key = present[0]
    value = part[key]
    if key in ("text", "url", "raw") and not isinstance(value, str):
        raise InvalidParamsError(f"'{name}.{key}' must be a string.", field_violations=[(f"{name}.{key}", "string")])
    clean: dict[str, Any] = {key: value}
    media_type = field_value(part, "mediaType")
    if media_type is not None:
        clean["mediaType"] = str(media_type)
    if part.get("filename"):
        clean["filename"] = str(part["filename"])
    metadata = optional_object(part.get("metadata"), f"{name}.metadata")
    if metadata:
        clean["metadata"] = metadata
    return clean


def parse_message(raw: Any) -> IncomingMessage:
    if not isinstance(raw, dict):
        raise InvalidParamsError(
            "'message' is required and must be an object.", field_violations=[("message", "required")]
        )
    message_id = field_value(raw, "messageId")
    if not isinstance(message_id, str) or not message_id.strip():
        raise InvalidParamsError(
            "'message.messageId' is required.", field_violations=[("message.messageId", "is required")]
        )
    role = raw.get("role")
    if role not in (ROLE_USER, 1, "1"):
        raise InvalidParamsError(
            f"'message.role' must be {ROLE_USER} for a message sent to an agent, got {role!r}.",
            field_violations=[("message.role", f"must be {ROLE_USER}")],
        )
    parts = raw.get("parts")
    if not isinstance(parts, list) or not parts:
        raise InvalidParamsError(
            "'message.parts' must hold at least one part.",
            field_violations=[("message.parts", "At least one part is required")],
        )
    return IncomingMessage(
        message_id=optional_string(message_id, "message.messageId", max_length=200) or "",
        parts=[parse_part(part, index) for index, part in enumerate(parts)],
        context_id=optional_string(field_value(raw, "contextId"), "message.contextId"),
        task_id=optional_string(field_value(raw, "taskId"), "message.taskId"),
        metadata=optional_object(raw.get("metadata"), "message.metadata"),
        reference_task_ids=_string_list(field_value(raw, "referenceTaskIds"), "message.referenceTaskIds"),
        extensions=_string_list(raw.get("extensions"), "message.extensions"),
    )


def parse_send_params(params: Any) -> SendParams:
    params = require_params(params)
    message = parse_message(params.get("message"))
    configuration = optional_object(params.get("configuration"), "configuration") or {}
    push = field_value(configuration, "taskPushNotificationConfig")
    if push is None:  # the name of earlier 1.0 drafts
        push = field_value(configuration, "pushNotificationConfig")
    modes = _string_list(field_value(configuration, "acceptedOutputModes"), "configuration.acceptedOutputModes")
    if modes and not ACCEPTABLE_OUTPUT_MODES.intersection(mode.split(";")[0].strip() for mode in modes):
        raise ContentTypeNotSupportedError(
            f"This agent answers with text/plain; none of the accepted output modes {modes} allows it.",
            metadata={"acceptedOutputModes": ",".join(modes), "outputModes": "text/plain"},
        )
    return SendParams(
        message=message,
        accepted_output_modes=modes,
        history_length=optional_int(field_value(configuration, "historyLength"), "configuration.historyLength"),
        return_immediately=optional_bool(
            field_value(configuration, "returnImmediately"), "configuration.returnImmediately"
        ),
        metadata=optional_object(params.get("metadata"), "metadata"),
        push_config=parse_push_config(push, "configuration.taskPushNotificationConfig") if push else None,
    )


def run_input(message: IncomingMessage) -> str | dict[str, Any]:
    """The run input for a message: its text, or its one JSON object (a ``data`` part).

    Text (and ``raw`` text) parts are joined with blank lines; ``data`` parts are added as JSON.
    Files by URL and binary content are refused with ContentTypeNotSupported.
    """
    texts: list[str] = []
    data: list[Any] = []
    for index, part in enumerate(message.parts):
        if "text" in part:
            texts.append(part["text"])
        elif "data" in part:
            data.append(part["data"])
        elif "raw" in part:
            texts.append(_raw_text(part, index))
        else:
            raise ContentTypeNotSupportedError(
                "This agent does not fetch files by URL; send the content as text or data parts.",
                metadata={"part": str(index)},
            )
    if not texts and len(data) == 1 and isinstance(data[0], dict) and data[0]:
        return data[0]
    text = "\n\n".join([t for t in texts if t] + [json.dumps(d, ensure_ascii=False) for d in data])
    if not text.strip():
        raise InvalidParamsError(
            "The message has no content: send a non-empty text or data part.",
            field_violations=[("message.parts", "no text or data content")],
        )
    return text


def _raw_text(part: dict[str, Any], index: int) -> str:
    media_type = str(part.get("mediaType") or "").split(";")[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in ("application/json", "")):
        raise ContentTypeNotSupportedError(
            f"Media type {media_type!r} is not supported; this agent reads text and JSON.",
            metadata={"mediaType": media_type, "part": str(index)},
        )
    try:
        text = base64.b64decode(part["raw"], validate=False).decode("utf-8")
        if "\x00" in text:  # PostgreSQL cannot store it
            raise ValueError("NUL character")
        return text
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParamsError(
            f"'message.parts[{index}].raw' is not base64-encoded UTF-8 text (with no NUL character).",
            field_violations=[(f"message.parts[{index}].raw", "base64 UTF-8 text")],
        ) from None


# --- list parameters


@dataclass
class ListParams:
    context_id: str | None = None
    status: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str | None = None
    history_length: int | None = None
    status_timestamp_after: str | None = None
    include_artifacts: bool = False


def parse_list_params(params: Any) -> ListParams:
    params = require_params(params)
    status = field_value(params, "status")
    if status in (None, "", "TASK_STATE_UNSPECIFIED", 0):
        status = None
    elif status not in TASK_STATES:
        raise InvalidParamsError(
            f"Invalid status value {status!r}. Must be one of: {', '.join(TASK_STATES)}.",
            field_violations=[("status", "unknown task state")],
        )
    page_size = optional_int(field_value(params, "pageSize"), "pageSize", low=1, high=MAX_PAGE_SIZE)
    after = field_value(params, "statusTimestampAfter")
    if after is not None and not isinstance(after, str):
        raise InvalidParamsError(
            "'statusTimestampAfter' must be an ISO 8601 timestamp.",
            field_violations=[("statusTimestampAfter", "ISO 8601 timestamp")],
        )
    return ListParams(
        context_id=optional_string(field_value(params, "contextId"), "contextId"),
        status=status,
        page_size=page_size or DEFAULT_PAGE_SIZE,
        page_token=optional_string(field_value(params, "pageToken"), "pageToken", max_length=500),
        history_length=optional_int(field_value(params, "historyLength"), "historyLength"),
        status_timestamp_after=after or None,
        include_artifacts=optional_bool(field_value(params, "includeArtifacts"), "includeArtifacts"),
    )


# --- push notification configs (TaskPushNotificationConfig and the requests that name one)

MAX_TOKEN_LENGTH = 1000
MAX_CREDENTIALS_LENGTH = 4000
_SCHEME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")  # an HTTP auth scheme is a token


@dataclass
class PushConfigParams:
    """A TaskPushNotificationConfig as sent: the URL is checked against the outbound policy later."""

    url: str
    config_id: str | None = None
    task_id: str | None = None
    token: str = ""
    authentication: dict[str, str] | None = None


def parse_push_config(raw: Any, name: str = "params") -> PushConfigParams:
    """A ``TaskPushNotificationConfig`` (flat: ``id``, ``taskId``, ``url``, ``token``,
    ``authentication``). A nested ``pushNotificationConfig`` (an earlier draft's shape) is read too."""
    if not isinstance(raw, dict):
        raise InvalidParamsError(f"'{name}' must be an object.", field_violations=[(name, "must be an object")])
    inner = field_value(raw, "pushNotificationConfig")
    source = {**raw, **inner} if isinstance(inner, dict) else raw
    url = source.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidParamsError(
            f"'{name}.url' is required: the URL the task's updates are POSTed to.",
            field_violations=[(f"{name}.url", "is required")],
        )
    token = source.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH):
        raise InvalidParamsError(
            f"'{name}.token' must be a string of at most {MAX_TOKEN_LENGTH} characters.",
            field_violations=[(f"{name}.token", f"string of at most {MAX_TOKEN_LENGTH} characters")],
        )
    return PushConfigParams(
        url=url.strip(),
        config_id=optional_string(source.get("id"), f"{name}.id"),
        task_id=optional_string(field_value(raw, "taskId"), f"{name}.taskId"),
        token=token or "",
        authentication=_authentication(source.get("authentication"), f"{name}.authentication"),
    )


def _authentication(raw: Any, name: str) -> dict[str, str] | None:
    """AuthenticationInfo: ``scheme`` (an HTTP auth scheme such as Bearer) and ``credentials``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidParamsError(f"'{name}' must be an object.", field_violations=[(name, "must be an object")])
    scheme, credentials = raw.get("scheme"), raw.get("credentials")
    if not isinstance(scheme, str) or not _SCHEME.match(scheme):
        raise InvalidParamsError(
            f"'{name}.scheme' must be an HTTP authentication scheme such as Bearer or Basic.",
            field_violations=[(f"{name}.scheme", "an HTTP authentication scheme")],
        )
    if credentials is not None and (
        not isinstance(credentials, str)
        or len(credentials) > MAX_CREDENTIALS_LENGTH
        or any(ch in credentials for ch in "\r\n\x00")
    ):
        raise InvalidParamsError(
            f"'{name}.credentials' must be one line of at most {MAX_CREDENTIALS_LENGTH} characters.",
            field_violations=[(f"{name}.credentials", "one line of text")],
        )
    found = {"scheme": scheme}
    if credentials:
        found["credentials"] = credentials
    return found


@dataclass
class PushConfigRef:
    task_id: str
    config_id: str


def parse_push_config_ref(params: Any) -> PushConfigRef:
    """``GetTaskPushNotificationConfigRequest`` / ``DeleteTaskPushNotificationConfigRequest``."""
    params = require_params(params)
    config_id = optional_string(params.get("id"), "id")
    if not config_id:
        raise InvalidParamsError("'id' (the config id) is required.", field_violations=[("id", "is required")])
    return PushConfigRef(_push_task_id(params), config_id)


@dataclass
class PushListParams:
    task_id: str
    page_size: int | None = None
    page_token: str | None = None


def parse_push_list_params(params: Any) -> PushListParams:
    """``ListTaskPushNotificationConfigsRequest``: ``taskId``, ``pageSize`` (1 to 100; none: all),
    ``pageToken``."""
    params = require_params(params)
    return PushListParams(
        task_id=_push_task_id(params),
        page_size=optional_int(field_value(params, "pageSize"), "pageSize", low=1, high=MAX_PAGE_SIZE),
        page_token=optional_string(field_value(params, "pageToken"), "pageToken", max_length=500),
    )


def _push_task_id(params: Mapping[str, Any]) -> str:
    value = field_value(params, "taskId")
    if not isinstance(value, str) or not value.strip():
        raise InvalidParamsError("'taskId' (the task id) is required.", field_violations=[("taskId", "is required")])
    return value.strip()


def require_receiver_url(config: PushConfigParams, name: str = "url") -> None:
    """InvalidParams when the outbound policy would refuse the config's URL (or it is no URL)."""
    problem = receiver_url_problem(config.url)
    if problem is not None:
        raise InvalidParamsError(
            f"'{name}' cannot receive push notifications: {problem}", field_violations=[(name, problem)]
        )
