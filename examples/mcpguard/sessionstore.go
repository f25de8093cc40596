package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redissession"
)

// sessionStoreConfig is what the flags say about where the guard keeps
// session state (labels, values, calls of each client session) and its
// bounds.
type sessionStoreConfig struct {
	store        string
	ttl          time.Duration
	maxCalls     int
	maxLabels    int
	maxTokens    int
	maxSessions  int
	perPrincipal int
	timeout      time.Duration
}

// register adds the session store flags, in one block.
func (sc *sessionStoreConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&sc.store, "session-store", "memory", "where session state is kept: memory (this process), or redis://host:port/db (shared by replicas; rediss:// for TLS); while Redis is down or slower than -session-store-timeout, calls are denied")
	fs.DurationVar(&sc.ttl, "session-ttl", 24*time.Hour, "forget a session after this long without calls; its next call is denied as expired rather than given an empty history")
	fs.IntVar(&sc.maxCalls, "session-max-calls", 100_000, "most calls one session may run; the calls beyond are denied before they run")
	fs.IntVar(&sc.maxLabels, "session-max-labels", 0, "most distinct labels one session may hold (0: the store's default, 64 in memory, 1024 on Redis)")
	fs.IntVar(&sc.maxTokens, "session-max-values", 100_000, "most values from earlier results one session may index for x.from (label and token pairs)")
	fs.IntVar(&sc.maxSessions, "session-store-max", 10_000, "-session-store memory: most sessions held; beyond, the least recently used is dropped and its calls denied")
	fs.IntVar(&sc.perPrincipal, "session-store-max-per-principal", 0, "-session-store memory: most sessions one principal holds; beyond, it drops its own least recently used (0: a tenth of -session-store-max)")
	fs.DurationVar(&sc.timeout, "session-store-timeout", redissession.DefaultTimeout, "-session-store redis: bound on each operation; a slower Redis denies the call")
}

// check reports session store flags that are wrong.
func (sc *sessionStoreConfig) check() error {
	switch {
	case sc.store != "memory" && !strings.HasPrefix(sc.store, "redis://") && !strings.HasPrefix(sc.store, "rediss://"):
		return errors.New("-session-store is memory or redis://host:port/db")
	case sc.ttl < time.Millisecond:
		return errors.New("-session-ttl must be at least 1ms")
	case sc.maxCalls <= 0 || sc.maxTokens <= 0 || sc.maxLabels < 0:
		return errors.New("-session-max-calls and -session-max-values must be positive, -session-max-labels not negative")
	case sc.maxSessions <= 0 || sc.perPrincipal < 0:
		return errors.New("-session-store-max must be positive, -session-store-max-per-principal not negative")
	case sc.timeout <= 0:
		return errors.New("-session-store-timeout must be positive")
	}
	return nil
}

// option returns the guard option for the session store, and a function
// that closes it. A Redis that does not answer at start is an error: the
// guard would deny every call.
func (sc *sessionStoreConfig) option(ctx context.Context) (toolguard.Option, func() error, error) {
	if sc.store == "memory" {
		st := toolguard.NewMemorySessions(toolguard.MemorySessionOptions{
			MaxSessions: sc.maxSessions, MaxSessionsPerPrincipal: sc.perPrincipal, TTL: sc.ttl,
			MaxCalls: sc.maxCalls, MaxLabels: sc.maxLabels, MaxTokens: sc.maxTokens})
		return toolguard.WithSessions(st), func() error { return nil }, nil
	}
	opts, err := redis.ParseURL(sc.store)
	if err != nil {
		return nil, nil, usageErrorf("-session-store: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	st, err := redissession.New(client, redissession.Options{TTL: sc.ttl, Timeout: sc.timeout,
		MaxCalls: sc.maxCalls, MaxLabels: sc.maxLabels, MaxTokens: sc.maxTokens})
	if err != nil {
		client.Close()
		return nil, nil, usageErrorf("-session-store: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, max(sc.timeout, 2*time.Second))
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("session store %s (redis %s, db %d) does not answer: %w", redactURL(sc.store), opts.Addr, opts.DB, err)
	}
	return toolguard.WithSessions(st), client.Close, nil
}

// redactURL drops the password, if any, from a Redis URL for messages.
func redactURL(u string) string {
	scheme, rest, _ := strings.Cut(u, "://")
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = "…@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
