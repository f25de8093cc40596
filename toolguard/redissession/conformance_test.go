package redissession_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redissession"
	"github.com/agentguard/agentguard/toolguard/sessionstoretest"
)

// conformanceOptions are bounds inside the ranges sessionstoretest needs.
var conformanceOptions = redissession.Options{
	TTL:       time.Minute,
	Timeout:   10 * time.Second, // the suite's largest events under -race
	MaxCalls:  1000,
	MaxLabels: 32,
	MaxTokens: 4096,
}

var prefixSeq atomic.Int64

// newStoreOn returns a store on client under a prefix of its own.
func newStoreOn(t testing.TB, client redis.UniversalClient, opts redissession.Options) *redissession.Store {
	t.Helper()
	opts.Prefix = fmt.Sprintf("test%d", prefixSeq.Add(1))
	s, err := redissession.New(client, opts)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client()
	sessionstoretest.Run(t, func(t *testing.T) toolguard.SessionStore {
		return newStoreOn(t, client, conformanceOptions)
	})
}

// On a Redis Cluster a script may only touch keys of one hash slot: the
// suite passes through a cluster client only if every operation keeps to
// its session's slot. The cluster is one node that serves every slot.
func TestConformanceCluster(t *testing.T) {
	srv := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	ctx := context.Background()
	require.NoError(t, srv.Client().ClusterAddSlotsRange(ctx, 0, 16383).Err())
	require.Eventually(t, func() bool {
		info, err := srv.Client().ClusterInfo(ctx).Result()
		return err == nil && len(info) > 0 && contains(info, "cluster_state:ok")
	}, 10*time.Second, 20*time.Millisecond)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { _ = client.Close() })

	// A script touching two sessions' keys at once would be refused: the
	// cluster does check.
	err := client.Eval(ctx, "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"{a}:x", "{b}:x"}).Err()
	require.ErrorContains(t, err, "CROSSSLOT")

	sessionstoretest.Run(t, func(t *testing.T) toolguard.SessionStore {
		return newStoreOn(t, client, conformanceOptions)
	})
}
