package guardmcp_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// A call that takes longer than PollAfter: its stream ends after the
// priming event, and the client resumes it with Last-Event-ID.
func ExampleNewSSEPoller() {
	s := server.NewMCPServer("slow", "1.0")
	s.AddTool(mcp.NewTool("wait"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		time.Sleep(500 * time.Millisecond)
		return mcp.NewToolResultText("waited"), nil
	})
	h := server.NewStreamableHTTPServer(s)
	poller, err := guardmcp.NewSSEPoller(h, guardmcp.SSEPollOptions{PollAfter: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer poller.Close()
	ts := httptest.NewServer(poller) // in production: behind authentication
	defer ts.Close()

	send := func(method, session, lastEventID, body string) *http.Response {
		req, _ := http.NewRequest(method, ts.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	// lines reads a stream to its end: its id and data lines.
	lines := func(resp *http.Response) (ids, data []string) {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			} else if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = append(data, d)
			}
		}
		return ids, data
	}

	resp := send("POST", "", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"example","version":"1"}}}`)
	resp.Body.Close()
	session := resp.Header.Get("Mcp-Session-Id")
	send("POST", session, "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()

	resp = send("POST", session, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}}`)
	fmt.Println(resp.Header.Get("Content-Type"))
	ids, data := lines(resp)
	fmt.Printf("before the response: %d event, data %q\n", len(ids), data)

	time.Sleep(500 * time.Millisecond) // the client waits (at least the retry field's time)
	_, data = lines(send("GET", session, ids[len(ids)-1], ""))
	fmt.Println(data)
	// Output:
	// text/event-stream
	// before the response: 1 event, data [""]
	// [{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"waited"}]}}]
}
