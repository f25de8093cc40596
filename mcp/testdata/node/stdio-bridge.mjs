// Serves a streamable HTTP MCP server over stdio, message for message, with
// the official TypeScript SDK's transports (no MCP logic of its own):
//   node stdio-bridge.mjs <url>
// Each process is one session with the HTTP server. Tests use it to put a
// server that only speaks HTTP behind a stdio upstream.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const up = new StreamableHTTPClientTransport(new URL(process.argv[2]));
const down = new StdioServerTransport();
// Messages wait for the initialize request to be answered: the session id
// comes with its response.
let initialized = Promise.resolve();
down.onmessage = (m) => {
  const sent = initialized.then(() => up.send(m));
  if (m.method === "initialize") initialized = sent.catch(() => {});
  sent.catch((e) => console.error("bridge: upstream:", e?.message || e));
};
up.onmessage = (m) => {
  if (m.result?.protocolVersion && up.setProtocolVersion) up.setProtocolVersion(m.result.protocolVersion);
  down.send(m).catch((e) => console.error("bridge: downstream:", e?.message || e));
};
up.onerror = (e) => console.error("bridge: upstream:", e?.message || e);
down.onclose = () => { up.close().finally(() => process.exit(0)); };
await up.start();
await down.start();
process.stdin.on("end", () => { up.close().finally(() => process.exit(0)); });
