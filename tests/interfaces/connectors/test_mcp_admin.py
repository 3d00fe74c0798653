"""The MCP server admin: declare one, see its tools read live, references never values."""

from __future__ import annotations

import pytest
from django.urls import reverse

from interfaces.connectors.models import MCPServer
from tests.factories import make_mcp_server

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ADD = reverse("admin:connectors_mcpserver_add")
LIST = reverse("admin:connectors_mcpserver_changelist")


def change(name: str) -> str:
    return reverse("admin:connectors_mcpserver_change", args=[name])


def form(**fields) -> dict:
    data = {"name": "files", "description": "", "enabled": "on", "transport": "http", "url": "", "command": ""}
    data |= {"connect_timeout": "5", "call_timeout": "30", "headers": "{}"}
    return data | {"requires_approval": "never", "tool_approvals": "{}"} | fields


def test_declaring_a_server_lists_its_tools(staff_client, mcp_http, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(ADD, form(url=mcp_http.url))
    assert response.status_code == 302, response.content[:3000]
    row = MCPServer.objects.get(pk="files")
    assert row.check_error == "" and "echo" in {t["name"] for t in row.tools_snapshot}

    page = staff_client.get(change("files")).content.decode()
    assert "Reachable" in page and "<code>mcp:files/add</code>" in page
    assert "a: integer (required), b: integer (required)" in page
    listed = staff_client.get(LIST).content.decode()
    assert "files" in listed and ">yes<" in listed


def test_the_change_page_reads_the_tools_live_and_shows_unreachable(staff_client, mcp_http):
    make_mcp_server("gone", url="http://127.0.0.1:9/mcp")
    page = staff_client.get(change("gone")).content.decode()
    assert "Unreachable" in page and "MCP server &#x27;gone&#x27;" in page

    MCPServer.objects.filter(pk="gone").update(url=mcp_http.url)
    page = staff_client.get(change("gone")).content.decode()  # no cache between the page and the server
    assert "Reachable" in page and "mcp:gone/echo" in page


def test_header_references_show_their_status_never_values(staff_client, monkeypatch):
    monkeypatch.setenv("ASTEROS_SECRET_MCP_ADMIN", "very-secret-value")
    headers = {"Authorization": "env:ASTEROS_SECRET_MCP_ADMIN", "X-Other": "env:ASTEROS_SECRET_MCP_MISSING"}
    make_mcp_server("refs", headers=headers)
    page = staff_client.get(change("refs")).content.decode()
    assert "env:ASTEROS_SECRET_MCP_ADMIN (set)" in page and "env:ASTEROS_SECRET_MCP_MISSING (not set)" in page
    assert "very-secret-value" not in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"headers": '{"Authorization": "plain-token"}'}, "a reference, never a value"),
        ({"headers": '{"Authorization": "env:SECRET_KEY"}'}, "server&#x27;s own secrets"),
        ({"url": "http://u:p@example.com/mcp"}, "No credentials in the URL"),
        ({"transport": "stdio", "command": "rm-rf"}, "Select a valid choice"),
        ({"transport": "stdio", "command": ""}, "Name one of the commands"),
        ({"tool_approvals": '{"echo": "amount >"}'}, "echo:"),
    ],
)
def test_bad_forms_say_why(staff_client, fields, message):
    url = "" if fields.get("transport") == "stdio" else "https://mcp.example.com/mcp"
    response = staff_client.post(ADD, form(**({"url": url} | fields)))
    assert response.status_code == 200 and message in response.content.decode()
    assert not MCPServer.objects.exists()


def test_command_is_a_choice_of_the_listed_names(staff_client, stdio_command, django_capture_on_commit_callbacks):
    page = staff_client.get(ADD).content.decode()
    assert f'<option value="{stdio_command}">' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(ADD, form(name="local", transport="stdio", command=stdio_command))
    assert response.status_code == 302
    assert "echo" in {t["name"] for t in MCPServer.objects.get(pk="local").tools_snapshot}


def test_the_check_now_action(staff_client, mcp_http):
    make_mcp_server("up", url=mcp_http.url)
    make_mcp_server("down")
    response = staff_client.post(LIST, {"action": "check_now", "_selected_action": ["up", "down"]}, follow=True)
    assert "Listed the tools of 1 of 2. Unreachable: down" in response.content.decode()
    assert MCPServer.objects.get(pk="up").tools_snapshot
