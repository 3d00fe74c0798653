"""An unknown row answers with what was looked for, on every REST route of one row: the
resource's human name and its key (``No agent with id 'x'.``), never DRF's generic text."""

from __future__ import annotations

import re

import pytest
from rest_framework.schemas.generators import EndpointEnumerator

from tests.factories import make_webhook

from .conftest import assert_error

# The human name and key of each resource, as the docs show them.
EXPECTED = {
    "agents": "No agent with id 'x'.",
    "templates": "No agent template with id 'x'.",
    "stars": "No star with id 'x'.",
    "workflows": "No workflow with id 'x'.",
    "sessions": "No session with id 'x'.",
    "runs": "No run with id 'x'.",
    "interrupts": "No interrupt with id 'x'.",
    "remote-agents": "No remote A2A agent with name 'x'.",
    "mcp-servers": "No MCP server with name 'x'.",
    "schedules": "No schedule with name 'x'.",
    "webhooks": "No webhook with id 'x'.",
    "tools": "No tool named 'x'.",
}


def row_routes() -> list[tuple[str, str]]:
    """(method, path) of every API route under one row, with its first key left as a placeholder."""
    routes = []
    for path, method, _callback in EndpointEnumerator().get_api_endpoints():
        if method in ("HEAD", "OPTIONS") or not re.match(r"^/api/[a-z-]+/\{[a-z_]+\}", path):
            continue
        routes.append((method, path))
    return sorted(set(routes))


def test_every_resource_is_covered():
    resources = {path.split("/")[2] for _, path in row_routes()}
    assert resources == set(EXPECTED), "a new resource needs its not-found message here"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), row_routes())
def test_an_unknown_row_is_named_in_the_404(api_client, method, path):
    url = re.sub(r"\{[a-z_]+\}", "x", path, count=1)
    url = re.sub(r"\{[a-z_]+\}", "1", url)  # a nested key (a delivery) after the unknown row
    body = {} if method in ("POST", "PUT", "PATCH") else None
    response = getattr(api_client, method.lower())(url, body, format="json")

    error = assert_error(response, 404, "not_found")
    assert error["message"] == EXPECTED[path.split("/")[2]], url


@pytest.mark.django_db
def test_a_well_formed_unknown_uuid_is_named_too(api_client):
    missing = "00000000-0000-0000-0000-000000000000"
    error = assert_error(api_client.get(f"/api/runs/{missing}"), 404, "not_found")
    assert error["message"] == f"No run with id '{missing}'."


@pytest.mark.django_db
@pytest.mark.parametrize("delivery", ["999", "x", "1" * 40])
def test_an_unknown_delivery_of_a_known_webhook(api_client, delivery):
    webhook = make_webhook()
    for url in (
        f"/api/webhooks/{webhook.pk}/deliveries/{delivery}",
        f"/api/webhooks/{webhook.pk}/deliveries/{delivery}/redeliver",
    ):
        call = api_client.post if url.endswith("redeliver") else api_client.get
        error = assert_error(call(url), 404, "not_found")
        assert error["message"] == f"No delivery with id '{delivery}'."
