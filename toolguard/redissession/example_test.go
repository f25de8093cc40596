package redissession_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redissession"
)

// New makes a store every replica of an agent shares through one Redis.
// Hand it to the guard in place of the in-memory one. When Redis cannot
// answer within the timeout, every operation is an error wrapping
// ErrUnavailable, and the guard denies the call.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	st, err := redissession.New(client, redissession.Options{
		Prefix:    "support-agent",
		TTL:       2 * time.Hour,         // forget a session idle this long
		Timeout:   20 * time.Millisecond, // deny a call rather than wait longer
		MaxCalls:  10_000,
		MaxLabels: 64,
		MaxTokens: 200_000,
	})
	if err != nil {
		panic(err)
	}
	var _ toolguard.SessionStore = st // toolguard.WithSessions(st)

	k := toolguard.SessionKey{Principal: "alice", Session: "chat-1"}
	_, err = st.Load(context.Background(), k)
	fmt.Println(errors.Is(err, redissession.ErrUnavailable))
	// Output: true
}
