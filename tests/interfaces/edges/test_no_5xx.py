"""Inputs that once answered 500 answer a 4xx in the error shape, and the class behind each is
closed at the edge: one JSON parser for every door, bounded integers in query strings and
headers, cursors decoded defensively, and views whose only renderer is HTML answering errors
in JSON. (Static files and websocket paths need a real server: ``test_live_edges.py``.)"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given

from cosmos.models import Agent, Run
from interfaces.edge.parsers import loads
from tests.factories import make_agent, make_run
from tests.interfaces.http.conftest import assert_error
from tests.support.fuzzing import CURSORS, GARBAGE_BODIES, QUERY_INTEGERS, fuzz_settings

pytestmark = pytest.mark.django_db

LONE_SURROGATE = b'{"input": "\\ud800"}'
OVERFLOW = b'{"input": "hi", "metadata": {"n": 1e400}}'


def test_options_on_the_swagger_page_is_a_405_in_the_error_shape(api_client):
    assert_error(api_client.options("/api/docs"), 405, "method_not_allowed")
    assert_error(api_client.post("/api/docs", {}, format="json"), 405, "method_not_allowed")
    assert api_client.get("/api/docs").status_code == 200


@pytest.mark.parametrize("offset", ["9223372036854775808", "9223372036854775807", "99999999999999999999999", "-1"])
def test_an_offset_past_what_the_database_holds_is_a_400(api_client, offset):
    make_agent()
    error = assert_error(api_client.get(f"/api/agents?offset={offset}"), 400, "invalid")
    assert error["details"] == {"offset": offset}


def test_a_large_but_valid_offset_is_an_empty_page(api_client):
    make_agent()
    response = api_client.get("/api/agents?offset=2147483647")
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("param", ["after=9223372036854775808", "after=1e3", "limit=99999999999999999999999"])
def test_event_page_integers_are_bounded(api_client, param):
    run = make_run()
    assert_error(api_client.get(f"/api/runs/{run.id}/events?{param}"), 400, "invalid")


def test_a_huge_last_event_id_is_a_400(api_client):
    run = make_run()
    response = api_client.get(
        f"/api/runs/{run.id}/events", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="9223372036854775808"
    )
    assert_error(response, 400, "invalid")


def _cursors(api_client) -> str:
    for _ in range(3):
        make_run()
    next_url = api_client.get("/api/runs?limit=1").json()["next"]
    return next_url.split("cursor=")[1].split("&")[0]


def test_a_truncated_cursor_is_a_400(api_client):
    cursor = _cursors(api_client)
    assert_error(api_client.get(f"/api/runs?cursor={cursor[:7]}&limit=1"), 400, "invalid_cursor")
    for cut in range(1, len(cursor)):
        # Some cuts still name a position (a date without its time): a page; never a 5xx.
        response = api_client.get(f"/api/runs?cursor={cursor[:cut]}&limit=1")
        if response.status_code != 200:
            assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "position", ["2026-13-45", "not a date", "9" * 40, "", "2026-12-07T00:00:00+99:00", "\x00", "é"]
)
def test_a_forged_cursor_is_a_400(api_client, position):
    make_run()
    forged = base64.b64encode(f"p={position}".encode()).decode()
    response = api_client.get("/api/runs", {"cursor": forged})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert_error(response, 400, "invalid_cursor")


def test_a_valid_cursor_still_pages(api_client):
    cursor = _cursors(api_client)
    response = api_client.get(f"/api/runs?cursor={cursor}&limit=1")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


@pytest.mark.parametrize("body", [LONE_SURROGATE, OVERFLOW, b'{"input": "hi", "metadata": {"k\\udfff": 1}}'])
def test_json_no_column_can_hold_is_a_400_on_rest(api_client, body):
    agent = make_agent()
    before = Run.objects.count()
    response = api_client.generic("POST", f"/api/agents/{agent.id}/run", body, content_type="application/json")
    assert_error(response, 400, "malformed_json")
    assert Run.objects.count() == before


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
@pytest.mark.parametrize(
    "fields",
    [
        {"id": "nul-agent", "provider": "scripted", "template": "\x00,"},
        {"id": "nul-agent", "provider": "scripted", "system_prompt": "before\x00after"},
        {"id": "nul-agent", "provider": "scripted", "na\x00me": "x"},
    ],
)
def test_a_nul_in_a_form_field_is_a_400_not_a_database_error(api_client, encoding, fields):
    # The browsable API's forms: PostgreSQL refuses a NUL in any text it is given, a lookup too.
    if encoding == "multipart":
        response = api_client.post("/api/agents", fields)  # the test client's default: multipart
    else:
        body = urlencode(fields)
        response = api_client.generic("POST", "/api/agents", body, content_type="application/x-www-form-urlencoded")
    error = assert_error(response, 400, "malformed_request")
    assert "NUL" in error["message"]
    assert not Agent.objects.filter(id="nul-agent").exists()


@pytest.mark.parametrize(
    "raw",
    [
        '"\\ud800"',
        '["\\udc00x"]',
        '{"\\ud83d": 1}',
        "1e400",
        "[-1e400]",
        '{"a": NaN}',
        "[Infinity]",
        '"\\u0000"',
        "[" * 65 + "]" * 65,
        "[" * 5000 + "]" * 5000,
        b"\xff\xfe{}",
    ],
)
def test_the_one_parser_refuses_what_cannot_be_stored(raw):
    with pytest.raises(ValueError):
        loads(raw)


@pytest.mark.parametrize("raw", ['"\\ud83d\\ude00"', "1e308", "[" * 64 + "]" * 64, '{"a": -0.5, "b": [1, "é"]}'])
def test_the_one_parser_keeps_what_is_json(raw):
    assert loads(raw) == json.loads(raw)


# --- fuzzing the classes above: integers and cursors in query strings, bodies through every door


@pytest.mark.fuzz
@given(offset=QUERY_INTEGERS, limit=QUERY_INTEGERS)
@fuzz_settings(60)
def test_fuzz_list_integers_never_5xx(api_client, offset, limit):
    response = api_client.get("/api/agents", {"offset": offset, "limit": limit})
    assert response.status_code in (200, 400), (offset, limit, response.content[:300])
    if response.status_code == 400:
        assert_error(response, 400)


@pytest.mark.fuzz
@given(after=QUERY_INTEGERS, limit=QUERY_INTEGERS)
@fuzz_settings(60)
def test_fuzz_event_integers_never_5xx(api_client, after, limit):
    run = make_run()
    response = api_client.get(f"/api/runs/{run.id}/events", {"after": after, "limit": limit})
    assert response.status_code in (200, 400), (after, limit, response.content[:300])


@pytest.mark.fuzz
@given(cursor=CURSORS, limit=QUERY_INTEGERS)
@fuzz_settings(80)
def test_fuzz_cursors_never_5xx(api_client, cursor, limit):
    response = api_client.get("/api/runs", {"cursor": cursor, "limit": limit})
    assert response.status_code in (200, 400), (cursor, response.content[:300])
    if response.status_code == 400:
        assert_error(response, 400, "invalid_cursor")


@pytest.mark.fuzz
@given(body=GARBAGE_BODIES)
@fuzz_settings(40)
def test_fuzz_rest_bodies_never_5xx_and_never_store_what_cannot_be_kept(api_client, body):
    agent = make_agent()
    response = api_client.generic("POST", f"/api/agents/{agent.id}/run", body, content_type="application/json")
    assert response.status_code < 500, (body[:80], response.content[:300])
    for run in Run.objects.all():
        json.dumps(run.input).encode("utf-8")  # every stored input is JSON and UTF-8
