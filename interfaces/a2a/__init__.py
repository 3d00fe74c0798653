"""The A2A 1.0 interface: agent cards, JSON-RPC and HTTP+JSON bindings, streaming, tasks.

See docs/a2a.md. ``A2AInterface`` is the plugin; the routes live in ``interfaces.a2a.urls``.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy, so that importing ``interfaces.a2a.urls`` does not pull in the plugin machinery.
    if name == "A2AInterface":
        from interfaces.a2a.interface import A2AInterface

        return A2AInterface
    raise AttributeError(name)
