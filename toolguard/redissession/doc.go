// Package redissession keeps a guard's sessions in Redis, so that every
// replica of an agent that shares the Redis sees the same sessions: a
// label an untrusted read brought in on one replica still holds when the
// next call of the session lands on another.
//
// # Use
//
// Give a [Store] to the guard in place of the default in-memory one:
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	st, err := redissession.New(client, redissession.Options{TTL: 2 * time.Hour})
//	...
//	g, err := toolguard.New(policy, toolguard.WithSessions(st), toolguard.WithSink(log))
//
// # Failure
//
// Every operation is bounded by Options.Timeout (50ms by default), whatever
// the client's own timeouts: a Redis that is down, slow or answering with
// errors is an error wrapping [ErrUnavailable], and the guard denies the
// call. There is no fail-open mode: a flow rule that cannot see the session
// cannot tell an exfiltration from an ordinary call. A cancelled context is
// an error too.
//
// An Append that arrives after the store gave up may still be applied: the
// session then holds a call the guard reported as failed. That can only
// make later decisions stricter.
//
// Run Redis with maxmemory-policy noeviction: a full Redis then refuses an
// Append whole (an error wrapping ErrUnavailable) instead of evicting part
// of a session. A Redis without persistence forgets its sessions when it
// restarts, and they start again empty; use appendonly yes, or replicas
// with failover, where that matters.
//
// # Bounds
//
// A session holds at most Options.MaxCalls calls, MaxLabels distinct
// labels and MaxTokens (label, token) pairs in its provenance index. An
// Append that would go over any of them changes nothing, returns an error
// matching [toolguard.ErrSessionFull] and marks the session full: from then
// on every operation on it returns that error, saying which bound, until it
// expires. Load refuses a session that holds MaxCalls calls already, and
// Reserve, which the guard calls once a call is allowed and before its
// handler runs, counts the calls that ran and those reserved and still
// running in one script: calls of a session running at once, on any
// replicas, never run more than MaxCalls handlers. A reservation the
// call's Append or Release does not end (its replica died) lapses after
// Options.TTL.
//
// A session left unused for Options.TTL expires. Like the in-memory store,
// the Store then refuses it (ErrSessionFull: the session expired) for
// Options.ExpiredFor more, rather than answer as if it had never run: a
// session's history is never forgotten silently while its calls go on.
//
// # Data model
//
// Each operation is one Lua script, one round trip, atomic on the server.
// A session's keys are "{Prefix:" + hex(SHA-256(principal and session id))
// + "}:" and a letter: the ids never appear in a key, whatever they
// contain, and the same session id under two principals is two sessions.
//
//   - m, a hash: n, the calls (Append assigns Seq = n+1); t, the (label,
//     token) pairs held; r, the approvals remembered; f, once full, the
//     bound it reached.
//   - l, a hash from each label to the earliest call that brought it
//     (HSETNX: the first writer wins).
//   - t, a hash from each tool to the calls of it that ran.
//   - p, the provenance index: a hash from len(label) ":" label token to
//     the earliest call whose result carried the token under the label.
//     Lookup reads one field per token: its cost does not grow with the
//     session.
//   - a, a hash from len(rule) ":" rule key to the call in which a human
//     approved it for the rest of the session.
//   - g, a marker that the session existed, kept TTL + ExpiredFor: while
//     it remains and m is gone, the session has expired.
//   - v, a sorted set of the calls reserved and not yet appended, each
//     scored with the time (Redis's clock, in milliseconds) its
//     reservation lapses.
//
// A call is stored as seq ":" len(tool) ":" tool call-id. Every operation
// extends all of the session's keys to Options.TTL (sliding expiry), in
// the same script, so they expire together.
//
// # Redis Cluster
//
// The keys of one session share the hash tag {Prefix:hash}, so one script
// can touch all of them on a cluster; sessions spread over the shards.
package redissession
