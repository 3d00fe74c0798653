"""A POST whose body is not JSON by its Content-Type is a 415 in the one error shape on REST and
AG-UI, and starts nothing (AG-UI started a run for ``text/plain``). A2A's bindings answer the
same in their own shapes: ``tests/interfaces/a2a/test_edge_shapes.py``."""

from __future__ import annotations

import json

import pytest

from cosmos.models import Run
from tests.factories import make_agent
from tests.interfaces.http.conftest import assert_error

pytestmark = pytest.mark.django_db

AGUI_INPUT = {
    "threadId": "t-1",
    "runId": "r-1",
    "messages": [{"id": "m-1", "role": "user", "content": "hi"}],
    "tools": [],
    "context": [],
    "state": {},
    "forwardedProps": {},
}
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "text/html; charset=utf-8", ""]


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_agui_refuses_a_body_that_is_not_json_by_its_content_type(client, content_type):
    agent = make_agent()
    response = client.generic("POST", f"/agui/agents/{agent.id}", json.dumps(AGUI_INPUT), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert Run.objects.count() == 0


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_rest_refuses_a_body_that_is_not_json_by_its_content_type(client, content_type):
    agent = make_agent()
    response = client.generic("POST", f"/api/agents/{agent.id}/run", '{"input": "hi"}', content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert Run.objects.count() == 0
