package redislimit_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redislimit"
)

// Long periods keep the caller's clock, which these tests step, ahead of the
// keys' real expiry times.
var (
	hourly  = scope.Limit{Name: "hourly", Kind: scope.LimitRate, Count: 10, Per: time.Hour, Burst: 3}
	daily   = scope.Limit{Name: "daily", Kind: scope.LimitQuota, Count: 10, Per: 24 * time.Hour}
	houry   = scope.Limit{Name: "houry", Kind: scope.LimitQuota, Count: 2, Per: time.Hour}
	weekly  = scope.Limit{Name: "weekly", Kind: scope.LimitQuota, Count: 1, Per: 7 * 24 * time.Hour}
	builds  = scope.Limit{Name: "builds", Kind: scope.LimitConcurrency, Count: 2}
	t0      = time.Date(2030, 3, 6, 10, 30, 0, 0, time.UTC) // a Wednesday
	minutes = func(n int) time.Duration { return time.Duration(n) * time.Minute }
)

func use(l scope.Limit, key string, cost int64) scope.LimitUse {
	return scope.LimitUse{Limit: l, Key: key, Cost: cost}
}

// taker wraps a limiter for terse steps.
type taker struct {
	t *testing.T
	l toolguard.Limiter
}

func (k taker) take(at time.Duration, dry bool, uses ...scope.LimitUse) ([]toolguard.LimitResult, func()) {
	k.t.Helper()
	res, release, err := k.l.Take(context.Background(), t0.Add(at), uses, dry)
	require.NoError(k.t, err)
	require.Len(k.t, res, len(uses))
	for i, r := range res {
		assert.Equal(k.t, uses[i].Name, r.Name)
		assert.Equal(k.t, uses[i].Key, r.Key)
		assert.Equal(k.t, uses[i].Kind, r.Kind)
		assert.False(k.t, r.FailedOpen)
	}
	return res, release
}

func (k taker) allowed(at time.Duration, uses ...scope.LimitUse) []toolguard.LimitResult {
	k.t.Helper()
	res, _ := k.take(at, false, uses...)
	for i, r := range res {
		require.True(k.t, r.Allowed, "use %d (%s) at %v: %+v", i, r.Name, at, r)
	}
	return res
}

func (k taker) denied(at time.Duration, uses ...scope.LimitUse) []toolguard.LimitResult {
	k.t.Helper()
	res, release := k.take(at, false, uses...)
	ok := true
	for _, r := range res {
		ok = ok && r.Allowed
	}
	require.False(k.t, ok, "at %v: %+v", at, res)
	require.Nil(k.t, release, "a denied call holds nothing")
	return res
}

