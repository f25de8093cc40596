package guardmcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// pollFixture is a real mcp-go server behind an SSEPoller, served over
// real HTTP.
type pollFixture struct {
	ts        *httptest.Server
	poller    *guardmcp.SSEPoller
	release   chan struct{} // closing it lets "slow" calls answer
	cancelled atomic.Int32  // "slow" calls whose context ended first
	running   atomic.Int32  // "slow" calls running
	innerGETs atomic.Int32  // GETs that reached the inner handler
}

func newPollFixture(t *testing.T, opts guardmcp.SSEPollOptions) *pollFixture {
	t.Helper()
	f := &pollFixture{release: make(chan struct{})}
	s := server.NewMCPServer("poll", "1.0", server.WithElicitation())
	s.AddTool(mcp.NewTool("fast"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("fast done"), nil
	})
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.running.Add(1)
		defer f.running.Add(-1)
		select {
		case <-f.release:
			return mcp.NewToolResultText("slow done"), nil
		case <-ctx.Done():
			f.cancelled.Add(1)
			return nil, ctx.Err()
		}
	})
	s.AddTool(mcp.NewTool("big", mcp.WithNumber("n")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strings.Repeat("x", req.GetInt("n", 0))), nil
	})
	s.AddTool(mcp.NewTool("chatty", mcp.WithNumber("n")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		srv := server.ServerFromContext(ctx)
		for i := range req.GetInt("n", 0) {
			_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{"progressToken": "p", "progress": i})
		}
		return mcp.NewToolResultText("chatty done"), nil
	})
	s.AddTool(mcp.NewTool("ask"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// Long enough for the stream to be polled before and after.
		time.Sleep(400 * time.Millisecond)
		res, err := server.ServerFromContext(ctx).RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message:         "your name?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return nil, err
		}
		time.Sleep(400 * time.Millisecond)
		return mcp.NewToolResultText(fmt.Sprintf("hello %v", res.Content.(map[string]any)["name"])), nil
	})
	h := server.NewStreamableHTTPServer(s)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// A GET the poller passes on: mark it, and answer without
			// opening mcp-go's endless listening stream.
			f.innerGETs.Add(1)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		h.ServeHTTP(w, r)
	})
	var err error
	f.poller, err = guardmcp.NewSSEPoller(inner, opts)
	require.NoError(t, err)
	f.ts = httptest.NewServer(f.poller)
	t.Cleanup(func() {
		f.ts.CloseClientConnections()
		f.ts.Close()
		f.poller.Close()
		h.Shutdown(context.Background())
	})
	return f
}

