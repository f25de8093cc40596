// Package fakeapi is a loopback stand-in for a model provider's HTTP API:
// it answers each request with the next recorded response and keeps the
// requests, so a test runs an SDK's real client code and then inspects what
// the SDK sent.
//
//	srv := fakeapi.New(t, "testdata/tool_call.json", "testdata/final.json")
//	client := openai.NewClient(option.WithBaseURL(srv.URL + "/v1/"))
//	... run the loop ...
//	reqs := srv.Requests() // the bodies the SDK posted, in order
//
// # Concurrency
//
// A Server is safe for concurrent use.
package fakeapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
)

// maxBody bounds the request bodies a Server reads.
const maxBody = 4 << 20

// Request is one request the SDK sent.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Server serves recorded responses in order. Create one with [New].
type Server struct {
	*httptest.Server
	mu        sync.Mutex
	responses [][]byte
	requests  []Request
}

// New starts a Server on the loopback interface that answers the n-th
// request with the JSON body of the n-th file, and closes it when the test
// ends. A request beyond the recorded ones fails the test and gets a 500.
func New(t testing.TB, files ...string) *Server {
	t.Helper()
	bodies := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("fakeapi: %v", err)
		}
		bodies = append(bodies, b)
	}
	return NewBodies(t, bodies...)
}

// NewBodies is [New] with the response bodies themselves.
func NewBodies(t testing.TB, bodies ...[]byte) *Server {
	t.Helper()
	s := &Server{responses: bodies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		var resp []byte
		if n < len(s.responses) {
			resp = s.responses[n]
		}
		s.mu.Unlock()
		if resp == nil {
			t.Errorf("fakeapi: unexpected request %d: %s %s", n+1, r.Method, r.URL.Path)
			http.Error(w, fmt.Sprintf(`{"error":{"message":"no recorded response for request %d"}}`, n+1), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ChatToolCall is a recorded Chat Completions response (OpenAI's wire
// format) in which the model makes one function call, with id call_1.
func ChatToolCall(t testing.TB, tool, args string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id": "chatcmpl-x", "object": "chat.completion", "created": 1767225600, "model": "m",
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "tool_calls",
			"message": map[string]any{
				"role": "assistant", "content": nil, "refusal": nil,
				"tool_calls": []any{map[string]any{
					"id": "call_1", "type": "function",
					"function": map[string]any{"name": tool, "arguments": args},
				}},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
