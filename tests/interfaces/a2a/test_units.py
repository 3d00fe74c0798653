"""The A2A pieces without a server: version checks, message parsing, the event translation,
card URLs, the on/off switch and the Interface plugin."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from a2a.types import a2a_pb2 as pb
from django.test import RequestFactory
from google.protobuf.json_format import ParseDict

from asteros_site.system import AsterOS
from interfaces.a2a import services
from interfaces.a2a.cards import public_base
from interfaces.a2a.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    PermissionDeniedError,
    TaskNotFoundError,
    VersionNotSupportedError,
)
from interfaces.a2a.interface import A2AInterface
from interfaces.a2a.jsonrpc import Call, dispatch
from interfaces.a2a.protocol import (
    check_version,
    parse_push_config,
    parse_push_config_ref,
    parse_push_list_params,
    parse_send_params,
    run_input,
)
from interfaces.a2a.services import Caller
from interfaces.a2a.translate import TaskProjection
from interfaces.edge.auth import KeyPrincipal
from interfaces.edge.targets import Target, get_target
from tests.factories import make_agent, make_run


@pytest.mark.parametrize("value", ["1.0", "1.0.2", " 1.0 "])
def test_version_1_0_is_accepted(value):
    assert check_version({"A2A-Version": value}, {}) == "1.0"


@pytest.mark.parametrize("value", ["", "0.3", "0.3.0", "1.1", "2.0", "one"])
def test_other_versions_are_refused(value):
    with pytest.raises(VersionNotSupportedError) as caught:
        check_version({"A2A-Version": value}, {})
    assert caught.value.jsonrpc_code == -32009 and caught.value.http_status == 400


def test_the_header_wins_over_the_query_parameter():
    assert check_version({}, {"A2A-Version": "1.0"}) == "1.0"
    with pytest.raises(VersionNotSupportedError):
        check_version({"A2A-Version": "0.3"}, {"A2A-Version": "1.0"})


def params(*parts, **configuration):
    body = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": list(parts)}}
    if configuration:
        body["configuration"] = configuration
    return parse_send_params(body)


def test_message_parts_become_the_run_input():
    assert run_input(params({"text": "a"}, {"text": "b"}).message) == "a\n\nb"
    assert run_input(params({"data": {"city": "Oslo"}}).message) == {"city": "Oslo"}
    assert run_input(params({"text": "see"}, {"data": [1, 2]}).message) == "see\n\n[1, 2]"
    raw = base64.b64encode("café".encode()).decode()
    assert run_input(params({"raw": raw, "mediaType": "text/plain"}).message) == "café"
    assert run_input(params({"text": "snake", "media_type": "text/plain"}).message) == "snake"


def test_unreadable_parts_are_refused():
    with pytest.raises(ContentTypeNotSupportedError):
        run_input(params({"url": "https://example.com/x.png", "mediaType": "image/png"}).message)
    with pytest.raises(ContentTypeNotSupportedError):
        run_input(params({"raw": "AAAA", "mediaType": "image/png"}).message)
    with pytest.raises(InvalidParamsError):
        run_input(params({"text": "   "}).message)


def test_configuration_checks():
    assert params({"text": "x"}, returnImmediately=True, historyLength=2).return_immediately
    assert params({"text": "x"}, acceptedOutputModes=["text/plain", "image/png"]).accepted_output_modes
    with pytest.raises(ContentTypeNotSupportedError):
        params({"text": "x"}, acceptedOutputModes=["image/png"])
    pushed = params({"text": "x"}, taskPushNotificationConfig={"url": "https://example.com", "token": "t"})
    assert (pushed.push_config.url, pushed.push_config.token) == ("https://example.com", "t")
    assert params({"text": "x"}, pushNotificationConfig={"url": "https://a.example"}).push_config.url
    for bad in ({"token": "t"}, {"url": 7}, {"url": "https://e.x", "authentication": {"scheme": "no spaces"}}):
        with pytest.raises(InvalidParamsError):
            params({"text": "x"}, taskPushNotificationConfig=bad)
    with pytest.raises(InvalidParamsError):
        params(
            {"text": "x"},
            taskPushNotificationConfig={
                "url": "https://e.x",
                "authentication": {"scheme": "Bearer", "credentials": "a\nb"},
            },
        )
    with pytest.raises(InvalidParamsError):
        params({"text": "x"}, historyLength="many")


def fold(events):
    projection = TaskProjection("t", "c")
    out = []
    for event in events:
        out += projection.apply(event, timestamp="2025-01-01T00:00:00.000Z")
    return projection, out


def test_text_streams_as_artifact_chunks_then_the_last_chunk():
    projection, out = fold(
        [
            {"type": "RUN_STARTED"},
            {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hel"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "lo"},
            {"type": "TEXT_MESSAGE_END", "messageId": "m1"},
            {"type": "STATE_SNAPSHOT", "snapshot": {}},
            {"type": "RUN_FINISHED"},
        ]
    )
    assert [next(iter(o)) for o in out] == ["statusUpdate", *["artifactUpdate"] * 3, "statusUpdate"]
    chunks = [(o["artifactUpdate"]["append"], o["artifactUpdate"]["lastChunk"]) for o in out[1:4]]
    assert chunks == [(False, False), (True, False), (True, True)]
    for payload in out:
        ParseDict(payload, pb.StreamResponse())
    task = projection.task(user_message=None)
    ParseDict(task, pb.Task())
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"] == [{"artifactId": "m1", "name": "response", "parts": [{"text": "Hello"}]}]
    assert task["history"][0]["role"] == "ROLE_AGENT"
    assert projection.final


def test_tool_calls_and_results_are_working_status_updates():
    _, out = fold(
        [
            {"type": "TOOL_CALL_START", "toolCallId": "c1", "toolCallName": "calculator"},
            {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": '{"expression": '},
            {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": '"1+1"}'},
            {"type": "TOOL_CALL_END", "toolCallId": "c1"},
            {"type": "TOOL_CALL_RESULT", "toolCallId": "c1", "messageId": "r1", "content": "2", "role": "tool"},
            {"type": "SUBAGENT_STARTED", "runId": "x", "kind": "agent", "stepName": "s"},
        ]
    )
    assert [o["statusUpdate"]["status"]["state"] for o in out] == ["TASK_STATE_WORKING"] * 3
    call = out[0]["statusUpdate"]["status"]["message"]["parts"][1]["data"]["toolCall"]
    assert call == {"id": "c1", "name": "calculator", "arguments": {"expression": "1+1"}}
    assert out[1]["statusUpdate"]["status"]["message"]["parts"][1]["data"]["toolResult"]["content"] == "2"
    assert out[2]["statusUpdate"]["status"]["message"]["parts"][1]["data"]["subagent"]["runKind"] == "agent"
    for payload in out:
        ParseDict(payload, pb.StreamResponse())


@pytest.mark.parametrize(
    ("event", "state"),
    [
        ({"type": "RUN_FINISHED", "outcome": "cancelled"}, "TASK_STATE_CANCELED"),
        ({"type": "RUN_FINISHED", "outcome": "interrupt"}, "TASK_STATE_INPUT_REQUIRED"),
        ({"type": "RUN_ERROR", "message": "model down", "code": "model_unavailable"}, "TASK_STATE_FAILED"),
    ],
)
def test_how_runs_end(event, state):
    projection, out = fold([{"type": "RUN_STARTED"}, event])
    assert out[-1]["statusUpdate"]["status"]["state"] == state and projection.final
    if state == "TASK_STATE_FAILED":
        message = out[-1]["statusUpdate"]["status"]["message"]
        assert message["parts"] == [{"text": "model down"}] and message["metadata"] == {"code": "model_unavailable"}


def test_the_run_row_fills_in_what_the_events_do_not_say():
    projection = TaskProjection("t", "c")
    projection.reconcile("failed", {"message": "worker lost"}, "2025-01-01T00:00:00.000Z")
    assert projection.state == "TASK_STATE_FAILED" and projection.status_message["parts"] == [{"text": "worker lost"}]
    queued = TaskProjection("t", "c")
    queued.reconcile("queued", None, "2025-01-01T00:00:00.000Z")
    assert queued.state == "TASK_STATE_SUBMITTED" and not queued.final


def test_cards_never_point_at_an_unspecified_address(settings_options):
    request = RequestFactory().get("/a2a/")
    settings_options(public_url="http://0.0.0.0:9000")
    assert public_base(request) == "http://localhost:9000"
    settings_options(public_url="https://agents.example.com/asteros/")
    assert public_base(request) == "https://agents.example.com/asteros"
    settings_options(public_url=None)
    assert public_base(request) == "http://testserver"


@dataclasses.dataclass(frozen=True)
class _Switched:
    """``settings.ASTEROS`` with ``enable_a2a`` (until options.py has the field)."""

    options: object
    enable_a2a: bool

    def __getattr__(self, name):
        return getattr(self.options, name)


@pytest.mark.django_db
def test_the_interface_can_be_turned_off(client, settings):
    settings.ROOT_URLCONF = "tests.interfaces.a2a.urls"
    assert client.get("/a2a/").status_code == 200
    settings.ASTEROS = _Switched(settings.ASTEROS, enable_a2a=False)
    assert client.get("/a2a/").status_code == 404
    response = client.post("/a2a/agents/any", data={}, content_type="application/json", HTTP_A2A_VERSION="1.0")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_plugin_is_told_about_registrations():
    interface = A2AInterface()
    os_ = AsterOS(name="A2A plugin", http=False, interfaces=[interface])
    os_.register_agent("a2a-plugin-agent", {"provider": "scripted"})
    os_.start()
    try:
        assert interface.served == {"agents/a2a-plugin-agent": "/a2a/agents/a2a-plugin-agent"}
        assert os_.interfaces["a2a"] is interface and interface.type == "a2a"
    finally:
        os_.stop()
    assert interface.served == {}


@pytest.mark.django_db
def test_keys_see_only_their_own_tasks_unless_admin(settings_options):
    settings_options(enable_auth=True, api_key="k" * 16)
    agent = make_agent()
    target = get_target("agents", agent.id)
    mine = make_run(target=agent.id, caller="key:mine", status="succeeded", events=["RUN_STARTED", "RUN_FINISHED"])
    theirs = make_run(target=agent.id, caller="key:theirs")
    child = make_run(target=agent.id, caller="key:mine", parent=mine)
    me = Caller.of(KeyPrincipal(name="mine", scopes=("run",), prefix="mine"))
    admin = Caller.of(KeyPrincipal(name="boss", scopes=("admin",), prefix="boss"))
    assert set(services.tasks_of(target, me)) == {mine}
    assert set(services.tasks_of(target, admin)) == {mine, theirs}, "child runs are not tasks"
    with pytest.raises(TaskNotFoundError):
        services.find_run_sync(target, me, str(theirs.id))
    with pytest.raises(TaskNotFoundError):
        services.find_run_sync(target, admin, str(child.id))
    task = services.get_task_sync(target, me, str(mine.id), None)
    ParseDict(task, pb.Task())
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and task["history"][0]["parts"] == [{"text": "hello"}]


async def test_a_read_only_key_may_read_but_not_run(settings_options):
    settings_options(enable_auth=True, api_key="k" * 16)
    reader = Caller.of(KeyPrincipal(name="reader", scopes=("read",)))
    target = Target("agents", "agent", "any", None)
    for method in ("SendMessage", "SendStreamingMessage", "CancelTask"):
        with pytest.raises(PermissionDeniedError):
            await dispatch(target, reader, Call(1, method, {}))
    with pytest.raises(InvalidParamsError):  # allowed, then refused for its (missing) params
        await dispatch(target, reader, Call(1, "GetTask", {}))


def test_push_config_requests_are_read_and_checked():
    config = parse_push_config(
        {"taskId": "t", "id": "c", "url": " https://e.x/h ", "authentication": {"scheme": "Bearer", "credentials": "s"}}
    )
    assert (config.task_id, config.config_id, config.url) == ("t", "c", "https://e.x/h")
    assert config.authentication == {"scheme": "Bearer", "credentials": "s"}
    nested = parse_push_config({"taskId": "t", "pushNotificationConfig": {"url": "https://e.x", "token": "k"}})
    assert (nested.url, nested.token) == ("https://e.x", "k")
    assert parse_push_config_ref({"task_id": "t", "id": "c"}).config_id == "c"
    assert parse_push_list_params({"taskId": "t", "pageSize": "5"}).page_size == 5
    assert parse_push_list_params({"taskId": "t"}).page_size is None
    for bad in (
        lambda: parse_push_config("x"),
        lambda: parse_push_config({"url": "https://e.x", "token": 5}),
        lambda: parse_push_config({"url": "https://e.x", "id": "i" * 200}),
        lambda: parse_push_config_ref({"taskId": "t"}),
        lambda: parse_push_config_ref({"id": "c"}),
        lambda: parse_push_list_params({"taskId": "t", "pageSize": 0}),
        lambda: parse_push_list_params({"taskId": "t", "pageSize": 101}),
        lambda: parse_push_list_params([]),
    ):
        with pytest.raises(InvalidParamsError):
            bad()


@pytest.mark.django_db(transaction=True)
def test_the_card_version_is_the_definitions_latest_revision(client):
    from tests.factories import make_agent

    agent = make_agent(description="first")
    url = f"/a2a/agents/{agent.id}/.well-known/agent-card.json"
    assert client.get(url).json()["version"] == "1"
    agent.description = "second"
    agent.save()
    assert client.get(url).json()["version"] == "2"
