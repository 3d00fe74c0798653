// The official MCP TypeScript SDK's client against AsterOS's /mcp (2025-11-25, the revision this
// SDK speaks): list the tools, call one with progress, read its run as a resource, and be refused
// without a key. Usage: node mcp_client.mjs <base url> <key> <tool> <message>
// Prints one JSON report; exits 1 if a check failed.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [base, key, tool, message] = process.argv.slice(2);
const problems = [];
const expect = (condition, text) => {
  if (!condition) problems.push(text);
};

function connect(withKey) {
  const headers = withKey ? { Authorization: `Bearer ${withKey}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", base), { requestInit: { headers } });
  const client = new Client({ name: "asteros-tests", version: "1.0.0" });
  return { client, transport };
}

const report = { problems };
try {
  const { client, transport } = connect(key);
  await client.connect(transport);
  report.server = client.getServerVersion();
  const { tools } = await client.listTools();
  report.tools = tools.map((t) => t.name);
  const listed = tools.find((t) => t.name === tool);
  expect(listed, `tools/list has no ${tool}`);
  expect(listed?.inputSchema?.required?.includes("message"), `${tool}'s input schema does not require message`);

  const progress = [];
  const result = await client.callTool({ name: tool, arguments: { message } }, undefined, {
    onprogress: (p) => progress.push(p),
    resetTimeoutOnProgress: true,
  });
  report.answer = result.content.map((block) => block.text ?? "").join("");
  report.progress = progress;
  report.isError = Boolean(result.isError);
  report.run = result.structuredContent;
  expect(!result.isError, `the call failed: ${report.answer}`);
  expect(progress.length > 1, `only ${progress.length} progress notifications`);
  expect(progress.map((p) => p.message ?? "").join("") === report.answer, "the progress tokens do not make the answer");

  const read = await client.readResource({ uri: `asteros://runs/${result.structuredContent?.run_id}` });
  const document = JSON.parse(read.contents[0].text);
  report.resourceStatus = document.status;
  expect(document.status === "succeeded", `the run resource says ${document.status}`);
  await client.close();
} catch (error) {
  problems.push(`unexpected: ${error?.stack ?? error}`);
}

try {
  const { client, transport } = connect(null);
  await client.connect(transport);
  problems.push("connected without a key");
  await client.close();
} catch (error) {
  report.withoutKey = { status: error?.code, message: String(error?.message ?? error) };
  expect(error?.code === 401, `without a key: ${report.withoutKey.message}`);
  expect(/not_authenticated/.test(report.withoutKey.message), `without a key: ${report.withoutKey.message}`);
}

console.log(JSON.stringify(report));
process.exit(problems.length ? 1 : 0);
