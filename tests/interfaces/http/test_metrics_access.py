"""``/metrics`` names every agent and its usage: a key limited to some resources may not read it
(nor the readiness details); an unrestricted read key, staff, or ASTEROS_METRICS_PUBLIC may."""

from __future__ import annotations

import pytest

from cosmos.services.runs import start_run
from interfaces.keys.models import APIKey
from tests.factories import make_agent

from .conftest import assert_error, bearer


@pytest.mark.django_db
def test_a_key_limited_to_one_resource_may_not_read_metrics(api_client, auth_on, settings_options):
    mine, secret = make_agent(), make_agent(name="Secret project")
    start_run("agent", secret.id, "hello", origin="cli", dispatch=False)
    limited = APIKey.generate("limited", ["read", "run", "admin"], resources=[f"agents:{mine.id}"])[1]
    limited_kind = APIKey.generate("agents only", ["read"], resources=["agents"])[1]
    reader = APIKey.generate("reader", ["read"])[1]

    for key in (limited, limited_kind):
        assert_error(api_client.get("/metrics", **bearer(key)), 403, "permission_denied")
        assert set(api_client.get("/health", **bearer(key)).json()) == {"status"}  # liveness only
    allowed = api_client.get("/metrics", **bearer(reader))
    assert allowed.status_code == 200
    assert set(api_client.get("/health", **bearer(reader)).json()) > {"status"}

    settings_options(metrics_public=True)  # ASTEROS_METRICS_PUBLIC: anyone, limited keys included
    assert api_client.get("/metrics", **bearer(limited)).status_code == 200
    assert api_client.get("/metrics").status_code == 200
