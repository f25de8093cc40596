package redissession_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redissession"
)

var bg = context.Background()

func event(tool, id string, labels []string, tokens ...string) toolguard.SessionEvent {
	return toolguard.SessionEvent{Origin: scope.Origin{Tool: tool, CallID: id}, Labels: labels, Tokens: tokens}
}

// Two replicas, each with its own client and Store, share one Redis: they
// number the calls of a session together, and each sees what the other
// added.
func TestReplicasShareSession(t *testing.T) {
	srv := startRedis(t)
	opts := redissession.Options{Prefix: "agent", Timeout: 5 * time.Second}
	a, err := redissession.New(srv.Client(), opts)
	require.NoError(t, err)
	b, err := redissession.New(srv.Client(), opts)
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "chat-1"}

	read, err := a.Append(bg, k, event("read_email", "rec-1", []string{"untrusted"}, "de89370400440532013000"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), read.Seq)
	got, err := b.Lookup(bg, k, "untrusted", []string{"de89370400440532013000"})
	require.NoError(t, err)
	assert.Equal(t, map[string]scope.Origin{"de89370400440532013000": read}, got, "replica b sees the token replica a indexed")
	require.NoError(t, b.Remember(bg, k, "ask-invite", "dora@example.com", scope.Origin{Tool: "invite", CallID: "rec-2", Seq: 2}))
	o, ok, err := a.Remembered(bg, k, "ask-invite", "dora@example.com")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, scope.Origin{Tool: "invite", CallID: "rec-2", Seq: 2}, o)

	// Both replicas append at once from several goroutines each.
	const perReplica, goroutines = 100, 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
	)
	for _, s := range []*redissession.Store{a, b} {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perReplica / goroutines {
					o, err := s.Append(bg, k, event("send", fmt.Sprintf("g%d-%d", g, i), []string{"private"}))
					assert.NoError(t, err)
					mu.Lock()
					seqs = append(seqs, o.Seq)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, seq := range seqs {
		require.Equal(t, uint64(i+2), seq, "sequence numbers across replicas: %v", seqs)
	}
	stA, err := a.Load(bg, k)
	require.NoError(t, err)
	stB, err := b.Load(bg, k)
	require.NoError(t, err)
	assert.Equal(t, stA, stB)
	assert.Equal(t, uint64(1+2*perReplica), stA.Calls)
	assert.Equal(t, map[string]int{"read_email": 1, "send": 2 * perReplica}, stA.Tools)
	assert.Equal(t, []scope.LabelOrigin{{Label: "private", Origin: scope.Origin{Tool: "send", CallID: stA.Labels[0].CallID, Seq: 2}}, {Label: "untrusted", Origin: read}}, stA.Labels)

	// A replica under another prefix is another deployment: it sees nothing.
	c, err := redissession.New(srv.Client(), redissession.Options{Prefix: "other", Timeout: 5 * time.Second})
	require.NoError(t, err)
	st, err := c.Load(bg, k)
	require.NoError(t, err)
	assert.Zero(t, st.Calls)
}

// callAll calls every method of s on k and returns their errors, and how
// long each took.
func callAll(s *redissession.Store, k toolguard.SessionKey) (errs []error, took []time.Duration) {
	for _, f := range []func() error{
		func() error { _, err := s.Load(bg, k); return err },
		func() error { _, err := s.Lookup(bg, k, "untrusted", []string{"x"}); return err },
		func() error { _, err := s.Append(bg, k, event("t", "r", []string{"untrusted"}, "x")); return err },
		func() error { return s.Remember(bg, k, "rule", "key", scope.Origin{Tool: "t", Seq: 1}) },
		func() error { _, _, err := s.Remembered(bg, k, "rule", "key"); return err },
	} {
		start := time.Now()
		errs = append(errs, f())
		took = append(took, time.Since(start))
	}
	return errs, took
}

// slack is how much longer than its timeout an operation may take:
// scheduling, and the race detector on a busy machine. It is well under the
// client's own 3s read timeout, which an unbounded wait would reach.
const slack = 900 * time.Millisecond

// Redis paused, then killed, then back: every operation fails with
// ErrUnavailable within the timeout, and works again once Redis is back.
func TestOutageFailsClosed(t *testing.T) {
	srv := startRedis(t)
	const timeout = 100 * time.Millisecond
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: timeout}) // the client's defaults: 3s read timeout, 3 retries
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "s"}
	working := func() bool {
		errs, _ := callAll(s, k)
		return errors.Join(errs...) == nil
	}
	require.Eventually(t, working, 10*time.Second, 10*time.Millisecond)

	for _, stage := range []struct {
		name          string
		before, after func()
		wantErr       string
	}{
		{"paused", srv.Pause, srv.Resume, "redissession: redis is unavailable: no answer within 100ms"},
		{"killed", srv.Stop, srv.Start, "redissession: redis is unavailable"},
	} {
		t.Run(stage.name, func(t *testing.T) {
			stage.before()
			for range 2 {
				errs, took := callAll(s, k)
				for i, err := range errs {
					require.ErrorIs(t, err, redissession.ErrUnavailable, "method %d", i)
					assert.ErrorContains(t, err, stage.wantErr)
					assert.NotErrorIs(t, err, toolguard.ErrSessionFull)
					assert.Less(t, took[i], timeout+slack, "method %d must give up at the timeout", i)
				}
			}
			stage.after()
			require.Eventually(t, working, 10*time.Second, 10*time.Millisecond, "the store must work again once Redis is back")
		})
	}

	// A cancelled context is an error, not a Redis outage.
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err = s.Load(ctx, k)
	require.ErrorIs(t, err, context.Canceled)
}