// initialize opens a session that negotiated version and returns its id.
func (f *pollFixture) initialize(t *testing.T, version string) string {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}`, version)
	resp := f.post(t, "", version, "application/json, text/event-stream", body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	io.Copy(io.Discard, resp.Body)
	sid := resp.Header.Get(server.HeaderKeySessionID)
	require.NotEmpty(t, sid)
	resp = f.post(t, sid, version, "application/json, text/event-stream", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	return sid
}

func (f *pollFixture) post(t *testing.T, sid, version, accept, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.ts.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	if sid != "" {
		req.Header.Set(server.HeaderKeySessionID, sid)
		req.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	resp, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (f *pollFixture) call(t *testing.T, sid string, id int, tool string, args string) *http.Response {
	t.Helper()
	return f.post(t, sid, mcp.ProtocolVersion20251125, "text/event-stream, application/json",
		fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, args))
}

func (f *pollFixture) resume(t *testing.T, sid, lastEventID string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.ts.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(server.HeaderKeySessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20250326)
	req.Header.Set("Last-Event-ID", lastEventID)
	resp, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type sseEvent struct {
	id, data, retry string
	hasID           bool
}

// readEvents reads a whole SSE stream, failing if it does not end within
// timeout.
func readEvents(t *testing.T, resp *http.Response, timeout time.Duration) []sseEvent {
	t.Helper()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	type result struct {
		events []sseEvent
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var out []sseEvent
		var ev sseEvent
		var data []string
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- result{out, err}
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				ev.data = strings.Join(data, "\n")
				if ev.hasID || len(data) > 0 {
					out = append(out, ev)
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id:"):
				ev.id, ev.hasID = strings.TrimPrefix(line[3:], " "), true
			case strings.HasPrefix(line, "retry:"):
				ev.retry = strings.TrimPrefix(line[6:], " ")
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(line[5:], " "))
			}
		}
	}()
	select {
	case r := <-done:
		require.NoError(t, r.err)
		return r.events
	case <-time.After(timeout):
		resp.Body.Close()
		t.Fatalf("the SSE stream did not end within %v", timeout)
		return nil
	}
}

// message decodes an event's JSON-RPC message.
func message(t *testing.T, ev sseEvent) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(ev.data), &m), "event data %q", ev.data)
	return m
}

func sseResultText(t *testing.T, m map[string]any) string {
	t.Helper()
	res, ok := m["result"].(map[string]any)
	require.True(t, ok, "a result: %v", m)
	return res["content"].([]any)[0].(map[string]any)["text"].(string)
}

// pollGoroutines counts the goroutines running the poller's code or an
// inner handler it started.
func pollGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "guardmcp.(*SSEPoller)") || strings.Contains(g, "guardmcp.(*pollCapture)") {
			n++
		}
	}
	return n
}

func requireNoPollGoroutines(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return pollGoroutines() == 0 }, 5*time.Second, 20*time.Millisecond,
		"goroutines of the poller are left")
}

func TestSSEPollingPrimingRetryCloseAndResume(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{Retry: 1500 * time.Millisecond, PollAfter: 300 * time.Millisecond})
	sid := f.initialize(t, mcp.ProtocolVersion20251125)

	start := time.Now()
	resp := f.call(t, sid, 1, "slow", `{}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readEvents(t, resp, 5*time.Second)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the stream stays open PollAfter")
	require.Len(t, events, 1, "only the priming event before the response is ready")
	prime := events[0]
	assert.True(t, prime.hasID)
	assert.Regexp(t, `^[0-9a-f]{32}/0$`, prime.id)
	assert.Empty(t, prime.data, "a priming event has no data")
	assert.Equal(t, "1500", prime.retry, "the retry field is on the stream")
	assert.EqualValues(t, 1, f.running.Load(), "the call goes on after the stream ended")

	// Polled again before the response: the GET ends after PollAfter too.
	again := readEvents(t, f.resume(t, sid, prime.id), 5*time.Second)
	assert.Empty(t, again)

	close(f.release)
	events = readEvents(t, f.resume(t, sid, prime.id), 5*time.Second)
	require.Len(t, events, 1)
	assert.Equal(t, strings.TrimSuffix(prime.id, "0")+"1", events[0].id)
	m := message(t, events[0])
	assert.EqualValues(t, 1, m["id"])
	assert.Equal(t, "slow done", sseResultText(t, m))

	// Resuming after the response replays it; resuming from it, nothing.
	assert.Len(t, readEvents(t, f.resume(t, sid, prime.id), 5*time.Second), 1)
	assert.Empty(t, readEvents(t, f.resume(t, sid, events[0].id), 5*time.Second))
	assert.Zero(t, f.innerGETs.Load(), "every resume was the poller's")
	requireNoPollGoroutines(t)
}

func TestSSEPollingFastCallsAreSSEAndJSONOnlyGetsJSON(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{})
	sid := f.initialize(t, mcp.ProtocolVersion20251125)

	// Three at once, as the conformance suite's multiple streams check.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			resp := f.post(t, sid, mcp.ProtocolVersion20250326, "text/event-stream, application/json",
				fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, 1000+i))
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			events := readEvents(t, resp, 5*time.Second)
			if assert.Len(t, events, 2) {
				assert.Empty(t, events[0].data)
				assert.EqualValues(t, 1000+i, message(t, events[1])["id"])
			}
		})
	}
	wg.Wait()

	resp := f.call(t, sid, 7, "fast", `{}`)
	events := readEvents(t, resp, 5*time.Second)
	require.Len(t, events, 2)
	assert.Equal(t, "fast done", sseResultText(t, message(t, events[1])))

	resp = f.post(t, sid, mcp.ProtocolVersion20251125, "application/json",
		`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"fast","arguments":{}}}`)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	assert.Equal(t, "fast done", sseResultText(t, m))
}

