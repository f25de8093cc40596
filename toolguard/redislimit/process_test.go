package redislimit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard/redislimit"
)

// The limits the helper processes share.
const (
	sharedRate  = 50 // calls per second
	sharedBurst = 5
	sharedCap   = 3 // calls in flight
	hammerFor   = 3 * time.Second
)

var (
	sharedRateLimit = scope.Limit{Name: "calls", Kind: scope.LimitRate, Count: sharedRate, Per: time.Second, Burst: sharedBurst}
	sharedCapLimit  = scope.Limit{Name: "slots", Kind: scope.LimitConcurrency, Count: sharedCap}
)

// hammerReport is what a helper process prints.
type hammerReport struct {
	Calls       [][2]int64 // allowed rate calls: Unix ns before and after Take
	Denied      int
	Errors      []string
	Slots       int   // concurrency slots taken
	MaxInFlight int64 // most calls in flight seen, across all processes
}

// TestHelperProcess is not a test: the tests below run the test binary
// again as helper processes, which take limits from a shared Redis.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("REDISLIMIT_HELPER")
	if mode == "" {
		t.Skip("runs only as a helper process of the multi-process tests")
	}
	client := redis.NewClient(&redis.Options{Addr: os.Getenv("REDISLIMIT_ADDR")})
	ttl, _ := time.ParseDuration(os.Getenv("REDISLIMIT_LEASE_TTL"))
	l, err := redislimit.New(client, redislimit.Options{Timeout: 5 * time.Second, LeaseTTL: ttl})
	require.NoError(t, err)
	ctx := context.Background()
	switch mode {
	case "hammer":
		fmt.Println(mustJSON(hammer(ctx, client, l)))
	case "hold":
		for i := 0; i < sharedCap; i++ {
			res, _, err := l.Take(ctx, time.Now(), []scope.LimitUse{{Limit: sharedCapLimit, Key: "all", Cost: 1}}, false)
			require.NoError(t, err)
			require.True(t, res[0].Allowed)
		}
		fmt.Println("held")
		select {} // until killed
	}
	os.Exit(0) // keep the testing package from printing to stdout
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hammer takes the shared rate from one goroutine and the shared cap from
// three, as fast as it can, for hammerFor.
func hammer(ctx context.Context, client *redis.Client, l *redislimit.Limiter) hammerReport {
	var (
		mu  sync.Mutex
		rep hammerReport
		wg  sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		rep.Errors = append(rep.Errors, err.Error())
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	end := time.Now().Add(hammerFor)
	wg.Add(1)
	go func() {
		defer wg.Done()
		uses := []scope.LimitUse{{Limit: sharedRateLimit, Key: "all", Cost: 1}}
		for time.Now().Before(end) {
			before := time.Now()
			res, _, err := l.Take(ctx, before, uses, false)
			after := time.Now()
			if err != nil {
				fail(err)
				continue
			}
			mu.Lock()
			if res[0].Allowed {
				rep.Calls = append(rep.Calls, [2]int64{before.UnixNano(), after.UnixNano()})
			} else {
				rep.Denied++
			}
			mu.Unlock()
			if !res[0].Allowed {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uses := []scope.LimitUse{{Limit: sharedCapLimit, Key: "all", Cost: 1}}
			for time.Now().Before(end) {
				res, release, err := l.Take(ctx, time.Now(), uses, false)
				if err != nil {
					fail(err)
					continue
				}
				if !res[0].Allowed {
					time.Sleep(time.Millisecond)
					continue
				}
				// Counted outside the limiter, inside the slot: the count
				// can only be lower than the slots held.
				n, err := client.Incr(ctx, "inflight").Result()
				if err != nil {
					fail(err)
				}
				time.Sleep(2 * time.Millisecond)
				if err := client.Decr(ctx, "inflight").Err(); err != nil {
					fail(err)
				}
				release()
				mu.Lock()
				rep.Slots++
				rep.MaxInFlight = max(rep.MaxInFlight, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return rep
}

func helper(t *testing.T, mode, addr string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{"REDISLIMIT_HELPER=" + mode, "REDISLIMIT_ADDR=" + addr}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// Four processes share one rate of 50 calls a second (burst 5) and one cap
// of 3 calls in flight, for three seconds.
//
// The rate is checked over every 1-s window [s, s+1s] that starts when a
// call started. A call counts in a window only if its whole Take ran inside
// it, so its decision (made on the Redis server's clock, which is this
// machine's clock) fell inside it too. A token bucket allows at most
// burst + rate*1s calls in such a window, so the bound is exactly 55 and
// the only tolerance is the burst itself.
func TestMultiProcessLimitsHold(t *testing.T) {
	srv := startRedis(t)
	const procs = 4
	reports := make([]hammerReport, procs)
	var wg sync.WaitGroup
	for i := range procs {
		cmd := helper(t, "hammer", srv.Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.Output()
			if !assert.NoError(t, err, "helper %d", i) {
				return
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			assert.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &reports[i]), "helper %d printed %q", i, out)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	var calls [][2]int64
	slots, maxInFlight := 0, int64(0)
	for i, r := range reports {
		assert.Empty(t, r.Errors, "helper %d", i)
		assert.Positive(t, len(r.Calls), "helper %d was allowed no call", i)
		assert.Positive(t, r.Denied, "helper %d was never denied", i)
		calls = append(calls, r.Calls...)
		slots += r.Slots
		maxInFlight = max(maxInFlight, r.MaxInFlight)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i][0] < calls[j][0] })
	worst := 0
	for i, c := range calls {
		n := 0
		for _, d := range calls[i:] {
			if d[0] > c[0]+int64(time.Second) {
				break
			}
			if d[1] <= c[0]+int64(time.Second) {
				n++
			}
		}
		worst = max(worst, n)
	}
	span := time.Duration(calls[len(calls)-1][1] - calls[0][0])
	t.Logf("%d calls allowed in %v across %d processes; busiest 1-s window %d (bound %d); %d slots taken, at most %d in flight (cap %d)",
		len(calls), span.Round(time.Millisecond), procs, worst, sharedRate+sharedBurst, slots, maxInFlight, sharedCap)
	assert.LessOrEqual(t, worst, sharedRate+sharedBurst, "a 1-s window exceeded the shared rate")
	assert.LessOrEqual(t, len(calls), sharedBurst+int(float64(sharedRate)*span.Seconds())+1, "the total exceeded the shared rate")
	// The limit is not just denying everything: most of the rate was used.
	assert.GreaterOrEqual(t, len(calls), int(0.8*sharedRate*hammerFor.Seconds()))

	assert.LessOrEqual(t, maxInFlight, int64(sharedCap), "the shared concurrency cap was exceeded")
	assert.GreaterOrEqual(t, maxInFlight, int64(2), "the cap was never contended")
	assert.Greater(t, slots, 100)
}

// A process killed while it holds concurrency slots does not hold them
// forever: they free when its leases expire, LeaseTTL after its last
// renewal. While it lives, renewals keep them past LeaseTTL.
func TestKilledProcessLeasesExpire(t *testing.T) {
	srv := startRedis(t)
	const ttl = 600 * time.Millisecond
	cmd := helper(t, "hold", srv.Addr, "REDISLIMIT_LEASE_TTL="+ttl.String())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "held\n", line)
	go func() { _ = cmd.Wait(); close(exited) }()

	l, err := redislimit.New(srv.Client(), redislimit.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	uses := []scope.LimitUse{{Limit: sharedCapLimit, Key: "all", Cost: 1}}
	check := func() bool {
		res, release, err := l.Take(context.Background(), time.Now(), uses, false)
		require.NoError(t, err)
		if release != nil {
			release()
		}
		return res[0].Allowed
	}
	require.False(t, check(), "the helper holds every slot")
	time.Sleep(2 * ttl)
	require.False(t, check(), "a live holder renews its leases")

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-exited
	killed := time.Now()
	require.False(t, check(), "killing the holder does not free its slots at once")
	for !check() {
		require.Less(t, time.Since(killed), ttl+time.Second, "the slots were not freed after the lease time")
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("slots freed %v after the kill (lease time %v)", time.Since(killed).Round(time.Millisecond), ttl)
}
