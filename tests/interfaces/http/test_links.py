"""Links are reversed from the REST door's named routes, so they follow ASTEROS_API_PREFIX.

With the prefix ``/v1/api``, every link an answer gives is followed by a real client to a 200
(the run's websocket link is the websocket door's, covered in tests/interfaces/ws).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from django.test.utils import override_settings

from asteros_site import urls as root_urls
from interfaces.http import urls as http_urls
from tests.factories import make_agent
from tests.support.runs import run_links

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("asteros_site", "interfaces", "cosmos", "stars", "workflows")


@pytest.fixture
def v1_api(settings_options):
    """The REST door served under /v1/api (its URLconf is built from the prefix, as at start)."""
    settings_options(api_prefix="/v1/api")
    urlconf = ModuleType("v1_api_urls")
    urlconf.urlpatterns = http_urls.build_urlpatterns()
    urlconf.handler404 = root_urls.handler404
    with override_settings(ROOT_URLCONF=urlconf):
        yield


@pytest.mark.django_db
def test_links_follow_a_non_default_prefix(api_client, v1_api):
    root = api_client.get("/v1/api/").json()  # a trailing slash under the prefix reaches the root too
    assert root["resources"]["agents"] == "http://testserver/v1/api/agents"
    assert root["links"]["schema"] == "http://testserver/v1/api/schema"
    assert root["links"]["docs"] == "http://testserver/v1/api/docs"
    for url in [*root["resources"].values(), root["links"]["schema"], root["links"]["docs"]]:
        assert api_client.get(url).status_code == 200, url

    agent = make_agent()
    started = api_client.post(f"/v1/api/agents/{agent.id}/run", {"input": "hi"}, format="json")
    assert started.status_code == 202, started.content
    run = started.json()
    base = f"http://testserver/v1/api/runs/{run['id']}"
    assert run["links"] == run_links(run["id"], api="http://testserver/v1/api")
    assert started["Location"] == base
    assert api_client.get(run["links"]["self"]).json()["id"] == run["id"]
    page = api_client.get(run["links"]["events"] + "?limit=1").json()
    assert page["next"] == f"{base}/events?after={page['last_seq']}&limit=1"
    assert api_client.get(page["next"]).status_code == 200
    assert api_client.post(run["links"]["cancel"]).status_code == 202
    listed = api_client.get(root["resources"]["runs"]).json()["results"]
    assert [r["links"]["self"] for r in listed] == [base]
    stream = api_client.get(run["links"]["stream"])  # over (cancelled): the stream ends
    assert stream.status_code == 200 and stream["Content-Type"].startswith("text/event-stream")
    stream.close()


def test_the_api_prefix_is_read_in_one_place():
    readers = {
        str(path.relative_to(ROOT))
        for source in SOURCES
        for path in (ROOT / source).rglob("*.py")
        if "ASTEROS.api_prefix" in path.read_text()
    }
    assert readers == {"interfaces/http/urls.py"}
