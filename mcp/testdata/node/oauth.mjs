// Drives the official TypeScript SDK client's OAuth flow against an MCP
// server over streamable HTTP:
//   node oauth.mjs <server URL>
// The first connect gets a 401; the SDK discovers the authorization server
// from the challenge and the Protected Resource Metadata, registers, and
// "redirects" the user to the authorization endpoint. The script plays the
// user (it follows the authorization URL, which redirects back with a
// code), finishes the flow (token request with PKCE), connects again with
// the token and lists and calls. It prints one JSON object: every request
// the SDK made (method, URL, status), the authorization URL, and what the
// authorized session saw. Tokens are never printed.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const serverUrl = new URL(process.argv[2]);
const redirect = "http://127.0.0.1:9/callback";
const out = { requests: [] };

const loggingFetch = async (url, init) => {
  const res = await fetch(url, init);
  out.requests.push({ method: init?.method || "GET", url: String(url), status: res.status,
    wwwAuthenticate: res.headers.get("www-authenticate") || undefined });
  return res;
};

const store = {};
let authorizationUrl;
const provider = {
  get redirectUrl() { return redirect; },
  get clientMetadata() {
    return { client_name: "agentguard-oauth-test", redirect_uris: [redirect],
      grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "none" };
  },
  state: () => "test-state",
  clientInformation: () => store.client,
  saveClientInformation: (c) => { store.client = c; },
  tokens: () => store.tokens,
  saveTokens: (t) => { store.tokens = t; out.tokenScope = t.scope; },
  redirectToAuthorization: (u) => { authorizationUrl = u; },
  saveCodeVerifier: (v) => { store.verifier = v; },
  codeVerifier: () => store.verifier,
};

const transport = () => new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: loggingFetch });

// 1. Unauthorized: the SDK starts its flow from the 401.
let t = transport();
try {
  await new Client({ name: "oauth-test", version: "1" }).connect(t);
  out.first = "connected";
} catch (e) {
  out.first = e instanceof UnauthorizedError ? "unauthorized" : String(e);
}
out.authorizationUrl = authorizationUrl?.href;
if (!authorizationUrl) {
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

// 2. The user approves: the authorization server redirects back with a code.
const approval = await fetch(authorizationUrl, { redirect: "manual" });
const back = new URL(approval.headers.get("location"));
out.returnedState = back.searchParams.get("state");
await t.finishAuth(back.searchParams.get("code"));

// 3. Connected with the token.
t = transport();
const client = new Client({ name: "oauth-test", version: "1" });
await client.connect(t);
out.tools = (await client.listTools()).tools.map((x) => x.name).sort();
const r = await client.callTool({ name: "echo", arguments: { message: "hello through OAuth" } });
out.call = { isError: !!r.isError, text: (r.content || []).map((x) => x.text || "").join("\n") };
await client.close();
process.stdout.write(JSON.stringify(out));
