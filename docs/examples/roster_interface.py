"""An example AsterOS interface: a JSON roster of everything registered, kept in a file.

Other programs on the machine (a launcher, a status bar, a sidecar) can read the file to learn
which agents, stars and workflows this AsterOS serves, without calling the API. It shows every
part of the ``Interface`` contract in a few lines:

- ``start(os)`` writes an empty roster (or a fresh one, when the OS starts again);
- ``on_agent_registered`` / ``on_stars_registered`` / ``on_workflow_registered`` add an entry
  and rewrite the file atomically, so a reader never sees half a file;
- ``stop()`` removes the file.

To use it, copy this module into one of your apps (say ``myapp/roster.py``) and either list it
in the environment::

    ASTEROS_INTERFACES=myapp.roster.RosterInterface

or add it in code, for instance in ``myapp/asteros.py``::

    from asteros_site.system import default_os
    from myapp.roster import RosterInterface

    default_os().add_interface(RosterInterface("/run/asteros/roster.json"))

Added to a running OS, it is started at once and told about everything already registered.
"""

from __future__ import annotations

import json
import os as os_module
import tempfile
import threading
from pathlib import Path
from typing import Any

from interfaces.base import Interface

DEFAULT_PATH = "asteros-roster.json"


class RosterInterface(Interface):
    name = "roster"
    type = "roster"

    def __init__(self, path: str | os_module.PathLike | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.path = Path(path or os_module.environ.get("ASTEROS_ROSTER_PATH", DEFAULT_PATH))
        self._lock = threading.Lock()
        self._roster: dict[str, Any] = {}

    def start(self, os) -> None:
        super().start(os)
        with self._lock:
            self._roster = {"os": os.name, "agents": {}, "stars": {}, "workflows": {}}
            self._write()

    def stop(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)

    def on_agent_registered(self, agent_id: str, agent: Any) -> None:
        self._add("agents", agent_id, agent)

    def on_stars_registered(self, stars_id: str, stars: Any) -> None:
        self._add("stars", stars_id, stars)

    def on_workflow_registered(self, workflow_id: str, workflow: Any) -> None:
        self._add("workflows", workflow_id, workflow)

    def _add(self, section: str, object_id: str, row: Any) -> None:
        with self._lock:
            self._roster[section][object_id] = {
                "name": getattr(row, "name", "") or object_id,
                "description": getattr(row, "description", ""),
            }
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".roster-", suffix=".json")
        with os_module.fdopen(handle, "w") as out:
            json.dump(self._roster, out, indent=2, sort_keys=True)
        os_module.replace(temporary, self.path)
