import json, pytest
from tests.workflows.helpers import scripted
from tests.factories import make_workflow
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]
def test_probe(api_client):
    a = scripted("<{input}>")
    wf = make_workflow(definition={"steps": [{"name": "a", "type": "agent", "agent": a.id}]})
    r = api_client.post(f"/api/workflows/{wf.id}/execute?wait=20", {"input": "hi"}, format="json")
    print(r.status_code, json.dumps(r.json(), indent=1)[:1500])
    r = api_client.post(f"/api/workflows/{wf.id}/execute", {"input": "hi"}, format="json")
    print(r.status_code, json.dumps(r.json(), indent=1)[:800])
    r = api_client.get(f"/api/workflows")
    print(r.status_code, json.dumps(r.json(), indent=1)[:800])
