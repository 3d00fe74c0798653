"""One live AsterOS for the tests that need a real server: the official AG-UI client (Node), the
raw bytes on the wire, and headless Chromium on the dashboard.

``live_asteros()`` starts ``manage.py runserver --noreload`` (Daphne: HTTP and websockets, with
the embedded worker) once per test process, on a free port and a temporary SQLite database that is
migrated and seeded (the demo, an admin user, a few agents made for these tests), and stops it
when the process exits. Both test folders' ``live_asteros`` fixtures share it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ROOT, embedded_env, free_port, wait_for_200

ADMIN_USER = "admin"
ADMIN_PASSWORD = "live-admin-password-for-tests"

SEED = r"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from asteros_site.demo import ensure_admin, load_demo
load_demo()
ensure_admin("{user}", "{password}")
from cosmos.models import Agent
from workflows.models import Workflow
Agent.objects.update_or_create(id="agui-frontend", defaults=dict(
    name="Frontend tools", provider="scripted", model="scripted-offline",
    parameters={{"rules": [{{"when": r"background to (\w+)", "call": "change_background",
                             "arguments": {{"color": "$1"}}}}]}},
))
Agent.objects.update_or_create(id="agui-paced", defaults=dict(
    name="Paced", provider="scripted", model="scripted-offline",
    parameters={{"reply_tokens": 30, "tokens_per_second": 60}},
))
Agent.objects.update_or_create(id="agui-approval", defaults=dict(
    name="Asks first", provider="scripted", model="scripted-offline",
    tools=["calculator"], approvals={{"calculator": "always"}},
))
Workflow.objects.update_or_create(id="agui-flow", defaults=dict(
    name="One step", definition={{"steps": [{{"name": "first", "type": "agent", "agent": "chat-agent",
                                             "prompt": "{{{{ input }}}}"}}]}},
))
print("seeded")
"""


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    directory: Path

    def log(self) -> str:
        parts = []
        for name in ("stdout.log", "stderr.log"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text()[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


_lock = threading.Lock()
_server: LiveServer | None = None


def live_asteros() -> LiveServer:
    """The process's live server, started on first use."""
    global _server
    with _lock:
        if _server is not None and _server.process.poll() is None:
            return _server
        directory = Path(tempfile.mkdtemp(prefix="asteros-live-"))
        env = embedded_env(directory, ASTEROS_LOG_LEVEL="warning")
        seed = subprocess.run(
            [sys.executable, "-c", SEED.format(user=ADMIN_USER, password=ADMIN_PASSWORD)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if seed.returncode != 0:
            raise RuntimeError(f"seeding the live server's database failed:\n{seed.stderr[-4000:]}")
        port = free_port()
        with (directory / "stdout.log").open("w") as out, (directory / "stderr.log").open("w") as err:
            process = subprocess.Popen(
                # runserver (Daphne's, with the banner and the worker): it also serves the admin's
                # static files with DEBUG on, so the admin screenshots look like the admin.
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        server = LiveServer(f"http://127.0.0.1:{port}", process, directory)
        try:
            wait_for_200(f"{server.url}/admin/login/", process)
        except AssertionError as exc:
            log = server.log()
            server.stop()
            raise RuntimeError(f"the live server did not start: {exc}\n{log}") from None
        atexit.register(server.stop)
        _server = server
        return server
