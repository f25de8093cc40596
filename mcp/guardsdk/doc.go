// Package guardsdk puts an agentguard [toolguard.Guard] in front of the
// tools, resources and prompts of an MCP server built on the official Go
// SDK (github.com/modelcontextprotocol/go-sdk), with the same guarantees as
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
//
// # Resources and prompts
//
// The policy's resource and prompt grants and rules (see the scope
// package) govern them; the middleware applies them to every method that
// carries them:
//
//   - resources/read is decided by URI with [toolguard.Guard.ReadResource]
//     and recorded before the server looks the resource up, so every read
//     is on the record, including one of a resource the server does not
//     have. The URI is decided in its canonical form ([scope.ParseURI]):
//     another spelling (case, localhost, dot segments, percent-encoding)
//     does not walk around a deny rule, and a URI whose meaning depends on
//     who reads it is denied;
//   - prompts/get is decided with the prompt's arguments
//     ([toolguard.Guard.GetPrompt]), which conditions read as args, and
//     recorded;
//   - resources/list, resources/templates/list and prompts/list keep only
//     what the principal is granted, and are marked private;
//   - completion/complete for a prompt or resource template the principal
//     is not granted answers no values, without asking the server;
//   - resources/subscribe, and subscriptions/listen of protocol
//     2026-07-28, reach the server only for resources the principal may
//     read. They are decided as a read is, but not recorded: a
//     subscription carries no content, and each read it prompts is decided
//     and recorded.
//
// A denied read, get or subscription is a JSON-RPC error -32602 (invalid
// params, as for a resource or prompt that does not exist) whose message
// is the reason, without Go package names. The records of reads and gets
// carry the client's guard session, as those of tool calls do.
//
// Resources and prompts are denied by default: under a policy without
// resource or prompt grants — every policy written before they were
// governed — nothing is listed and every read and get is denied. The
// middleware then logs a warning once, when a client connects to a server
// that offers resources or prompts ([WithLogger]).
//
// # Tasks
//
// [WithTaskVerifier] (with a *guardmcp.TaskVerifier) makes the middleware
// read a signed task from the _meta of every tools/call, resources/read
// and prompts/get, under [TaskMetaKey], as guardmcp does: a valid task
// narrows the request ([toolguard.WithTask]), and the handler gets the
// request without the token. A request whose task cannot be accepted — and
// without a verifier, any request carrying a task under "io.agentguard/task"
// or any other key containing "agentguard" in any letter case — is denied
// and recorded ([toolguard.ErrTaskRefused]) and never reaches its handler:
// its sender asked for narrowing, and running it unnarrowed would give it
// more than was asked.
//
// # Other methods
//
// initialize, server/discover, ping, logging/setLevel,
// resources/unsubscribe and notifications pass: they carry no data of the
// server's to the client. Any other method — a custom method of the server
// (mcp.AddReceivingCustomMethod), a method of a later SDK — is refused with
// -32601 (method not found), so that nothing reaches a client ungoverned;
// [AllowMethods] lets named custom methods through, undecided and
// unrecorded, for a server that guards them itself.
package guardsdk
