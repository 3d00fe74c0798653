"""``/api/mcp-servers``: declare HTTP servers, list their tools live; stdio only from the admin."""

from __future__ import annotations

import pytest

from interfaces.connectors.models import MCPServer
from interfaces.keys.models import APIKey
from tests.factories import make_mcp_server
from tests.interfaces.http.conftest import SETTINGS_KEY, assert_error, bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def keys(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    return {
        "reader": APIKey.generate("reader", ["read"])[1],
        "admin": APIKey.generate("admin", ["admin"])[1],
        "other": APIKey.generate("other", ["admin"], resources=["mcp-servers:someone-else"])[1],
    }


def test_declare_a_server_and_see_its_tools(api_client, keys, mcp_http, monkeypatch):
    monkeypatch.setenv("ASTEROS_SECRET_MCP_API", "value-never-shown")
    body = {"name": "files", "url": mcp_http.url, "headers": {"Authorization": "env:ASTEROS_SECRET_MCP_API"}}

    made = api_client.post("/api/mcp-servers", body, format="json", **bearer(keys["admin"]))

    assert made.status_code == 201, made.content
    shown = made.json()
    assert shown["header_status"] == {"Authorization": "set"} and "value-never-shown" not in made.content.decode()
    assert shown["check_error"] == "" and "echo" in {t["name"] for t in shown["tools_snapshot"]}
    tools = api_client.get("/api/mcp-servers/files/tools", **bearer(keys["reader"]))
    assert tools.status_code == 200, tools.content
    add = next(t for t in tools.json()["tools"] if t["name"] == "add")
    assert add["listed_as"] == "mcp:files/add" and add["inputSchema"]["required"] == ["a", "b"]
    assert tools.json()["reachable"] is True
    listed = api_client.get("/api/tools", {"limit": 500}, **bearer(keys["reader"])).json()["results"]
    assert "mcp:files/echo" in {t["name"] for t in listed}
    one = api_client.get("/api/tools/mcp:files/echo", **bearer(keys["reader"]))
    assert one.status_code == 200 and one.json()["parameters"]["required"] == ["text"]


def test_an_unreachable_server_is_a_502_not_a_500(api_client, keys):
    make_mcp_server("gone")
    response = api_client.get("/api/mcp-servers/gone/tools", **bearer(keys["reader"]))
    error = assert_error(response, 502, "mcp_server_unreachable")
    assert "MCP server 'gone'" in error["message"] and error["details"]["server"] == "gone"
    assert_error(api_client.get("/api/mcp-servers/nobody/tools", **bearer(keys["reader"])), 404)


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"transport": "stdio", "url": ""}, "transport", "declared by an operator in the admin"),
        ({"command": "demo"}, "command", "declared by an operator in the admin"),
        ({"headers": {"Authorization": "plain-token"}}, "headers", "a reference, never a value"),
        ({"headers": {"Authorization": "env:DATABASE_URL"}}, "headers", "server's own secrets"),
        ({"headers": ["not", "an", "object"]}, "headers", "JSON object"),
        ({"url": "ftp://example.com/mcp"}, "url", "http"),
        ({"name": "Has Space"}, "name", "server name"),
        ({"call_timeout": 0}, "call_timeout", "more than 0"),
        ({"requires_approval": "amount >"}, "requires_approval", ""),
    ],
)
def test_bad_input_is_a_400_that_says_why(api_client, keys, body, field, says):
    base = {"name": "bad", "url": "https://mcp.example.com/mcp"}
    response = api_client.post("/api/mcp-servers", base | body, format="json", **bearer(keys["admin"]))
    details = assert_error(response, 400, "invalid")["details"]
    assert field in details and says in " ".join(map(str, details[field])), details
    assert not MCPServer.objects.exists()


def test_a_stdio_row_from_the_admin_keeps_its_command_over_the_api(api_client, keys, stdio_command):
    make_mcp_server("local", transport="stdio", command=stdio_command, url="")
    http = make_mcp_server("remote")
    admin = bearer(keys["admin"])

    for body in ({"command": "demo"}, {"transport": "stdio"}):
        details = assert_error(api_client.patch("/api/mcp-servers/local", body, format="json", **admin), 400)["details"]
        assert "declared by an operator in the admin" in str(details)
    to_stdio = {"transport": "stdio", "url": ""}
    refused = api_client.patch(f"/api/mcp-servers/{http.name}", to_stdio, format="json", **admin)
    assert "transport" in assert_error(refused, 400)["details"]
    disabled = api_client.patch("/api/mcp-servers/local", {"enabled": False}, format="json", **admin)

    assert disabled.status_code == 200, disabled.content
    assert (disabled.json()["command"], disabled.json()["transport"], disabled.json()["enabled"]) == (
        stdio_command,
        "stdio",
        False,
    )


def test_auth_denied(api_client, keys):
    make_mcp_server("files")
    assert_error(api_client.get("/api/mcp-servers"), 401, "not_authenticated")
    assert_error(api_client.get("/api/mcp-servers/files/tools"), 401, "not_authenticated")
    body = {"name": "more", "url": "https://mcp.example.com/mcp"}
    assert_error(api_client.post("/api/mcp-servers", body, format="json", **bearer(keys["reader"])), 403)
    assert_error(api_client.delete("/api/mcp-servers/files", **bearer(keys["reader"])), 403)
    assert_error(api_client.get("/api/mcp-servers/files/tools", **bearer(keys["other"])), 404)
    assert MCPServer.objects.filter(pk="files").exists()
