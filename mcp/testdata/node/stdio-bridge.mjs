// Serves a streamable HTTP MCP server over stdio, message for message, with
// the official TypeScript SDK's transports (no MCP logic of its own):
//   node stdio-bridge.mjs <url>
// Each process is one session with the HTTP server. Tests use it to put a
// server that only speaks HTTP behind a stdio upstream.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

// The HTTP server sends requests and notifications that belong to no
// request of the client (the reference server's elicitation and sampling
// requests, say) on the session's GET stream, and drops them, or keeps them
// for a reconnection, while that stream is not open. Over stdio they can be
// sent at any time after initialization, so the bridge opens the GET stream
// before it passes anything after notifications/initialized on.
let listening;
const listened = new Promise((resolve) => { listening = resolve; });
const up = new StreamableHTTPClientTransport(new URL(process.argv[2]), {
  fetch: async (url, init) => {
    const res = await fetch(url, init);
    if (init?.method === "GET") listening(); // the server has the stream (or said 405)
    return res;
  },
});
const down = new StdioServerTransport();
// Messages wait for the initialize request to be answered (the session id
// comes with its response), and then for the GET stream.
let initialized = Promise.resolve();
down.onmessage = (m) => {
  const sent = initialized.then(() => up.send(m));
  if (m.method === "initialize") initialized = sent.catch(() => {});
  if (m.method === "notifications/initialized") {
    const stream = Promise.race([listened, new Promise((resolve) => setTimeout(resolve, 10000))]);
    initialized = sent.then(() => stream, () => {});
  }
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