// Redis killed while many goroutines append: every call either succeeds
// with a sequence number no other call got, or fails with ErrUnavailable.
// Nothing panics or hangs.
func TestKilledWhileAppending(t *testing.T) {
	srv := startRedis(t)
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "s"}
	_, err = s.Append(bg, k, event("warm", "r0", nil))
	require.NoError(t, err)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		seqs     []uint64
		failures int
		stop     = make(chan struct{})
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o, err := s.Append(bg, k, event("t", fmt.Sprintf("%d-%d", g, i), []string{"untrusted"}, fmt.Sprint(i)))
				mu.Lock()
				if err != nil {
					if !errors.Is(err, redissession.ErrUnavailable) {
						t.Errorf("append failed with %v, want ErrUnavailable", err)
					}
					failures++
				} else {
					seqs = append(seqs, o.Seq)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Positive(t, failures, "the kill was not noticed")
	require.Greater(t, len(seqs), 8, "the appends did not run before the kill")
	slices.Sort(seqs)
	require.Equal(t, len(seqs), len(slices.Compact(slices.Clone(seqs))), "a sequence number was given twice")
	t.Logf("%d appends before the kill, %d failed after it", len(seqs), failures)
}

// Every key of a session expires TTL after its last use (any use), all
// together; a session never seen creates no key. An expired session is
// refused, not restarted empty, for ExpiredFor more.
func TestTTLSliding(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client()
	const ttl, expiredFor = time.Second, 1500 * time.Millisecond
	s, err := redissession.New(client, redissession.Options{TTL: ttl, ExpiredFor: expiredFor, Timeout: 5 * time.Second, MaxCalls: 2})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "s"}

	_, err = s.Load(bg, k)
	require.NoError(t, err)
	_, err = s.Lookup(bg, k, "l", []string{"x"})
	require.NoError(t, err)
	_, _, err = s.Remembered(bg, k, "rule", "key")
	require.NoError(t, err)
	require.Zero(t, client.DBSize(bg).Val(), "reading a session never seen created keys")

	_, err = s.Append(bg, k, event("read", "r1", []string{"untrusted"}, "x"))
	require.NoError(t, err)
	require.NoError(t, s.Remember(bg, k, "rule", "key", scope.Origin{Tool: "t", Seq: 1}))
	keys := client.Keys(bg, "*").Val()
	require.Len(t, keys, 6, "keys %q", keys)
	for _, key := range keys {
		pttl := time.Duration(client.PTTL(bg, key).Val())
		want := ttl
		if strings.HasSuffix(key, ":g") {
			want = ttl + expiredFor
		}
		assert.Greater(t, pttl, want-ttl/2, "key %q", key)
		assert.LessOrEqual(t, pttl, want, "key %q", key)
	}

	// Used every 0.6s, the session outlives its TTL.
	for _, use := range []func() error{
		func() error { _, err := s.Lookup(bg, k, "untrusted", []string{"x"}); return err },
		func() error { _, _, err := s.Remembered(bg, k, "rule", "key"); return err },
	} {
		time.Sleep(ttl * 6 / 10)
		require.NoError(t, use())
	}
	time.Sleep(ttl * 6 / 10)
	st, err := s.Load(bg, k)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Calls, "the session expired although it was in use")
	got, err := s.Lookup(bg, k, "untrusted", []string{"x"})
	require.NoError(t, err)
	require.Len(t, got, 1, "the provenance index expired apart from the session")

	// Left alone, its data goes together, and the session is refused as
	// expired rather than given an empty history.
	require.Eventually(t, func() bool { return client.DBSize(bg).Val() == 1 }, 3*ttl, 20*time.Millisecond)
	errs, _ := callAll(s, k)
	for i, err := range errs {
		require.ErrorIs(t, err, toolguard.ErrSessionFull, "method %d", i)
		require.ErrorContains(t, err, "the session expired after 1s without calls")
	}
	require.Equal(t, int64(1), client.DBSize(bg).Val(), "a refused call stores nothing")
	// Then that is forgotten too, and the id starts afresh.
	require.Eventually(t, func() bool { return client.DBSize(bg).Val() == 0 }, 3*(ttl+expiredFor), 20*time.Millisecond)
	st, err = s.Load(bg, k)
	require.NoError(t, err)
	require.Zero(t, st.Calls)

	// A full session stays full while it is used.
	for range 2 {
		_, err = s.Append(bg, k, event("t", "r", nil))
		require.NoError(t, err)
	}
	_, err = s.Append(bg, k, event("t", "r", nil))
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
	for range 3 {
		time.Sleep(ttl / 2)
		_, err = s.Load(bg, k)
		require.ErrorIs(t, err, toolguard.ErrSessionFull)
		require.ErrorContains(t, err, "the session has run its limit of 2 calls")
	}
}

