package redislimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redislimit"
)

func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	l, err := redislimit.New(client, redislimit.Options{Prefix: "support-agent"})
	if err != nil {
		panic(err)
	}
	p, err := scope.Parse([]byte(`version: 1
scopes:
  tickets:
    grants:
      - tools: [reply]
        limit: replies
limits:
  replies: {rate: 50/s, key: principal.id}
`))
	if err != nil {
		panic(err)
	}
	// Every replica of the agent shares the 50 replies a second.
	g, err := toolguard.New(p, toolguard.WithLimiter(l), toolguard.WithSink(audit.Discard))
	fmt.Println(g != nil, err)
	// Output: true <nil>
}

// With Redis unreachable, a limiter fails closed: Take returns an error and
// the guard denies the call.
func ExampleLimiter_Take_unavailable() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	l, _ := redislimit.New(client, redislimit.Options{Timeout: 20 * time.Millisecond})
	uses := []scope.LimitUse{{Limit: scope.Limit{Name: "calls", Kind: scope.LimitRate, Count: 10, Per: time.Second, Burst: 10}, Key: "bot", Cost: 1}}

	_, _, err := l.Take(context.Background(), time.Now(), uses, false)
	fmt.Println(errors.Is(err, redislimit.ErrUnavailable))
	// Output: true
}

// With FailOpen, a limiter that cannot reach Redis allows the call and says
// so in every result.
func ExampleOptions_failOpen() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	l, _ := redislimit.New(client, redislimit.Options{Timeout: 20 * time.Millisecond, FailOpen: true})
	uses := []scope.LimitUse{{Limit: scope.Limit{Name: "calls", Kind: scope.LimitRate, Count: 10, Per: time.Second, Burst: 10}, Key: "bot", Cost: 1}}

	res, _, err := l.Take(context.Background(), time.Now(), uses, false)
	fmt.Println(err, res[0].Allowed, res[0].FailedOpen)
	// Output: <nil> true true
}
