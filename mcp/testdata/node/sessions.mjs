// Drives a streamable HTTP MCP server with several clients of the official
// TypeScript SDK at once, each in its own MCP session:
//   node sessions.mjs <url> <calls.json>
// calls.json is [{"client": "A", "name": "...", "arguments": {...}}, ...]:
// the calls run in this order, each on the named client (connected on first
// use; every client stays connected until the end). Prints one JSON object:
// {"sessions": {"A": "<Mcp-Session-Id>", ...}, "calls": [{"client": "A",
// "isError": bool, "text": "..."}]}.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, callsFile] = process.argv.slice(2);
const calls = JSON.parse(readFileSync(callsFile, "utf8"));
const clients = new Map();
async function clientFor(name) {
  if (!clients.has(name)) {
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const client = new Client({ name: "agentguard-test-" + name, version: "1.0.0" });
    await client.connect(transport);
    clients.set(name, { client, transport });
  }
  return clients.get(name);
}
const out = { sessions: {}, calls: [] };
for (const c of calls) {
  const { client } = await clientFor(c.client);
  const r = await client.callTool({ name: c.name, arguments: c.arguments }, undefined, { timeout: 20000 });
  out.calls.push({ client: c.client, isError: !!r.isError, text: (r.content || []).map((x) => x.text || "").join("\n") });
}
for (const [name, { client, transport }] of clients) {
  out.sessions[name] = transport.sessionId || "";
  await client.close();
}
process.stdout.write(JSON.stringify(out));
