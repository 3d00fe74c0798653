// One AG-UI run driven with the official client, checked the same way by every script here: a
// stream cut short still "resolves" in this client, so each run is asserted to open with
// RUN_STARTED, close with RUN_FINISHED exactly once, and never carry RUN_ERROR.

// The checks failed so far; a script prints them in its report and exits 1 if there are any.
export const problems = [];

export function expect(condition, message) {
  if (!condition) problems.push(message);
}

// Every event the client applied, the RUN_FINISHED details, and what the agent holds after.
export async function runOnce(name, agent, parameters = {}) {
  const events = [];
  let finished = null;
  let failure = null;
  try {
    await agent.runAgent(parameters, {
      onEvent({ event }) {
        events.push(event);
      },
      onRunFinishedEvent({ outcome, result, interrupts, pendingToolCallIds }) {
        finished = { outcome, result, interrupts, pendingToolCallIds };
      },
    });
  } catch (error) {
    failure = String(error?.message ?? error);
  }
  const types = events.map((event) => event.type);
  expect(failure === null, `${name}: runAgent failed: ${failure}`);
  expect(types[0] === "RUN_STARTED", `${name}: the first event is ${types[0]}, not RUN_STARTED`);
  expect(types.at(-1) === "RUN_FINISHED", `${name}: the last event is ${types.at(-1)}, not RUN_FINISHED`);
  expect(!types.includes("RUN_ERROR"), `${name}: the stream carries RUN_ERROR`);
  expect(types.filter((t) => t === "RUN_FINISHED").length === 1, `${name}: RUN_FINISHED is not sent exactly once`);
  const assistant = agent.messages.filter((m) => m.role === "assistant");
  return { events, types, finished, failure, assistant };
}
