package guardsdk

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/toolguard"
)

// taskMetaKey is the _meta key under which a request carries a signed
// task: guardmcp.TaskMetaKey, which guardmcp.WithTaskVerifier verifies.
const taskMetaKey = "io.agentguard/task"

// refuseTask makes the guard deny, and record, a request whose _meta
// carries a task, or a key that looks meant to ("io.agentguard/Task",
// "agentguard/task": "agentguard" in any letter case). This adapter does
// not verify tasks, and running such a request without its task would
// give it more privilege than its sender asked for; guardmcp's in-process
// middleware and the mcpguard proxy verify them.
func refuseTask(ctx context.Context, meta mcp.Meta) context.Context {
	var keys []string
	for k := range meta {
		if k == taskMetaKey || strings.Contains(string(safejson.AppendFold(nil, k)), "AGENTGUARD") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ctx
	}
	slices.Sort(keys)
	return toolguard.WithRefusedTask(ctx, fmt.Errorf(
		"the request's _meta has the key %q, and this server does not verify tasks, so it cannot narrow the request as its sender asked", keys[0]))
}
