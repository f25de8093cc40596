package main

import (
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"time"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// sseConfig is what the flags say about SSE polling (SEP-1699) of the
// calls clients make over HTTP.
type sseConfig struct{ retry, pollAfter nonNegativeDuration }

func (s *sseConfig) register(fs *flag.FlagSet) {
	s.retry = nonNegativeDuration(guardmcp.DefaultSSERetry)
	s.pollAfter = nonNegativeDuration(guardmcp.DefaultSSEPollAfter)
	fs.Var(&s.retry, "sse-retry",
		"with -listen: answer the calls of 2025-11-25 clients with resumable SSE streams, whose retry field is this `duration` (0: answer them as the MCP server does, without polling)")
	fs.Var(&s.pollAfter, "sse-poll-after",
		"end a call's SSE stream after this `duration` without the response, for the client to resume it with Last-Event-ID (0: keep it open until the response)")
}

// wrap puts the SSE poller in front of h, unless -sse-retry is 0. The
// returned func ends the calls it still runs.
func (s sseConfig) wrap(h http.Handler, logger *slog.Logger) (http.Handler, func(), error) {
	if s.retry == 0 {
		return h, func() {}, nil
	}
	opts := guardmcp.SSEPollOptions{Retry: time.Duration(s.retry), PollAfter: time.Duration(s.pollAfter), Logger: logger}
	if s.pollAfter == 0 {
		opts.PollAfter = -1 // never
	}
	p, err := guardmcp.NewSSEPoller(h, opts)
	if err != nil {
		return nil, nil, err
	}
	return p, p.Close, nil
}

// nonNegativeDuration is a duration flag that refuses negative values.
type nonNegativeDuration time.Duration

func (d *nonNegativeDuration) String() string { return time.Duration(*d).String() }

func (d *nonNegativeDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 1s or 500ms")
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = nonNegativeDuration(v)
	return nil
}
