// Drives an MCP server's resources and prompts over stdio with the official
// TypeScript SDK client:
//   node resources.mjs <plan.json> -- <command> [args...]
// plan.json is {"read": [uri...], "get": [{"name": "...", "arguments": {...}}]}.
// Prints one JSON object: {"resources": [uri...], "templates": [...],
// "prompts": [...], "reads": [{"ok": bool, "text": "..."}], "gets": [...]}.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const sep = process.argv.indexOf("--");
const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const [command, ...args] = process.argv.slice(sep + 1);
const transport = new StdioClientTransport({ command, args, stderr: "inherit" });
const client = new Client({ name: "agentguard-test", version: "1.0.0" });
await client.connect(transport);
const out = { resources: [], templates: [], prompts: [], reads: [], gets: [] };
out.resources = (await client.listResources()).resources.map((r) => r.uri).sort();
out.templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate).sort();
out.prompts = (await client.listPrompts()).prompts.map((p) => p.name).sort();
const attempt = async (f) => {
  try {
    const r = await f();
    return { ok: true, text: JSON.stringify(r).slice(0, 200) };
  } catch (e) {
    return { ok: false, text: String(e.message || e) };
  }
};
for (const uri of plan.read) {
  out.reads.push(await attempt(() => client.readResource({ uri })));
}
for (const g of plan.get) {
  out.gets.push(await attempt(() => client.getPrompt({ name: g.name, arguments: g.arguments })));
}
await client.close();
process.stdout.write(JSON.stringify(out));
