"""The demo's MCP server: offline tools an agent of ``asteros demo`` calls over stdio.

Run by the server as ``python -m asteros_site.demo_mcp`` (the ``demo`` entry that
``ASTEROS_MCP_STDIO_COMMANDS`` allows by default); it needs no network and no key. It is built
with the official MCP SDK, like any MCP server a user would add.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

GLOSSARY = {
    "cosmos": "Cosmos manages agents: their definitions, revisions and runs.",
    "star": "A Star is a team of agents: a leader delegates to members, each member's share is a child run.",
    "workflow": "A Workflow composes agents and stars in steps: sequential, parallel, loops, routers, approvals.",
    "run": "A run is one durable execution, a database row executed by a worker; every event is numbered.",
    "interrupt": "An interrupt is a run waiting for a person: an approval or a question, answered from any door.",
    "mcp": "The Model Context Protocol: how agents reach tools, and how other agents reach ours (/mcp).",
}

# Factors to one base unit per dimension.
LENGTHS = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "mi": 1609.344}
WEIGHTS = {"g": 0.001, "kg": 1.0, "oz": 0.028349523125, "lb": 0.45359237}

server = MCPServer("asteros-demo", instructions="Offline demo tools: a glossary of AsterOS terms and units.")


@server.tool()
def glossary(term: str) -> str:
    """Explain an AsterOS term (cosmos, star, workflow, run, interrupt, mcp)."""
    key = term.strip().lower()
    if key not in GLOSSARY:
        key = key.removesuffix("s")  # "stars", "runs"
    if key in GLOSSARY:
        return GLOSSARY[key]
    return f"No entry for {term!r}. Known terms: {', '.join(sorted(GLOSSARY))}."


@server.tool()
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a length (mm, cm, m, km, in, ft, mi) or a weight (g, kg, oz, lb)."""
    for table in (LENGTHS, WEIGHTS):
        if from_unit in table and to_unit in table:
            result = value * table[from_unit] / table[to_unit]
            return f"{value:g} {from_unit} = {result:.6g} {to_unit}"
    return f"Cannot convert {from_unit!r} to {to_unit!r}: use two lengths ({', '.join(LENGTHS)}) or two weights."


if __name__ == "__main__":
    server.run("stdio")
