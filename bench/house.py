"""Figures of the house: lines of code per room, arrows that point up, import circles.

    .venv/bin/python bench/house.py              # this tree
    .venv/bin/python bench/house.py /tmp/before  # another checkout (e.g. `git worktree add /tmp/before <rev>`)
    .venv/bin/python bench/house.py /tmp/before --as-laid-out  # its lines where they stood then

Lines are the non-blank lines of the app modules (migrations and tests left out). A module's
room is read from its name as the tree is laid out today; a checkout from before the split of
``interfaces`` (the modules of ``MOVED``) is counted in the room each module moved to, so the
two figures compare the same code (``--as-laid-out`` counts them where they stood instead).
An arrow points up when a module imports one in a room above its own or beside it (the order
of ``LAYERS``, then ``INTERFACE_LAYERS`` inside ``interfaces``; the doors do not import each
other); imports under ``TYPE_CHECKING`` are type hints and are left out, lazy imports count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grimp

PACKAGES = ("asteros_site", "interfaces", "workflows", "stars", "cosmos")
LAYERS = PACKAGES  # top first
# Inside interfaces, top first; rooms on one line are siblings. `ws` carries AG-UI over websockets.
INTERFACE_LAYERS = (("ws",), ("http", "a2a", "agui"), ("console",), ("connectors",), ("edge",), ("keys",))
# Below the rest of cosmos, free of Django: the agent runtime, then the outbound client it uses.
COSMOS_FLOOR = ("cosmos.runtime", "cosmos.outbound")

# Where the modules of interfaces went when it was split into rooms (old name -> new name).
MOVED = {
    "interfaces.http.auth": "interfaces.edge.auth",
    "interfaces.http.permissions": "interfaces.edge.permissions",
    "interfaces.http.errors": "interfaces.edge.errors",
    "interfaces.http.sse": "interfaces.edge.sse",
    "interfaces.http.parsers": "interfaces.edge.parsers",
    "interfaces.http.body": "interfaces.edge.body",
    "interfaces.http.params": "interfaces.edge.params",
    "interfaces.http.middleware": "interfaces.edge.middleware",
    "interfaces.http.links": "interfaces.edge.links",
    "interfaces.a2a.targets": "interfaces.edge.targets",
    "interfaces.health": "interfaces.http.health",
    "interfaces.models": "interfaces.keys.models",
    "interfaces.quotas": "interfaces.keys.quotas",
    "interfaces.admin": "interfaces.keys.admin",
    "interfaces.a2a.models": "interfaces.connectors.models",
    "interfaces.a2a.remote": "interfaces.connectors.remote",
    "interfaces.a2a.declared": "interfaces.connectors.declared",
    "interfaces.a2a.admin": "interfaces.connectors.admin",
    "interfaces.a2a.resources": "interfaces.http.remote_agents",
    "interfaces.dashboard": "interfaces.console",
    "interfaces.dashboard.services": "interfaces.console.services",
    "interfaces.dashboard.urls": "interfaces.console.urls",
    "interfaces.dashboard.views": "interfaces.console.views",
    "interfaces.admin_live": "interfaces.console.admin_live",
    "interfaces.registry": "interfaces.http.registry",
    "interfaces.routing": "interfaces.ws.routing",
    "interfaces.asteros": "asteros_site.system",
    "interfaces.serving": "asteros_site.serving",
    "interfaces.banner": "asteros_site.banner",
    "interfaces.demo": "asteros_site.demo",
    "interfaces.daphne_server": "asteros_site.daphne_server",
    "interfaces.uvicorn_server": "asteros_site.uvicorn_server",
    "interfaces.management": "asteros_site.management",
    "interfaces.management.commands": "asteros_site.management.commands",
    "interfaces.management.commands.asteros": "asteros_site.management.commands.asteros",
    "interfaces.management.commands.runserver": "asteros_site.management.commands.runserver",
    "interfaces.urls": "asteros_site.routes",
}


AS_LAID_OUT = "--as-laid-out" in sys.argv


def room(module: str) -> str:
    """``cosmos``, ``cosmos.runtime``, ``interfaces.edge``, ``interfaces`` (its own modules), …"""
    if not AS_LAID_OUT:
        module = MOVED.get(module, module)
    parts = module.split(".")
    if parts[0] == "interfaces" and len(parts) > 1 and any(parts[1] in rooms for rooms in INTERFACE_LAYERS):
        return ".".join(parts[:2])
    if parts[:2] in (["cosmos", "runtime"], ["cosmos", "outbound"]):
        return ".".join(parts[:2])
    return parts[0]


def rank(module: str) -> tuple[int, int] | None:
    """The position of a module's room, top first: (layer, room inside interfaces)."""
    where = room(module)
    top = where.split(".")[0]
    if top not in LAYERS or module.endswith(".apps"):  # an AppConfig's ready() wires its own app
        return None
    inner = 0
    if where == "interfaces":
        inner = len(INTERFACE_LAYERS)  # its own modules (the Interface base, the app) are its floor
    elif where in COSMOS_FLOOR:
        inner = 1 + COSMOS_FLOOR.index(where)
    elif top == "interfaces":
        name = where.split(".")[1]
        inner = next((i for i, rooms in enumerate(INTERFACE_LAYERS) if name in rooms), -1)
        if inner < 0:
            return None
    return (LAYERS.index(top), inner)


def lines_per_room(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            text = path.read_text(encoding="utf-8")
            counts[room(module)] += sum(1 for line in text.splitlines() if line.strip())
    return counts


def arrows_up(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Imports of a room above, or of a sibling room (the doors are independent of each other)."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            low, high = rank(importer), rank(imported)
            if low is None or high is None or room(importer) == room(imported):
                continue
            if high <= low:
                found.append((importer, imported))
    return found


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def main(root: Path) -> None:
    counts = lines_per_room(root)
    total = sum(counts.values())
    print(f"lines of app code in {root}: {total}")
    packages: Counter[str] = Counter()
    for name, count in counts.items():
        packages[name.split(".")[0]] += count
    print("  per app: " + ", ".join(f"{name} {100 * count / total:.1f}%" for name, count in packages.most_common()))
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {count:>6}  {100 * count / total:5.1f}%")
    # grimp imports the packages from the checkout given, not from this one.
    script = (
        "import sys, grimp; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "import house;"
        "g = grimp.build_graph(*house.PACKAGES, exclude_type_checking_imports=True);"
        "up = house.arrows_up(g); cs = house.circles(g);"
        "print(f'arrows pointing up: {len(up)}'); [print('  ', a, '->', b) for a, b in up];"
        "print(f'import circles: {len(cs)}'); [print('  ', ' <-> '.join(c)) for c in cs]"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    arguments = [str(root), str(Path(__file__).parent), *(["--as-laid-out"] if AS_LAID_OUT else [])]
    subprocess.run([sys.executable, "-c", script, *arguments], env=env, check=True)


if __name__ == "__main__":
    folders = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    main(Path(folders[0] if folders else Path(__file__).resolve().parent.parent).resolve())
