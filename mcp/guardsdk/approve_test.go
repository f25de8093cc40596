package guardsdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/toolguard"
)

func answer(action string, content map[string]any) func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	return func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		return &mcp.ElicitResult{Action: action, Content: content}, nil
	}
}

func TestElicitationApprover(t *testing.T) {
	tests := []struct {
		name    string
		handler func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)
		ran     bool
		want    string
	}{
		{"approved", answer("accept", map[string]any{"approve": true}), true, "wrote /w/a.txt"},
		{"refused with comment", answer("accept", map[string]any{"approve": false, "comment": "not that file"}), false, "the user refused: not that file"},
		{"approve as a string", answer("accept", map[string]any{"approve": "true"}), false, "asking the user failed"},
		{"declined", answer("decline", nil), false, "the user declined"},
		{"cancelled", answer("cancel", nil), false, "the user cancelled"},
		{"odd action", answer("yes please", map[string]any{"approve": true}), false, `the client answered "yes please"`},
		{"client error", func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return nil, errors.New("the window was closed")
		}, false, "asking the user failed"},
		{"no elicitation capability", nil, false, "cannot ask its user for approval: the client did not declare the elicitation capability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, guardsdk.Static(bot), toolguard.WithApprover(guardsdk.ElicitationApprover(guardsdk.ApproverOptions{})))
			var asked atomic.Value
			var copts *mcp.ClientOptions
			if tt.handler != nil {
				copts = &mcp.ClientOptions{ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					asked.Store(req.Params.Message)
					return tt.handler(ctx, req)
				}}
			}
			cs, finish := f.connect(t, copts)
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "/w/a.txt", "text": "hello"}})
			require.NoError(t, err)
			assert.Equal(t, !tt.ran, res.IsError)
			assert.Contains(t, text(t, res), tt.want)
			assert.Equal(t, tt.ran, f.writes.Load() == 1)
			if tt.handler != nil {
				msg, _ := asked.Load().(string)
				assert.Contains(t, msg, "Tool: write_file")
				assert.Contains(t, msg, `writing /w/a.txt (rule "confirm-writes")`)
			}
			sum := finish()
			assert.Equal(t, 1, sum.Decisions)
		})
	}
}

// TestElicitationNotMidCall: a client on protocol version 2026-07-28, where
// a server may not send a request in the middle of a call, is not asked:
// the call is denied with a reason that says so, and the tool does not run.
func TestElicitationNotMidCall(t *testing.T) {
	f := newFixture(t, guardsdk.Static(bot), toolguard.WithApprover(guardsdk.ElicitationApprover(guardsdk.ApproverOptions{})))
	asked := false
	cs, finish := f.connectVersion(t, &mcp.ClientOptions{ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		asked = true
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
	}}, "2026-07-28")
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "/w/a.txt", "text": "x"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(t, res), "does not let a server ask its user in the middle of a call")
	assert.False(t, asked)
	assert.Zero(t, f.writes.Load())
	assert.Equal(t, 1, finish().Denied)
}

// TestElicitationTimeout: no answer in time denies, and the tool does not
// run.
func TestElicitationTimeout(t *testing.T) {
	f := newFixture(t, guardsdk.Static(bot), toolguard.WithApprover(guardsdk.ElicitationApprover(guardsdk.ApproverOptions{Timeout: 100 * time.Millisecond})))
	cs, finish := f.connect(t, &mcp.ClientOptions{ElicitationHandler: func(ctx context.Context, _ *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "/w/a.txt", "text": "x"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(t, res), "no answer from the user in time")
	assert.Zero(t, f.writes.Load())
	assert.Equal(t, 1, finish().Denied)
}

// TestElicitationGoesToTheCallingClient: two clients call at once; each
// question reaches the client whose call it is about, and only that one.
func TestElicitationGoesToTheCallingClient(t *testing.T) {
	f := newFixture(t, guardsdk.Static(bot), toolguard.WithApprover(guardsdk.ElicitationApprover(guardsdk.ApproverOptions{})))
	type client struct {
		cs    *mcp.ClientSession
		mu    sync.Mutex
		asked []string
	}
	clients := make([]*client, 2)
	for i := range clients {
		c := &client{}
		approve := i == 0 // only the first client's user approves
		c.cs, _ = f.connect(t, &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			c.mu.Lock()
			c.asked = append(c.asked, req.Params.Message)
			c.mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": approve}}, nil
		}})
		clients[i] = c
	}
	const calls = 10
	var wg sync.WaitGroup
	results := make([][]*mcp.CallToolResult, len(clients))
	for i, c := range clients {
		results[i] = make([]*mcp.CallToolResult, calls)
		for j := range calls {
			wg.Go(func() {
				res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "write_file",
					Arguments: map[string]any{"path": fmt.Sprintf("/w/client%d-%d.txt", i, j), "text": "x"}})
				assert.NoError(t, err)
				results[i][j] = res
			})
		}
	}
	wg.Wait()
	for i, c := range clients {
		assert.Len(t, c.asked, calls, "client %d is asked about each of its own calls", i)
		for _, msg := range c.asked {
			assert.Contains(t, msg, fmt.Sprintf("/w/client%d-", i), "client %d is asked only about its own calls", i)
		}
		for _, res := range results[i] {
			require.NotNil(t, res)
			assert.Equal(t, i != 0, res.IsError, text(t, res))
			if i != 0 {
				assert.True(t, strings.Contains(text(t, res), "the user refused"))
			}
		}
	}
	assert.EqualValues(t, calls, f.writes.Load(), "only the approving client's writes ran")
}