func TestSSEPollingLeavesOtherProtocolsAlone(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{PollAfter: 100 * time.Millisecond})
	// A 2025-06-18 client may not understand a priming event nor
	// resume: it gets mcp-go's own answer.
	old := f.initialize(t, mcp.ProtocolVersion20250618)
	resp := f.post(t, old, mcp.ProtocolVersion20250618, "application/json, text/event-stream",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fast","arguments":{}}}`)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	// A session the poller did not see open, and one that is no longer.
	resp = f.post(t, "mcp-session-unknown", mcp.ProtocolVersion20251125, "application/json, text/event-stream",
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))

	// 2026-07-28 has no sessions and no resumption.
	resp = f.post(t, "", "", "application/json, text/event-stream",
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)
	assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))

	// Notifications and responses are not polled.
	sid := f.initialize(t, mcp.ProtocolVersion20251125)
	resp = f.post(t, sid, mcp.ProtocolVersion20251125, "application/json, text/event-stream",
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// A request mcp-go refuses is relayed with its status.
	resp = f.post(t, sid, "1999-01-01", "application/json, text/event-stream", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// After DELETE the session's streams are gone: its calls are
	// cancelled and cannot be resumed.
	resp = f.call(t, sid, 2, "slow", `{}`)
	prime := readEvents(t, resp, 5*time.Second)[0]
	req, err := http.NewRequest(http.MethodDelete, f.ts.URL, nil)
	require.NoError(t, err)
	req.Header.Set(server.HeaderKeySessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	dresp, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	require.Equal(t, http.StatusOK, dresp.StatusCode)
	require.Eventually(t, func() bool { return f.cancelled.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, http.StatusTeapot, f.resume(t, sid, prime.id).StatusCode, "passed on to mcp-go")
	requireNoPollGoroutines(t)
}

func TestSSEPollingOtherSessionsCannotResume(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{PollAfter: 100 * time.Millisecond})
	alice := f.initialize(t, mcp.ProtocolVersion20251125)
	mallory := f.initialize(t, mcp.ProtocolVersion20251125)

	prime := readEvents(t, f.call(t, alice, 1, "slow", `{}`), 5*time.Second)[0]
	close(f.release)
	for _, sid := range []string{mallory, alice + "x", strings.ToUpper(alice), ""} {
		resp := f.resume(t, sid, prime.id)
		assert.Equal(t, http.StatusTeapot, resp.StatusCode, "session %q: passed on to mcp-go, nothing replayed", sid)
	}
	// Two session headers, one of them hers.
	req, err := http.NewRequest(http.MethodGet, f.ts.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Add(server.HeaderKeySessionID, mallory)
	req.Header.Add(server.HeaderKeySessionID, alice)
	req.Header.Set("Last-Event-ID", prime.id)
	resp, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)

	// Her stream is intact.
	events := readEvents(t, f.resume(t, alice, prime.id), 5*time.Second)
	require.Len(t, events, 1)
	assert.Equal(t, "slow done", sseResultText(t, message(t, events[0])))
}

func TestSSEPollingHostileLastEventIDs(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{PollAfter: 100 * time.Millisecond})
	sid := f.initialize(t, mcp.ProtocolVersion20251125)
	prime := readEvents(t, f.call(t, sid, 1, "slow", `{}`), 5*time.Second)[0]
	stream, _, _ := strings.Cut(prime.id, "/")
	for _, id := range []string{
		"garbage", "/", "0", stream, stream + "/", stream + "/1", stream + "/99999999999999999999",
		stream + "/-1", stream + "/+0", stream + "/00", stream + "/ 0", strings.ToUpper(stream) + "/0",
		strings.Repeat("0", 32) + "/0", stream + "/0/0", strings.Repeat("a", 64<<10),
		stream[:31] + "g/0", "../" + stream + "/0",
	} {
		before := f.innerGETs.Load()
		resp := f.resume(t, sid, id)
		assert.Equal(t, http.StatusTeapot, resp.StatusCode, "Last-Event-ID %.40q", id)
		assert.Equal(t, before+1, f.innerGETs.Load())
	}
	close(f.release)
	events := readEvents(t, f.resume(t, sid, prime.id), 5*time.Second)
	require.Len(t, events, 1)
}

func TestSSEPollingBounds(t *testing.T) {
	t.Run("streams", func(t *testing.T) {
		f := newPollFixture(t, guardmcp.SSEPollOptions{MaxStreams: 2, PollAfter: 50 * time.Millisecond})
		sid := f.initialize(t, mcp.ProtocolVersion20251125)
		for i := range 2 {
			readEvents(t, f.call(t, sid, i, "slow", `{}`), 5*time.Second)
		}
		resp := f.call(t, sid, 3, "slow", `{}`)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		var m struct {
			ID    int `json:"id"`
			Error struct{ Message string }
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		assert.Equal(t, 3, m.ID)
		assert.Contains(t, m.Error.Message, "too many open response streams")

		// Finished streams make room.
		close(f.release)
		require.Eventually(t, func() bool { return f.running.Load() == 0 }, 5*time.Second, 10*time.Millisecond)
		events := readEvents(t, f.call(t, sid, 4, "fast", `{}`), 5*time.Second)
		assert.Len(t, events, 2)
	})
	t.Run("bytes", func(t *testing.T) {
		f := newPollFixture(t, guardmcp.SSEPollOptions{MaxStreamBytes: 4000})
		sid := f.initialize(t, mcp.ProtocolVersion20251125)
		events := readEvents(t, f.call(t, sid, 1, "big", `{"n":1000}`), 5*time.Second)
		require.Len(t, events, 2)
		assert.Len(t, sseResultText(t, message(t, events[1])), 1000)

		events = readEvents(t, f.call(t, sid, 2, "big", `{"n":5000}`), 5*time.Second)
		require.Len(t, events, 2)
		m := message(t, events[1])
		assert.EqualValues(t, 2, m["id"])
		assert.Contains(t, m["error"].(map[string]any)["message"], "over 4000 bytes")
	})
	t.Run("total bytes", func(t *testing.T) {
		f := newPollFixture(t, guardmcp.SSEPollOptions{MaxBytes: 3000})
		sid := f.initialize(t, mcp.ProtocolVersion20251125)
		events := readEvents(t, f.call(t, sid, 1, "big", `{"n":3500}`), 5*time.Second)
		m := message(t, events[len(events)-1])
		assert.Contains(t, m["error"].(map[string]any)["message"], "more than the server's 3000 buffered bytes")
	})
	t.Run("events", func(t *testing.T) {
		f := newPollFixture(t, guardmcp.SSEPollOptions{MaxStreamEvents: 10})
		sid := f.initialize(t, mcp.ProtocolVersion20251125)
		events := readEvents(t, f.call(t, sid, 1, "chatty", `{"n":5}`), 5*time.Second)
		assert.Equal(t, "chatty done", sseResultText(t, message(t, events[len(events)-1])))

		events = readEvents(t, f.call(t, sid, 2, "chatty", `{"n":50}`), 5*time.Second)
		assert.LessOrEqual(t, len(events), 11)
		m := message(t, events[len(events)-1])
		assert.EqualValues(t, 2, m["id"])
		assert.Contains(t, m["error"].(map[string]any)["message"], "more than 10 messages")
	})
	_, err := guardmcp.NewSSEPoller(http.NotFoundHandler(), guardmcp.SSEPollOptions{MaxStreams: -1})
	assert.Error(t, err)
}

func TestSSEPollingAbandonedStreamsExpire(t *testing.T) {
	const n = 20
	f := newPollFixture(t, guardmcp.SSEPollOptions{TTL: 300 * time.Millisecond, MaxStreams: n, PollAfter: time.Minute})
	sid := f.initialize(t, mcp.ProtocolVersion20251125)
	var wg sync.WaitGroup
	for i := range n {
		// Each client reads the priming event and goes away for good.
		wg.Go(func() {
			resp := f.call(t, sid, i, "slow", `{}`)
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			assert.NoError(t, err)
			assert.True(t, strings.HasPrefix(line, "id: "))
			resp.Body.Close()
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return f.cancelled.Load() == n }, 10*time.Second, 20*time.Millisecond,
		"abandoned calls are cancelled after TTL")
	requireNoPollGoroutines(t)
	// And their room is free again.
	assert.Len(t, readEvents(t, f.call(t, sid, 99, "fast", `{}`), 5*time.Second), 2)
}

// countingTransport counts the resuming GETs of a client.
type countingTransport struct{ resumes atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") != "" {
		c.resumes.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

type nameElicitor struct{}

func (nameElicitor) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"name": "Ada"}}}, nil
}

