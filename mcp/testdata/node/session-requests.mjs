// A streamable HTTP MCP server, built with the official TypeScript SDK, whose
// tools send their elicitation and sampling requests the way the MCP
// conformance suite's reference server does: not tied to the call (no
// relatedRequestId), so that the SDK sends them on the session's GET stream.
//   PORT=NNNN node session-requests.mjs
// Tools: ask (elicitation/create) and sample (sampling/createMessage); each
// returns the client's answer as text. Two resources, listed out of the order
// of their names, for the test of list order. One McpServer per session.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

function newServer() {
  const s = new McpServer({ name: "session-requests", version: "1.0.0" });
  s.registerTool("ask", { description: "Asks the user for a name." }, async () => {
    const r = await s.server.elicitInput({
      message: "Your name?",
      requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
    });
    return { content: [{ type: "text", text: `${r.action}: ${r.content?.name ?? ""}` }] };
  });
  s.registerTool("sample", { description: "Asks the client's model." }, async () => {
    const r = await s.server.createMessage({
      messages: [{ role: "user", content: { type: "text", text: "hi" } }],
      maxTokens: 10,
    });
    return { content: [{ type: "text", text: `sampled: ${r.content?.text ?? ""}` }] };
  });
  for (const [name, uri] of [["zeta", "test://z"], ["alpha", "test://a"]]) {
    s.registerResource(name, uri, { mimeType: "text/plain" }, async () => ({ contents: [{ uri, text: name }] }));
  }
  return s;
}

const transports = new Map();

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
}

createServer(async (req, res) => {
  try {
    const sid = req.headers["mcp-session-id"];
    const body = req.method === "POST" ? await readBody(req) : undefined;
    let t = sid && transports.get(sid);
    if (!t && req.method === "POST" && !sid && isInitializeRequest(body)) {
      t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, t),
      });
      t.onclose = () => transports.delete(t.sessionId);
      await newServer().connect(t);
    }
    if (!t) {
      res.writeHead(400).end("no such session");
      return;
    }
    await t.handleRequest(req, res, body);
  } catch (e) {
    console.error("session-requests:", e);
    if (!res.headersSent) res.writeHead(500).end();
  }
}).listen(Number(process.env.PORT), "127.0.0.1");
