package guardmcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/toolguard"
)

// stdioSessionID is the id mcp-go gives every stdio session.
const stdioSessionID = "stdio"

// withSession puts the guard session of the calling MCP client into ctx:
// each MCP client session is a guard session of its own, so that what one
// client's calls brought in (labels, values, remembered approvals) never
// reaches another client's decisions.
//
//   - A session already in ctx (the application's context function put
//     one there with toolguard.WithSession) is kept.
//   - Over streamable HTTP (and SSE) the session is the client's MCP
//     session: its Mcp-Session-Id. The guard's store keys sessions by
//     principal as well, so a session id presented by another principal
//     names another session.
//   - Over stdio, where every session has the same id, it is one session
//     per run of the server: "stdio-" and a random id drawn when the
//     server was built.
//   - A call that comes with no MCP session (protocol 2026-07-28, or a
//     stateless HTTP server) belongs to the session its signed task token
//     names (the session claim; see WithTaskVerifier), or else to no
//     session: the guard then denies calls of tools whose policy reads the
//     session, rather than decide them without their history. An
//     application that knows the conversation a call belongs to can also
//     put it into the context itself.
func (m *middleware) withSession(ctx context.Context) context.Context {
	if _, ok := toolguard.SessionFrom(ctx); ok {
		return ctx
	}
	cs := server.ClientSessionFromContext(ctx)
	if cs == nil {
		return ctx
	}
	switch id := cs.SessionID(); id {
	case "":
		return ctx
	case stdioSessionID:
		return toolguard.WithSession(ctx, "stdio-"+m.run)
	default:
		return toolguard.WithSession(ctx, id)
	}
}

// withheldText is what the model reads when the result of a call that ran
// was withheld: the reason, without Go package names.
func withheldText(tool string, err error) string {
	msg := err.Error()
	for _, prefix := range []string{"toolguard: ", "guardmcp: ", "scope: "} {
		msg = strings.ReplaceAll(msg, prefix, "")
	}
	return fmt.Sprintf("call to %q ran, but its result was withheld: %s", tool, msg)
}

// toolResult is an MCP tool's result on its way through the guard. Label
// conditions read its metadata as result.attrs: is_error, the result's
// isError (a tool error the model reads, which is not a Go error), and
// meta, its _meta fields. It marshals as the result itself, so provenance
// reads the result's content.
type toolResult struct{ res *mcp.CallToolResult }

// ResultAttrs implements toolguard.ResultAttributer.
func (r toolResult) ResultAttrs() map[string]any {
	meta := map[string]any{}
	if m := r.res.Meta; m != nil {
		for k, v := range m.AdditionalFields {
			meta[k] = v
		}
	}
	return map[string]any{"is_error": r.res.IsError, "meta": meta}
}

// MarshalJSON marshals the result.
func (r toolResult) MarshalJSON() ([]byte, error) { return json.Marshal(r.res) }

// UnmarshalJSON decodes a result: the guard's result guard rebuilds a
// redacted result so.
func (r *toolResult) UnmarshalJSON(b []byte) error {
	var res mcp.CallToolResult
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	r.res = &res
	return nil
}

// callToolResult returns the MCP result a guard handler returned.
func callToolResult(out any) (*mcp.CallToolResult, bool) {
	switch r := out.(type) {
	case *mcp.CallToolResult:
		return r, true
	case toolResult:
		return r.res, true
	}
	return nil, false
}
