"""The shape of the house, checked on the code itself.

- No import circle among the project's modules: every strongly connected component of the
  import graph is a single module. An import inside a function counts (it is an arrow all the
  same); one under ``if TYPE_CHECKING:`` does not (it is a type hint, never run).
- Imports point down the layers: the import-linter contracts of ``pyproject.toml`` hold
  (``asteros_site > interfaces > workflows > stars > cosmos``, the rooms of ``interfaces``, the
  run lifecycle, a Django-free runtime).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("asteros_site", "interfaces", "workflows", "stars", "cosmos")


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import each other, directly or not (sorted, largest first).

    A module's circle is the modules it imports (transitively) that also import it back.
    """
    circles: list[list[str]] = []
    seen: set[str] = set()
    for module in sorted(graph.modules):
        if module in seen:
            continue
        circle = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if circle:
            members = sorted({module, *circle})
            seen.update(members)
            circles.append(members)
    return sorted(circles, key=lambda members: (-len(members), members))


def describe(graph: grimp.ImportGraph, circle: list[str]) -> str:
    """The arrows inside one circle, with their lines: ``a -> b (line 12)``."""
    inside = set(circle)
    arrows = []
    for importer in circle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & inside):
            lines = sorted(d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported))
            arrows.append(f"    {importer} -> {imported} (line {', '.join(map(str, lines))})")
    return "\n".join([f"  {len(circle)} modules: {', '.join(circle)}", *arrows])


def test_no_import_circle_among_the_projects_modules():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert len(graph.modules) > 100, "the graph should hold every module of the five packages"
    circles = import_circles(graph)
    assert not circles, "Import circles (break each one; see docs/architecture.md):\n" + "\n".join(
        describe(graph, circle) for circle in circles
    )


def test_the_circle_finder_finds_a_circle_and_only_the_circle():
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.e", "p.e2")]:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="import")
    assert import_circles(graph) == [["p.a", "p.b", "p.c"]]
    graph.add_import(importer="p.e2", imported="p.e", line_number=2, line_contents="import")
    assert import_circles(graph) == [["p.a", "p.b", "p.c"], ["p.e", "p.e2"]]


def test_imports_point_down_the_layers():
    """The import-linter contracts in pyproject.toml (the same check as ``make lint``)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    command = str(lint_imports) if lint_imports.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports (import-linter, in requirements-dev.txt) is not installed")
    result = subprocess.run(
        [command, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
