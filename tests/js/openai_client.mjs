// The official openai Node client against AsterOS's OpenAI-compatible door: one streamed chat
// completion and one Responses API call. Usage: node openai_client.mjs <base url> <key> <model>
// Prints one JSON report; exits 1 if a check failed.
import OpenAI from "openai";

const [base, key, model] = process.argv.slice(2);
const problems = [];
const expect = (condition, text) => {
  if (!condition) problems.push(text);
};

const report = { problems };
try {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });

  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "hello from node" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  const finishes = [];
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      if (choice.finish_reason) finishes.push(choice.finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  report.chat = { text, finishes, usage };
  expect(text.includes("hello from node"), `the streamed text is ${JSON.stringify(text)}`);
  expect(finishes.length === 1 && finishes[0] === "stop", `finish reasons ${finishes}`);
  expect(usage && usage.completion_tokens > 0, "no usage chunk");

  const response = await client.responses.create({ model, input: "hello responses" });
  report.response = { id: response.id, status: response.status, text: response.output_text };
  expect(response.status === "completed", `status ${response.status}`);
  expect(response.output_text.includes("hello responses"), `output_text ${response.output_text}`);

  try {
    await new OpenAI({ baseURL: `${base}/v1`, apiKey: "not-a-key", maxRetries: 0 }).models.list();
    expect(false, "a bad key was accepted");
  } catch (error) {
    report.refused = { status: error.status, name: error.constructor.name };
    expect(error instanceof OpenAI.AuthenticationError, `a bad key gave ${error}`);
  }
} catch (error) {
  problems.push(`unexpected: ${error?.stack ?? error}`);
}
console.log(JSON.stringify(report));
process.exit(problems.length ? 1 : 0);
