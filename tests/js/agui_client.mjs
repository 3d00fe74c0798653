// Drives a live AsterOS with the official AG-UI client (@ag-ui/client's HttpAgent).
//
//   node agui_client.mjs http://127.0.0.1:8080
//
// Prints one JSON report on the last line of stdout and exits 1 when a check failed (every run is
// checked by agui_run.mjs: RUN_STARTED first, RUN_FINISHED once and last, no RUN_ERROR).
// Called by tests/interfaces/agui/test_live_client.py.

import { HttpAgent, randomUUID } from "@ag-ui/client";

import { expect, problems, runOnce } from "./agui_run.mjs";

const base = (process.argv[2] || "").replace(/\/$/, "");
if (!base) {
  console.error("usage: node agui_client.mjs <base url>");
  process.exit(2);
}

const report = { scenarios: {}, problems };

function agentFor(path, options = {}) {
  return new HttpAgent({ url: `${base}${path}`, threadId: `node-${randomUUID()}`, ...options });
}

function userMessage(content) {
  return { id: randomUUID(), role: "user", content };
}

// One run (agui_run.mjs), and what this script reads of it.
async function run(name, agent, parameters = {}) {
  const { events, types, finished, failure, assistant } = await runOnce(name, agent, parameters);
  const result = {
    types,
    finished,
    failure,
    text: assistant.map((m) => m.content || "").join(""),
    lastText: assistant.at(-1)?.content || "",
    toolCalls: assistant.flatMap((m) => m.toolCalls || []),
    toolMessages: agent.messages.filter((m) => m.role === "tool").map((m) => ({ toolCallId: m.toolCallId, content: m.content })),
    state: agent.state,
    threadId: agent.threadId,
  };
  report.scenarios[name] = result;
  return result;
}

// 1. Plain text: the assistant message the client assembles from the deltas.
{
  const agent = agentFor("/agui/agents/chat-agent", { initialMessages: [userMessage("hello from node")] });
  const r = await run("text", agent);
  expect(r.lastText === "(offline scripted model) You said: hello from node", `text: got ${JSON.stringify(r.lastText)}`);
}

// 2. A server-side tool call: its arguments parse, its result arrives in the stream.
{
  const agent = agentFor("/agui/agents/chat-agent", { initialMessages: [userMessage("What is 6 * 7?")] });
  const r = await run("server_tool", agent);
  const call = r.toolCalls.find((c) => c.function.name === "calculator");
  let args = null;
  try {
    args = JSON.parse(call?.function.arguments ?? "");
  } catch {
    args = null;
  }
  r.arguments = args;
  expect(call !== undefined, "server_tool: no calculator tool call");
  expect(args !== null && typeof args === "object", `server_tool: arguments do not parse: ${call?.function.arguments}`);
  expect(r.toolMessages.some((m) => m.content === "42"), "server_tool: no tool result 42");
  expect(r.lastText === "The result is 42.", `server_tool: got ${JSON.stringify(r.lastText)}`);
}

// 3. A frontend tool round trip: the run stops on the client's tool, the client answers, the run continues.
{
  const tools = [
    {
      name: "change_background",
      description: "Change the page's background colour.",
      parameters: { type: "object", properties: { color: { type: "string" } }, required: ["color"] },
    },
  ];
  const agent = agentFor("/agui/agents/agui-frontend", { initialMessages: [userMessage("please set the background to blue")] });
  const first = await run("frontend_tool_call", agent, { tools });
  const pending = first.finished?.pendingToolCallIds ?? [];
  expect(pending.length === 1, `frontend_tool_call: pending tool calls ${JSON.stringify(pending)}`);
  const call = first.toolCalls.find((c) => c.id === pending[0]);
  expect(call?.function.name === "change_background", "frontend_tool_call: the pending call is not change_background");
  expect(first.toolMessages.length === 0, "frontend_tool_call: the server answered the client's tool itself");
  let args = {};
  try {
    args = JSON.parse(call?.function.arguments ?? "{}");
  } catch {
    problems.push("frontend_tool_call: arguments do not parse");
  }
  first.arguments = args;
  // The application executes its tool and answers with a tool message; the next run continues.
  agent.addMessage({ id: randomUUID(), role: "tool", toolCallId: pending[0], content: `background set to ${args.color}` });
  const second = await run("frontend_tool_result", agent, { tools });
  expect(second.lastText === "The result is background set to blue.", `frontend_tool_result: got ${JSON.stringify(second.lastText)}`);
  expect((second.finished?.pendingToolCallIds ?? []).length === 0, "frontend_tool_result: still pending calls");
}

// 4. State: the snapshot the server sends is applied, and a workflow's deltas patch it.
{
  const agent = agentFor("/agui/agents/chat-agent", {
    initialMessages: [userMessage("keep my settings")],
    initialState: { theme: "dark", count: 2 },
  });
  const r = await run("state", agent);
  expect(r.types.includes("STATE_SNAPSHOT"), "state: no STATE_SNAPSHOT");
  expect(JSON.stringify(r.state) === JSON.stringify({ theme: "dark", count: 2 }), `state: ${JSON.stringify(r.state)}`);

  // A new client on the same thread, with no state of its own, gets the thread's state back.
  const reloaded = new HttpAgent({
    url: `${base}/agui/agents/chat-agent`,
    threadId: agent.threadId,
    initialMessages: [userMessage("it is me again")],
  });
  const again = await run("state_restored", reloaded);
  expect(JSON.stringify(again.state) === JSON.stringify({ theme: "dark", count: 2 }), `state_restored: ${JSON.stringify(again.state)}`);

  const flow = agentFor("/agui/workflows/agui-flow", { initialMessages: [userMessage("plan it")], initialState: { budget: 3 } });
  const w = await run("workflow_state", flow);
  expect(w.types.includes("STATE_DELTA"), "workflow_state: no STATE_DELTA");
  expect(w.state?.steps?.first?.status === "succeeded", `workflow_state: ${JSON.stringify(w.state)}`);
  expect(w.state?.state?.budget === 3, `workflow_state: the input state is lost: ${JSON.stringify(w.state)}`);
}

// 5. A bad body is refused with an HTTP 4xx, before any stream.
{
  const response = await fetch(`${base}/agui/agents/chat-agent`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ runId: "r-1", messages: [{ role: "user" }] }),
  });
  const body = await response.text();
  report.scenarios.bad_body = { status: response.status, contentType: response.headers.get("content-type"), body };
  expect(response.status >= 400 && response.status < 500, `bad_body: status ${response.status}`);
  expect(!String(response.headers.get("content-type")).includes("event-stream"), "bad_body: answered with a stream");
}

console.log(JSON.stringify(report));
process.exit(problems.length ? 1 : 0);
