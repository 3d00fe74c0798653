"""``AGUIInterface``: the AG-UI endpoint as an Interface plugin (the seed's AddInterface)."""

from __future__ import annotations

import pytest

from asteros_site.system import AsterOS, resolve_interface
from cosmos.cosmos import Cosmos
from interfaces.agui import AGUIInterface


@pytest.mark.django_db
def test_it_announces_the_endpoint_of_everything_registered():
    os_ = AsterOS(name="AGUI", cosmos=Cosmos())
    os_.register_agent("agui-plugin-agent", {"provider": "scripted"})
    interface = os_.add_interface(AGUIInterface())
    os_.start()
    assert interface.os is os_ and interface.type == "agui" and interface.name == "agui"
    assert interface.endpoints == {"agent:agui-plugin-agent": "/agui/agents/agui-plugin-agent"}
    os_.register_workflow(
        "agui-plugin-flow",
        {"definition": {"steps": [{"name": "s", "type": "agent", "agent": "agui-plugin-agent", "prompt": "x"}]}},
    )
    assert interface.endpoints["workflow:agui-plugin-flow"] == "/agui/workflows/agui-plugin-flow"
    os_.stop()


def test_it_can_be_named_in_asteros_interfaces():
    assert isinstance(resolve_interface("interfaces.agui.AGUIInterface"), AGUIInterface)