// Keys hold no part of the ids, whatever they contain: every key is the
// prefix, a SHA-256 and one letter, and each session has its own hash tag.
func TestKeysHideIDs(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client()
	s, err := redissession.New(client, redissession.Options{Prefix: "ag", Timeout: 5 * time.Second})
	require.NoError(t, err)
	ids := []string{"a", "a:b", "{x}", "}", "{", "\n", "a\r\nDEL *", "*", "", "\x00", strings.Repeat("z", 5000)}
	var keys []toolguard.SessionKey
	for _, p := range []string{"alice", "alice:", "{alice}", "mallory\n"} {
		for _, id := range ids {
			keys = append(keys, toolguard.SessionKey{Principal: p, Session: id})
		}
	}
	for i, k := range keys {
		_, err := s.Append(bg, k, event("t", "r", []string{"l"}, "tok"))
		require.NoError(t, err)
		require.NoError(t, s.Remember(bg, k, "rule", "key", scope.Origin{Seq: uint64(i)}))
	}
	valid := regexp.MustCompile(`^\{ag:[0-9a-f]{64}\}:[mltpag]$`)
	tags := map[string]int{}
	for _, key := range client.Keys(bg, "*").Val() {
		require.Regexp(t, valid, key)
		tags[key[:strings.IndexByte(key, '}')+1]]++
	}
	assert.Len(t, tags, len(keys), "one hash tag per session")
	for tag, n := range tags {
		assert.Equal(t, 6, n, "tag %s", tag)
	}
}

// With maxmemory and noeviction, a Redis that is full refuses writes: the
// store fails closed rather than lose a session's history.
func TestRedisOutOfMemoryFailsClosed(t *testing.T) {
	srv := startRedis(t, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: 5 * time.Second, MaxTokens: 1 << 30})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "s"}
	tokens := make([]string, 1000)
	var lastErr error
	appended := 0
	for ; appended < 1000; appended++ {
		for j := range tokens {
			tokens[j] = fmt.Sprintf("token-%d-%d-%s", appended, j, strings.Repeat("x", 40))
		}
		if _, lastErr = s.Append(bg, k, event("t", "r", []string{"untrusted"}, tokens...)); lastErr != nil {
			break
		}
	}
	require.ErrorIs(t, lastErr, redissession.ErrUnavailable)
	assert.ErrorContains(t, lastErr, "OOM")
	assert.Less(t, appended, 100)
	// The refused append left nothing behind, and the session can still be
	// read: the guard can explain its denials.
	st, err := s.Load(bg, k)
	require.NoError(t, err)
	assert.Equal(t, uint64(appended), st.Calls)
	assert.Equal(t, appended*len(tokens), st.Tokens)
	found, err := s.Lookup(bg, k, "untrusted", []string{"token-0-0-" + strings.Repeat("x", 40), tokens[0]})
	require.NoError(t, err)
	assert.Len(t, found, 1)
}

