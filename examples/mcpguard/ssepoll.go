package main

import (
	"flag"
	"log/slog"
	"net/http"
	"time"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// sseConfig is what the flags say about SSE polling (SEP-1699) of the
// calls clients make over HTTP.
type sseConfig struct{ retry, pollAfter time.Duration }

func (s *sseConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.retry, "sse-retry", guardmcp.DefaultSSERetry,
		"with -listen: answer the calls of 2025-11-25 clients with resumable SSE streams whose retry field is this (0: answer them as the MCP server does, without polling)")
	fs.DurationVar(&s.pollAfter, "sse-poll-after", guardmcp.DefaultSSEPollAfter,
		"end a call's SSE stream after this long without the response, for the client to resume it with Last-Event-ID (0: keep it open until the response)")
}

// wrap puts the SSE poller in front of h, unless -sse-retry is 0. The
// returned func ends the calls it still runs.
func (s sseConfig) wrap(h http.Handler, logger *slog.Logger) (http.Handler, func(), error) {
	if s.retry < 0 || s.pollAfter < 0 {
		return nil, nil, usageErrorf("-sse-retry and -sse-poll-after must not be negative")
	}
	if s.retry == 0 {
		return h, func() {}, nil
	}
	opts := guardmcp.SSEPollOptions{Retry: s.retry, PollAfter: s.pollAfter, Logger: logger}
	if s.pollAfter == 0 {
		opts.PollAfter = -1
	}
	p, err := guardmcp.NewSSEPoller(h, opts)
	if err != nil {
		return nil, nil, err
	}
	return p, p.Close, nil
}
