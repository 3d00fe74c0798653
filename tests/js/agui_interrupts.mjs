// Drives a live AsterOS's interrupts with the official AG-UI client (@ag-ui/client's HttpAgent):
// a run that waits for an approval finishes with the interrupt outcome, and the next run on the
// thread answers it in `resume` and receives the same run's continuation.
//
//   node agui_interrupts.mjs http://127.0.0.1:8080
//
// Prints one JSON report on the last line of stdout and exits 1 when a check failed.
// Called by tests/interfaces/agui/test_interrupts.py.

import { HttpAgent, randomUUID } from "@ag-ui/client";

import { expect, problems, runOnce } from "./agui_run.mjs";

const base = (process.argv[2] || "").replace(/\/$/, "");
if (!base) {
  console.error("usage: node agui_interrupts.mjs <base url>");
  process.exit(2);
}

const report = { problems };

async function run(name, agent, parameters = {}) {
  const { events, types, finished, failure, assistant } = await runOnce(name, agent, parameters);
  const result = {
    types,
    finished,
    failure,
    runId: events.find((e) => e.type === "RUN_STARTED")?.runId,
    lastText: assistant.at(-1)?.content || "",
    toolResults: events.filter((e) => e.type === "TOOL_CALL_RESULT").map((e) => e.content),
    pendingInterrupts: agent.pendingInterrupts.map((i) => i.id),
  };
  report[name] = result;
  return result;
}

const agent = new HttpAgent({
  url: `${base}/agui/agents/agui-approval`,
  threadId: `node-${randomUUID()}`,
  initialMessages: [{ id: randomUUID(), role: "user", content: "what is 6*7?" }],
});

const first = await run("paused", agent);
expect(first.finished?.outcome === "interrupt", `paused: outcome ${first.finished?.outcome}`);
expect(first.toolResults.length === 0, "paused: the call ran before anyone approved it");
const interrupts = first.finished?.interrupts ?? [];
expect(interrupts.length === 1, `paused: ${interrupts.length} interrupts`);

// The client refuses to go on without an answer to every pending interrupt.
let refused = null;
try {
  await agent.runAgent({});
} catch (error) {
  refused = String(error?.message ?? error);
}
expect(refused !== null && refused.includes("pending interrupt"), `unanswered: ${refused}`);

const resume = interrupts.map((i) => ({ interruptId: i.id, status: "resolved", payload: { decision: "approve" } }));
const second = await run("resumed", agent, { resume });
expect(second.runId !== first.runId, "resumed: the continuation is a new AG-UI run");
expect(second.finished?.outcome === "success", `resumed: outcome ${second.finished?.outcome}`);
expect(second.toolResults.includes("42"), `resumed: tool results ${JSON.stringify(second.toolResults)}`);
expect(second.lastText === "The result is 42.", `resumed: got ${JSON.stringify(second.lastText)}`);

console.log(JSON.stringify(report));
process.exit(problems.length ? 1 : 0);