// The same steps run against the in-memory limiter and the Redis one, so
// that both mean the same thing by a limit.
func TestSemanticsMatchMemoryLimiter(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client()
	tests := []struct {
		name string
		run  func(k taker)
	}{
		{"rate burst then refill", func(k taker) {
			for i := 0; i < 3; i++ {
				k.allowed(0, use(hourly, "u", 1))
			}
			r := k.denied(0, use(hourly, "u", 1))
			assert.InDelta(t, minutes(6), r[0].RetryAfter, float64(time.Millisecond))
			assert.Zero(t, r[0].Used)
			k.allowed(minutes(6), use(hourly, "u", 1))
			r = k.denied(minutes(7), use(hourly, "u", 1))
			assert.InDelta(t, minutes(5), r[0].RetryAfter, float64(time.Millisecond))
			k.allowed(0, use(hourly, "other", 1)) // per key
			// Idle for an hour: full again, but no fuller than the burst.
			for i := 0; i < 3; i++ {
				k.allowed(minutes(120), use(hourly, "u", 1))
			}
			k.denied(minutes(120), use(hourly, "u", 1))
		}},
		{"rate cost", func(k taker) {
			k.allowed(0, use(hourly, "u", 2))
			r := k.denied(0, use(hourly, "u", 2))
			assert.InDelta(t, minutes(6), r[0].RetryAfter, float64(time.Millisecond))
			r = k.denied(minutes(600), use(hourly, "u", 4))
			assert.Equal(t, time.Duration(math.MaxInt64), r[0].RetryAfter, "more than the burst is never allowed")
			k.allowed(minutes(600), use(hourly, "u", 3))
			k.allowed(minutes(600), use(hourly, "u", 0))
		}},
		{"quota window and cost", func(k taker) {
			r := k.allowed(0, use(daily, "acme", 6))
			assert.Zero(t, r[0].Used)
			r = k.denied(minutes(30), use(daily, "acme", 5))
			assert.Equal(t, int64(6), r[0].Used)
			assert.Equal(t, 13*time.Hour, r[0].RetryAfter, "until midnight UTC")
			r = k.allowed(minutes(31), use(daily, "acme", 4))
			assert.Equal(t, int64(6), r[0].Used)
			k.denied(minutes(32), use(daily, "acme", 1))
			k.allowed(minutes(32), use(daily, "globex", 10))
			r = k.allowed(minutes(13*60+30), use(daily, "acme", 10)) // the next day
			assert.Zero(t, r[0].Used)
		}},
		{"quota hour and week windows", func(k taker) {
			k.allowed(0, use(houry, "u", 2))
			r := k.denied(minutes(29), use(houry, "u", 1))
			assert.Equal(t, minutes(1), r[0].RetryAfter)
			k.allowed(minutes(30), use(houry, "u", 2))

			k.allowed(0, use(weekly, "u", 1))
			r = k.denied(0, use(weekly, "u", 1))
			// Until Monday 00:00 UTC: Wednesday 10:30 + 4 days 13:30.
			assert.Equal(t, 4*24*time.Hour+13*time.Hour+30*time.Minute, r[0].RetryAfter)
			k.allowed(r[0].RetryAfter, use(weekly, "u", 1))
		}},
		{"concurrency cap and release", func(k taker) {
			r, rel1 := k.take(0, false, use(builds, "acme", 1))
			require.True(t, r[0].Allowed)
			require.NotNil(t, rel1)
			r, rel2 := k.take(0, false, use(builds, "acme", 1))
			require.True(t, r[0].Allowed)
			assert.Equal(t, int64(1), r[0].Used)
			r = k.denied(0, use(builds, "acme", 1))
			assert.Equal(t, int64(2), r[0].Used)
			assert.Zero(t, r[0].RetryAfter)
			k.allowed(0, use(builds, "globex", 1))
			rel1()
			rel1() // idempotent
			_, rel3 := k.take(0, false, use(builds, "acme", 1))
			require.NotNil(t, rel3)
			k.denied(0, use(builds, "acme", 1))
			rel2()
			rel3()
			r, _ = k.take(0, true, use(builds, "acme", 1))
			assert.True(t, r[0].Allowed)
			assert.Zero(t, r[0].Used)
		}},
		{"all or none", func(k taker) {
			one := scope.Limit{Name: "one", Kind: scope.LimitQuota, Count: 1, Per: 24 * time.Hour}
			k.allowed(0, use(hourly, "u", 1), use(one, "u", 1))
			r := k.denied(0, use(hourly, "u", 1), use(builds, "u", 1), use(one, "u", 1))
			assert.Equal(t, []bool{true, true, false}, []bool{r[0].Allowed, r[1].Allowed, r[2].Allowed})
			// The denied call took no token and holds no slot.
			k.allowed(0, use(hourly, "u", 2))
			_, rel := k.take(0, false, use(builds, "u", 1))
			require.NotNil(t, rel)
			r, rel2 := k.take(0, false, use(builds, "u", 1))
			assert.Equal(t, int64(1), r[0].Used)
			require.NotNil(t, rel2)
		}},
		{"dry run takes nothing", func(k taker) {
			for i := 0; i < 10; i++ {
				r, rel := k.take(0, true, use(hourly, "u", 1), use(daily, "u", 5), use(builds, "u", 1))
				assert.Nil(t, rel)
				for _, x := range r {
					assert.True(t, x.Allowed)
				}
				assert.Zero(t, r[1].Used)
				assert.Zero(t, r[2].Used)
			}
			for i := 0; i < 3; i++ {
				k.allowed(0, use(hourly, "u", 1))
			}
			r, _ := k.take(0, true, use(hourly, "u", 1))
			assert.False(t, r[0].Allowed, "a dry run reports a denial too")
			k.allowed(0, use(daily, "u", 10))
		}},
		{"no uses", func(k taker) {
			res, rel, err := k.l.Take(context.Background(), t0, nil, false)
			assert.NoError(t, err)
			assert.Nil(t, res)
			assert.Nil(t, rel)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("memory", func(t *testing.T) {
				tt.run(taker{t, &toolguard.MemoryLimiter{}})
			})
			t.Run("redis", func(t *testing.T) {
				l, err := redislimit.New(client, redislimit.Options{Prefix: strings.ReplaceAll(t.Name(), " ", "_"), Timeout: 5 * time.Second})
				require.NoError(t, err)
				redislimit.UseCallerClock(l)
				tt.run(taker{t, l})
			})
		})
	}
}