// An elicitation request sent during a polled call reaches an mcp-go
// client, which resumes the stream, answers it, and gets the result.
func TestSSEPollingElicitationDuringPolledCall(t *testing.T) {
	f := newPollFixture(t, guardmcp.SSEPollOptions{Retry: 20 * time.Millisecond, PollAfter: 150 * time.Millisecond})
	ct := &countingTransport{}
	tr, err := transport.NewStreamableHTTP(f.ts.URL, transport.WithHTTPBasicClient(&http.Client{Transport: ct}))
	require.NoError(t, err)
	//lint:ignore SA1019 polling (SEP-1699) is a feature of the legacy protocol versions
	c := client.NewClient(tr, client.WithLegacyProtocolOnly(), client.WithElicitationHandler(nameElicitor{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)

	req := mcp.CallToolRequest{}
	req.Params.Name = "ask"
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	require.Len(t, res.Content, 1)
	assert.Equal(t, "hello Ada", res.Content[0].(mcp.TextContent).Text)
	assert.GreaterOrEqual(t, ct.resumes.Load(), int32(2), "the call was polled before and after the elicitation")
}

// Behind ProtectedResource.Require, a token is checked before anything
// is replayed, and a session (with its streams) is its principal's only.
func TestSSEPollingBehindTokens(t *testing.T) {
	jf := newJWTFixture(t)
	release := make(chan struct{})
	s := server.NewMCPServer("poll", "1.0")
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {
		case <-release:
			return mcp.NewToolResultText("slow done"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	resource := "http://" + ts.Listener.Addr().String() + "/mcp"
	keys, err := guardmcp.ParseJWKS(jf.jwks)
	require.NoError(t, err)
	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: resource, Issuer: "https://idp.test"})
	require.NoError(t, err)
	res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: resource, AuthorizationServers: []string{"https://idp.test"}, Verifier: v})
	require.NoError(t, err)
	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(res.PrincipalFunc())),
		server.WithSessionIdManagerResolver(res.SessionIDs()))
	poller, err := guardmcp.NewSSEPoller(h, guardmcp.SSEPollOptions{PollAfter: 100 * time.Millisecond})
	require.NoError(t, err)
	mux.Handle("/mcp", res.Require(poller))
	ts.Start()
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close(); poller.Close(); h.Shutdown(context.Background()) })

	token := func(sub string) string {
		c := validClaims()
		c["aud"], c["sub"] = resource, sub
		return jf.sign(t, c, nil)
	}
	alice, bob := token("alice"), token("bob")
	do := func(method, tok, sid, lastID, body string) *http.Response {
		req, err := http.NewRequest(method, resource, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream, application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if sid != "" {
			req.Header.Set(server.HeaderKeySessionID, sid)
			req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
		}
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := do("POST", alice, "", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sid := resp.Header.Get(server.HeaderKeySessionID)
	require.NotEmpty(t, sid)
	require.Equal(t, http.StatusAccepted, do("POST", alice, sid, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`).StatusCode)
	events := readEvents(t, do("POST", alice, sid, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{}}}`), 5*time.Second)
	require.Len(t, events, 1)
	close(release)
	time.Sleep(50 * time.Millisecond)

	assert.Equal(t, http.StatusUnauthorized, do("GET", "", sid, events[0].id, "").StatusCode, "no token")
	assert.Equal(t, http.StatusUnauthorized, do("GET", alice+"x", sid, events[0].id, "").StatusCode, "a forged token")
	assert.Equal(t, http.StatusNotFound, do("GET", bob, sid, events[0].id, "").StatusCode, "another principal with her session id")
	got := readEvents(t, do("GET", alice, sid, events[0].id, ""), 5*time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, "slow done", sseResultText(t, message(t, got[0])))
}
