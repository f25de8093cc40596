// Package redislimit keeps a policy's rates, quotas and concurrency caps in
// Redis, so that they hold across every process of an agent that shares
// the Redis: four replicas under a limit of 50 calls a second make 50 calls
// a second between them, not 200.
//
// # Use
//
// Give a [Limiter] to the guard in place of the default in-memory one:
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	l, err := redislimit.New(client, redislimit.Options{})
//	...
//	g, err := toolguard.New(policy, toolguard.WithLimiter(l), toolguard.WithSink(log))
//
// The limits, their keys and their costs come from the policy as usual; the
// Limiter only changes where the counts live.
//
// # Failure
//
// Every Take is bounded by Options.Timeout (50ms by default), whatever the
// client's own timeouts: a Redis that is down, slow or answering with
// errors is an error wrapping [ErrUnavailable], and the guard denies the
// call ("the rate limiter could not decide"). With Options.FailOpen the
// call is allowed instead, and every limit result says FailedOpen and why;
// the guard writes both into the decision record ("failed_open": true,
// and an entry in its errors). A cancelled context is an error either way.
//
// An answer that arrives after Take gave up is not wasted silently: if it
// took concurrency slots, they are given back at once. Rate tokens and
// quota units it took stay taken, which can only deny more, never less.
// Enable the client's ContextTimeoutEnabled so that an abandoned request
// stops at the timeout too.
//
// # Data model
//
// Each Take runs one Lua script that checks every limit of the call and
// then, only if all allow it, takes from them all: all or none, atomically
// on the server. Keys are "{prefix}:" + kind + ":" + len(name) + ":" +
// name + ":" + key (hashed with SHA-256 when name and key are long), and
// all of them expire by themselves:
//
//   - A rate is a GCRA cell: a string holding the theoretical arrival time
//     (TAT) in microseconds. A call of cost n fits if
//     max(TAT, now) + n*interval - now <= burst*interval, where interval is
//     Per/Count; it then stores the new TAT, which expires when the bucket
//     would be full again. This is the token bucket of the in-memory
//     limiter, with the same RetryAfter.
//   - A quota is a hash {w: window start, u: units used}. A count from
//     another window does not apply; a call fits if u + cost <= Count. It
//     expires at the end of its window (hours, days, and weeks from Monday,
//     in UTC, as in scope.Limit.Window).
//   - A concurrency cap is a sorted set of leases: member a lease id unique
//     to the call, score its expiry. Expired leases are removed before
//     counting; the key expires with its latest lease. A release removes
//     the call's lease at once; a process that dies without releasing
//     holds its slots until its leases expire, Options.LeaseTTL (30s by
//     default) after it last renewed them. A live holder renews every
//     LeaseTTL/3, so long calls keep their slots.
//
// # Clock
//
// The scripts read the Redis server's clock (TIME), not the caller's: the
// now passed to Take is ignored. Replicas whose clocks disagree still agree
// on when a bucket refills, a window ends or a lease expires, and a
// replica with a clock far ahead cannot drain the others' buckets.
//
// # Redis Cluster
//
// Every key of a Limiter has the hash tag {Prefix}, so one script can touch
// all of a call's keys on a cluster: they live in one slot, on one shard.
// Limiters with different prefixes spread over shards.
package redislimit
