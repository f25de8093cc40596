// Drives an MCP server over stdio with the official TypeScript SDK client:
//   node client.mjs <calls.json> -- <command> [args...]
// calls.json is [{"name": "...", "arguments": {...}}, ...]. Prints one JSON
// object: {"tools": [names...], "calls": [{"isError": bool, "text": "..."}]}.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const sep = process.argv.indexOf("--");
const calls = JSON.parse(readFileSync(process.argv[2], "utf8"));
const [command, ...args] = process.argv.slice(sep + 1);
const transport = new StdioClientTransport({ command, args, stderr: "inherit" });
const client = new Client({ name: "agentguard-test", version: "1.0.0" });
await client.connect(transport);
const out = { tools: [], calls: [] };
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
for (const c of calls) {
  const r = await client.callTool({ name: c.name, arguments: c.arguments }, undefined, { timeout: 20000 });
  out.calls.push({ isError: !!r.isError, text: (r.content || []).map((x) => x.text || "").join("\n") });
}
await client.close();
process.stdout.write(JSON.stringify(out));
