// One MCP client session over streamable HTTP with the official TypeScript
// SDK client, recording everything the server sends it:
//   node session-client.mjs <config.json>
// config: {"url", "name", "caps": {"sampling", "elicitation", "roots"},
//          "level", "ops": [{"op": "call"|"cancel"|"subscribe"|"unsubscribe"|"wait", ...}]}
// "cancel" starts a call with a progress token and aborts it after "afterMs".
// Prints one JSON object: tools, calls, logs, updates and the requests the
// server sent (sampling, elicitation, roots).
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const capabilities = {};
if (cfg.caps?.sampling) capabilities.sampling = {};
if (cfg.caps?.elicitation) capabilities.elicitation = {};
if (cfg.caps?.roots) capabilities.roots = {};
const client = new Client({ name: cfg.name, version: "1.0.0" }, { capabilities });
const out = { tools: [], calls: [], logs: [], updates: [], sampling: [], elicitation: [], roots: 0, progress: 0 };

if (cfg.caps?.sampling) {
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    out.sampling.push(JSON.stringify(req.params.messages));
    return { role: "assistant", content: { type: "text", text: "sampled by " + cfg.name }, model: "m-" + cfg.name, stopReason: "endTurn" };
  });
}
if (cfg.caps?.elicitation) {
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    out.elicitation.push(req.params.message);
    return { action: "accept", content: { name: "elicited by " + cfg.name, check: true } };
  });
}
if (cfg.caps?.roots) {
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    out.roots++;
    return { roots: [{ uri: "file:///roots-of-" + cfg.name, name: cfg.name }] };
  });
}
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
  out.logs.push({ level: n.params.level, data: typeof n.params.data === "string" ? n.params.data : JSON.stringify(n.params.data) });
});
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  out.updates.push(n.params.uri);
});

const text = (r) => (r.content || []).map((x) => x.text || "").join("\n");
await client.connect(new StreamableHTTPClientTransport(new URL(cfg.url)));
if (cfg.level) await client.setLoggingLevel(cfg.level);
out.tools = (await client.listTools()).tools.map((t) => t.name);
for (const op of cfg.ops || []) {
  try {
    switch (op.op) {
      case "call": {
        const r = await client.callTool({ name: op.name, arguments: op.arguments || {} }, undefined, { timeout: 30000 });
        out.calls.push({ isError: !!r.isError, text: text(r) });
        break;
      }
      case "cancel": {
        const ac = new AbortController();
        const started = Date.now();
        setTimeout(() => ac.abort("cancelled by " + cfg.name), op.afterMs);
        try {
          await client.callTool({ name: op.name, arguments: op.arguments || {} }, undefined, {
            signal: ac.signal, timeout: 60000, onprogress: () => { out.progress++; },
          });
          out.calls.push({ isError: false, text: "completed", ms: Date.now() - started });
        } catch (e) {
          out.calls.push({ isError: true, text: "aborted: " + String(e), ms: Date.now() - started });
        }
        break;
      }
      case "subscribe":
        await client.subscribeResource({ uri: op.uri });
        out.calls.push({ isError: false, text: "subscribed" });
        break;
      case "unsubscribe":
        await client.unsubscribeResource({ uri: op.uri });
        out.calls.push({ isError: false, text: "unsubscribed" });
        break;
      case "wait":
        await new Promise((r) => setTimeout(r, op.ms));
        break;
    }
  } catch (e) {
    out.calls.push({ isError: true, text: String(e) });
  }
}
await client.close();
process.stdout.write(JSON.stringify(out));
