"""The official JavaScript clients (tests/js: ``@ag-ui/client``, ``@modelcontextprotocol/sdk``, ``openai``),
run from Python tests as Node scripts that print one JSON report.

The scripts need ``node`` and ``npm`` (``npm ci`` installs the pinned clients into
tests/js/node_modules when one is missing); without them a test is skipped, except in CI (``CI``
set), where it fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.skips import skip_unless_in_ci

JS = Path(__file__).resolve().parents[1] / "js"
# One file of each pinned package: when one is missing, npm ci installs them all.
INSTALLED = ("@ag-ui/client/package.json", "@modelcontextprotocol/sdk/package.json", "openai/package.json")


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        skip_unless_in_ci(
            f"{tool} is not installed: the official JavaScript clients run on Node.js (apt-get install nodejs npm)"
        )
    return path


def install_clients() -> None:
    if all((JS / "node_modules" / path).exists() for path in INSTALLED):
        return
    npm = require("npm")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def run_node_script(script: str, *args: str, log: str = "") -> tuple[dict, str]:
    """Run tests/js/``script`` with ``args``; (its report once every check in it held, its stderr).
    ``log`` (the server's) is shown when the script printed no report."""
    node = require("node")
    install_clients()
    result = subprocess.run([node, script, *args], cwd=JS, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines, f"no report (exit {result.returncode}):\n{result.stderr[-3000:]}\n{log}"
    report = json.loads(lines[-1])
    assert result.returncode == 0 and not report["problems"], (report["problems"], result.stderr[-3000:])
    return report, result.stderr
