#!/usr/bin/env python
"""The local model server for the benchmarks: ``tests/support/model_server.py`` with TCP_NODELAY.

    python bench/model_server.py --port 8765 [--latency-ms 0] [--tokens-per-second 0] [--reply-tokens 0]

Same server, same options. The only change: the listening socket is created with
``IPPROTO_TCP``. ``ServerThread`` creates it with protocol 0, so asyncio's transports, which
set ``TCP_NODELAY`` only on sockets whose ``proto`` is ``IPPROTO_TCP``, leave Nagle's
algorithm on for every accepted connection. With many small SSE writes on a reused
(keep-alive) connection that costs ~40 ms per model call (Nagle waiting for the client's
delayed ACK), the same for every client, which would drown what the benchmarks measure.
"""

from __future__ import annotations

import socket
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import model_server


def _tcp_socket(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    return socket.socket(family, kind, proto or socket.IPPROTO_TCP)


# The module's own reference to ``socket``, and only that one, sees the patched constructor.
_shim = types.ModuleType("socket")
_shim.__dict__.update({k: getattr(socket, k) for k in dir(socket) if not k.startswith("__")})
_shim.socket = _tcp_socket
model_server.socket = _shim


if __name__ == "__main__":
    model_server.main()
