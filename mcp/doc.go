// Package guardmcp puts an agentguard [toolguard.Guard] in front of MCP
// tools: in-process, in servers written with github.com/mark3labs/mcp-go,
// or as a proxy in front of any MCP server.
//
// # In-process
//
// [ServerOptions] installs the guard as mcp-go tool middleware and tool
// filter; [AddTool] registers a tool on the server and the guard at once:
//
//	g, err := toolguard.New(policy, toolguard.WithSink(log))
//	s := server.NewMCPServer("files", "1.0", guardmcp.ServerOptions(g)...)
//	err = guardmcp.AddTool(s, g, mcp.NewTool("read_text_file", ...), readTextFile)
//
// Every tools/call then runs the guard's whole pipeline — strict argument
// decoding, the tool's input schema, the policy, rate limits and the
// decision record — before the handler runs. A denial reaches the model as a
// CallToolResult with isError set and the reason as text; only a malfunction
// (the tool's own error, a panic, an outcome record that could not be
// written) is a JSON-RPC error. tools/list shows a principal only the tools
// some scope of theirs grants ([toolguard.Guard.Visible]); calling a tool
// that is not listed is still decided, recorded and denied. Tools the
// middleware cannot guard (not on the guard, task tools, session tools) are
// never listed, and calls to them are denied.
//
// # Who is calling
//
// The principal travels in the context. A [PrincipalFunc] establishes it per
// request: plug it into mcp-go's transports with [HTTPContextFunc] or
// [StdioContextFunc]. Over stdio it usually comes from configuration
// ([Static]); over HTTP from a bearer token, for example a JWT access token
// checked by a [JWTVerifier]:
//
//	keys, err := guardmcp.LoadJWTKeys("jwks.json")
//	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: "mcp", Issuer: "https://idp"})
//	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(v.PrincipalFunc())))
//
// A request without a valid principal sees no tools and every call it makes
// is denied, with the reason (an expired token, say) in the denial.
//
// # The proxy
//
// [NewProxy] fronts an upstream MCP server, reached through an mcp-go
// client over stdio or streamable HTTP. It re-serves the upstream's tools
// with their exact input schemas (read raw from tools/list), titles and
// annotations, guarded as above, and forwards calls with the validated
// arguments — never the caller's headers or token. Resources, resource
// templates, prompts and completions are forwarded; logging, resource
// update and other notifications are sent on to every connected client,
// progress notifications to the client whose call they belong to, and
// list-changed notifications make the proxy re-read the lists. Every request
// upstream is bounded by a timeout ([WithCallTimeout]).
//
// # Tool pinning
//
// With [WithLock] the proxy checks each upstream tool against a lock file of
// [ToolDigest]s (SHA-256 over the canonical JSON of name, description, input
// schema and annotations). A tool that is new or changed since the lock was
// written is hidden, and calls to it are denied with a decision record (rule
// "tool-lock") that says why, until the lock is rewritten on purpose.
//
// # Concurrency
//
// Everything here is safe for concurrent use once built.
package guardmcp
