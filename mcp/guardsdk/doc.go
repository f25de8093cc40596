// Package guardsdk puts an agentguard [toolguard.Guard] in front of the
// tools of an MCP server built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), with the same guarantees as
// guardmcp gives servers built on mark3labs/mcp-go:
//
//   - tools/list shows each principal only the tools the policy lets them
//     see, and is marked private, since it differs between principals;
//   - every tools/call runs through [toolguard.Guard.Call] — strict argument
//     decoding, the input schema, the policy, limits, approvals and the
//     decision record — before the tool's handler runs. A denial becomes a
//     tool result with isError set and a model-readable reason;
//   - [ElicitationApprover] asks the human at the calling client, through
//     MCP elicitation, when the policy says to ask;
//   - each client's MCP session is the call's guard session
//     ([toolguard.WithSession]), so flow rules see what earlier calls of
//     that client did and never what another client did.
//
// Register tools with [AddTool] and install [Middleware] with
// mcp.Server.AddReceivingMiddleware.
package guardsdk