func TestNewOptions(t *testing.T) {
	srv := startRedis(t)
	tests := []struct {
		opts    redislimit.Options
		wantErr string
	}{
		{redislimit.Options{}, ""},
		{redislimit.Options{Prefix: "a{b"}, "must not contain braces"},
		{redislimit.Options{Timeout: -1}, "negative"},
		{redislimit.Options{LeaseTTL: time.Microsecond}, "lease time under"},
	}
	for _, tt := range tests {
		l, err := redislimit.New(srv.Client(), tt.opts)
		if tt.wantErr == "" {
			assert.NoError(t, err)
			assert.NotNil(t, l)
			continue
		}
		assert.ErrorContains(t, err, tt.wantErr)
		assert.True(t, strings.HasPrefix(err.Error(), "redislimit: "), err.Error())
	}
	_, err := redislimit.New(nil, redislimit.Options{})
	assert.ErrorContains(t, err, "nil client")

	var zero redislimit.Limiter
	_, _, err = zero.Take(context.Background(), time.Now(), []scope.LimitUse{use(hourly, "u", 1)}, false)
	assert.ErrorContains(t, err, "no client", "the zero Limiter fails closed")
	_, _, err = zero.Take(context.Background(), time.Now(), nil, false)
	assert.NoError(t, err, "no limits, nothing to decide")
}

func TestNegativeCostIsAnError(t *testing.T) {
	srv := startRedis(t)
	l, err := redislimit.New(srv.Client(), redislimit.Options{})
	require.NoError(t, err)
	_, _, err = l.Take(context.Background(), time.Now(), []scope.LimitUse{use(daily, "u", -1)}, false)
	assert.ErrorContains(t, err, "negative cost")
}

// Every key the limiter writes expires by itself: rates when their bucket
// is full again, quotas at the end of their window, leases after LeaseTTL.
func TestKeysExpire(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client()
	l, err := redislimit.New(client, redislimit.Options{Timeout: 5 * time.Second, LeaseTTL: 10 * time.Second})
	require.NoError(t, err)
	ctx := context.Background()
	res, release, err := l.Take(ctx, time.Now(), []scope.LimitUse{
		use(hourly, "u", 2), use(daily, "u", 3), use(builds, "u", 1),
	}, false)
	require.NoError(t, err)
	require.NotNil(t, release)
	for _, r := range res {
		require.True(t, r.Allowed)
	}
	keys, err := client.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 3)
	_, dayEnd := daily.Window(time.Now())
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "{agentguard}:"), k)
		ttl, err := client.PTTL(ctx, k).Result()
		require.NoError(t, err)
		switch k[len("{agentguard}:")] {
		case 'r': // two emission intervals of 6 minutes
			assert.InDelta(t, 12*time.Minute, ttl, float64(time.Second), k)
		case 'q':
			assert.InDelta(t, time.Until(dayEnd), ttl, float64(2*time.Second), k)
		case 'c':
			assert.InDelta(t, 10*time.Second, ttl, float64(time.Second), k)
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	release()
	n, err := client.ZCard(ctx, "{agentguard}:c:6:builds:u").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "release removes the lease")
}