// Tool names and call ids are stored and read back exactly, whatever they
// contain.
func TestOriginsRoundTrip(t *testing.T) {
	srv := startRedis(t)
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "p", Session: "s"}
	for i, o := range []scope.Origin{
		{Tool: "", CallID: ""},
		{Tool: "12:ab", CallID: "3:x"},
		{Tool: ":", CallID: ":"},
		{Tool: "a\nb", CallID: "\x00\xff"},
		{Tool: "é", CallID: strings.Repeat("r", 1000)},
	} {
		label := fmt.Sprint("l", i)
		got, err := s.Append(bg, k, event(o.Tool, o.CallID, []string{label}, "tok"))
		require.NoError(t, err)
		o.Seq = uint64(i + 1)
		require.Equal(t, o, got)
		found, err := s.Lookup(bg, k, label, []string{"tok"})
		require.NoError(t, err)
		require.Equal(t, o, found["tok"])
		require.NoError(t, s.Remember(bg, k, label, "", o))
		r, ok, err := s.Remembered(bg, k, label, "")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, o, r)
		st, err := s.Load(bg, k)
		require.NoError(t, err)
		require.Equal(t, o, st.Labels[i].Origin)
		require.Equal(t, 1, st.Tools[o.Tool])
	}
}

// Load refuses a session that holds MaxCalls calls, so that the call that
// would not fit is denied before it runs; a Remember beyond MaxCalls
// approvals fills the session too.
func TestBoundsBeforeTheCall(t *testing.T) {
	srv := startRedis(t)
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: 5 * time.Second, MaxCalls: 3})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "p", Session: "calls"}
	for i := range 3 {
		_, err := s.Load(bg, k)
		require.NoError(t, err, "before call %d", i+1)
		_, err = s.Append(bg, k, event("t", "r", nil))
		require.NoError(t, err)
	}
	_, err = s.Load(bg, k)
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
	assert.ErrorContains(t, err, "the session has run its limit of 3 calls")

	k = toolguard.SessionKey{Principal: "p", Session: "approvals"}
	for i := range 3 {
		require.NoError(t, s.Remember(bg, k, "rule", fmt.Sprint(i), scope.Origin{}))
	}
	require.NoError(t, s.Remember(bg, k, "rule", "0", scope.Origin{}), "an approval held already costs nothing")
	err = s.Remember(bg, k, "rule", "3", scope.Origin{})
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
	assert.ErrorContains(t, err, "the session holds its limit of 3 remembered approvals")
	_, _, err = s.Remembered(bg, k, "rule", "0")
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
	_, err = s.Lookup(bg, k, "l", []string{"x"})
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
	_, err = s.Load(bg, k)
	require.ErrorIs(t, err, toolguard.ErrSessionFull)
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, opts := range []redissession.Options{
		{Prefix: "a{b"},
		{Prefix: "}"},
		{TTL: -time.Second},
		{TTL: time.Microsecond},
		{Timeout: -1},
		{MaxCalls: -1},
		{MaxLabels: -1},
		{MaxTokens: 1 << 41},
	} {
		_, err := redissession.New(client, opts)
		assert.Error(t, err, "%+v", opts)
	}
	_, err := redissession.New(nil, redissession.Options{})
	assert.Error(t, err)
}

// The zero Store has no client: every method is an error, not a panic.
func TestZeroStore(t *testing.T) {
	var s redissession.Store
	errs, _ := callAll(&s, toolguard.SessionKey{})
	for i, err := range errs {
		assert.ErrorContains(t, err, "no client", "method %d", i)
	}
	var nilStore *redissession.Store
	_, err := nilStore.Load(bg, toolguard.SessionKey{})
	assert.Error(t, err)
}

// A Redis without persistence forgets its sessions when it restarts: the
// session starts again empty. This is why the documentation asks for
// appendonly where that matters.
func TestRestartWithoutPersistenceForgets(t *testing.T) {
	srv := startRedis(t)
	s, err := redissession.New(srv.Client(), redissession.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	k := toolguard.SessionKey{Principal: "alice", Session: "s"}
	_, err = s.Append(bg, k, event("read_email", "r1", []string{"untrusted"}, "x"))
	require.NoError(t, err)
	srv.Stop()
	srv.Start()
	var st toolguard.SessionState
	require.Eventually(t, func() bool { st, err = s.Load(bg, k); return err == nil }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, st.Calls)
	assert.Empty(t, st.Labels)
}
