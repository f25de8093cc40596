package redissession

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// The keys of one session, in the order every script receives them. They
// share the session's hash tag, so that one script may touch them all on a
// Redis Cluster.
const (
	keyMeta     = iota // hash: n calls, t pairs, r approvals, f why it is full
	keyLabels          // hash: label -> origin of its earliest call
	keyTools           // hash: tool -> calls
	keyTokens          // hash: len(label) ":" label token -> earliest origin
	keyApproved        // hash: len(rule) ":" rule key -> origin
	keyGone            // string, outliving the others: the session existed
	keyReserved        // sorted set: call id -> end of its reservation (ms)
	numKeys
)

var keySuffixes = [numKeys]string{"}:m", "}:l", "}:t", "}:p", "}:a", "}:g", "}:v"}

// sessionHash returns the hex SHA-256 of the session's principal and id,
// the principal length-prefixed, so that ("a:b", "c") and ("a", "b:c") stay
// apart. Hashing keeps keys short and free of whatever the ids contain.
func sessionHash(k toolguard.SessionKey) [2 * sha256.Size]byte {
	h := sha256.New()
	var n [24]byte
	h.Write([]byte("agentguard session\x00"))
	h.Write(strconv.AppendInt(n[:0], int64(len(k.Principal)), 10))
	h.Write([]byte{':'})
	h.Write([]byte(k.Principal))
	h.Write([]byte(k.Session))
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], h.Sum(sum[:0]))
	return out
}

// keys returns the Redis keys of session k: "{prefix:hash}:" and a letter.
func (s *Store) keys(k toolguard.SessionKey) [numKeys]string {
	h := sessionHash(k)
	base := s.prefix + string(h[:])
	var keys [numKeys]string
	for i, suf := range keySuffixes {
		keys[i] = base + suf
	}
	return keys
}

// fieldPrefix returns the start of a hash field that pairs name with a
// second string: len(name) ":" name, so that no two pairs share a field.
func fieldPrefix(name string) string {
	return strconv.Itoa(len(name)) + ":" + name
}

// encodeOrigin is the form an origin is stored in: seq ":" len(tool) ":"
// tool callID. The scripts build the same form.
func encodeOrigin(o scope.Origin) string {
	return strconv.FormatUint(o.Seq, 10) + ":" + fieldPrefix(o.Tool) + o.CallID
}

func decodeOrigin(v any) (scope.Origin, error) {
	s, ok := v.(string)
	if !ok {
		return scope.Origin{}, fmt.Errorf("stored origin is a %T", v)
	}
	seqText, rest, ok1 := strings.Cut(s, ":")
	lenText, rest, ok2 := strings.Cut(rest, ":")
	seq, err1 := strconv.ParseUint(seqText, 10, 64)
	n, err2 := strconv.Atoi(lenText)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || n < 0 || n > len(rest) {
		return scope.Origin{}, fmt.Errorf("malformed stored origin %q", s)
	}
	return scope.Origin{Tool: rest[:n], CallID: rest[n:], Seq: seq}, nil
}

// decodeState decodes the reply of loadScript: {1, calls, pairs, {label,
// origin, ...}, {tool, count, ...}}.
func decodeState(v []any) (toolguard.SessionState, error) {
	if len(v) != 5 {
		return toolguard.SessionState{}, fmt.Errorf("unexpected reply of %d values to a load", len(v))
	}
	calls, ok1 := v[1].(int64)
	pairs, ok2 := v[2].(int64)
	labels, ok3 := v[3].([]any)
	tools, ok4 := v[4].([]any)
	if !ok1 || !ok2 || !ok3 || !ok4 || calls < 0 || pairs < 0 || len(labels)%2 != 0 || len(tools)%2 != 0 {
		return toolguard.SessionState{}, errors.New("malformed reply to a load")
	}
	st := toolguard.SessionState{Calls: uint64(calls), Tokens: int(pairs), Tools: make(map[string]int, len(tools)/2)}
	if len(labels) > 0 {
		st.Labels = make([]scope.LabelOrigin, 0, len(labels)/2)
	}
	for i := 0; i < len(labels); i += 2 {
		name, ok := labels[i].(string)
		o, err := decodeOrigin(labels[i+1])
		if !ok || err != nil {
			return toolguard.SessionState{}, errors.New("malformed label in a load")
		}
		st.Labels = append(st.Labels, scope.LabelOrigin{Label: name, Origin: o})
	}
	slices.SortFunc(st.Labels, func(a, b scope.LabelOrigin) int { return strings.Compare(a.Label, b.Label) })
	for i := 0; i < len(tools); i += 2 {
		name, ok := tools[i].(string)
		count, ok2 := tools[i+1].(string)
		n, err := strconv.Atoi(count)
		if !ok || !ok2 || err != nil || n < 0 {
			return toolguard.SessionState{}, errors.New("malformed tool count in a load")
		}
		st.Tools[name] = n
	}
	return st, nil
}

// Every script gets the session's keys in the order above, ARGV[1] the
// time to live and ARGV[2] the time an expired session is still refused,
// both in milliseconds; its own arguments start at ARGV[3]. It replies
// {0, why} when the session is refused (full, or expired), else {1, ...}.
//
// Every use extends the session's keys to the time to live (sliding
// expiry; keys that do not exist stay absent), all in one script, so they
// expire together, and the marker g to the time to live plus the refusal
// time. A session whose keys are gone while g remains has expired.
//
// A script writes nothing before its first command that may grow memory
// (HINCRBY, HSET): Redis refuses a script's writes under maxmemory only
// while it has written nothing, so a PEXPIRE first would let an Append
// past a full Redis. touch() therefore comes last.
const prelude = `
local ttl, gonettl = ARGV[1], ARGV[2]
local function touch(wrote)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
  redis.call('PEXPIRE', KEYS[7], ttl)
  if wrote then
    redis.call('SET', KEYS[6], '1', 'PX', gonettl)
  else
    redis.call('PEXPIRE', KEYS[6], gonettl)
  end
end
local function fieldprefix(s) return #s .. ':' .. s end
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[6]) == 1 then
  touch(false)
  return {0, 'expired'}
end
local meta = redis.call('HMGET', KEYS[1], 'n', 't', 'r', 'f')
local calls = tonumber(meta[1]) or 0
local npairs = tonumber(meta[2]) or 0
local approved = tonumber(meta[3]) or 0
if meta[4] then touch(false) return {0, meta[4]} end
local function refuse(why)
  redis.call('HSET', KEYS[1], 'f', why)
  touch(true)
  return {0, why}
end
`

// loadScript: ARGV[3] the most calls. It replies {1, calls, pairs, {label,
// origin, ...}, {tool, count, ...}}, or {0, "calls"} when the session
// holds the most calls already.
var loadScript = redis.NewScript(prelude + `
touch(false)
if calls >= tonumber(ARGV[3]) then return {0, 'calls'} end
return {1, calls, npairs, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
`)

// lookupScript: ARGV[3] the label's field prefix, ARGV[4..] the tokens. It
// replies {1, origin or nil per token}.
var lookupScript = redis.NewScript(prelude + `
local out = {1}
for i = 4, #ARGV do
  out[#out + 1] = redis.call('HGET', KEYS[4], ARGV[3] .. ARGV[i])
end
touch(false)
return out
`)

// reserveScript: ARGV[3] the most calls, ARGV[4] the call id. It
// reserves one call for the call id, for the time to live, unless the
// calls that ran and the live reservations have reached the most calls.
// It replies {1}, {0, "calls"} when the session holds the most calls, or
// {0, "running"} when the reservations fill the rest. The time is the
// server's, so that replicas' clocks do not matter. The reservation is
// written first (the write that may grow memory), and the meta hash is
// created with it: a session whose meta is gone while g remains has
// expired, and a session that reserved without appending has not.
var reserveScript = redis.NewScript(prelude + `
local maxcalls, callid = tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[7], callid) then touch(false) return {1} end
if calls >= maxcalls then touch(false) return {0, 'calls'} end
if calls + redis.call('ZCOUNT', KEYS[7], '(' .. now, '+inf') >= maxcalls then
  touch(false)
  return {0, 'running'}
end
redis.call('ZADD', KEYS[7], now + tonumber(ttl), callid)
redis.call('HINCRBY', KEYS[1], 'n', 0)
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)
touch(true)
return {1}
`)

// releaseScript: ARGV[1] the call id. It drops the call's reservation, if
// any, and replies {1}.
var releaseScript = redis.NewScript(`
redis.call('ZREM', KEYS[7], ARGV[1])
return {1}
`)

// appendScript: ARGV[3..5] the most calls, labels and pairs, ARGV[6] the
// tool, ARGV[7] the call id, ARGV[8] the number n of labels,
// ARGV[9..8+n] the labels, the rest the tokens (both distinct). It checks
// every bound first and then changes all or nothing; it replies {1, seq},
// or {0, why} after marking the session full. Either way the call's
// reservation is used up (after the first write, for the reason given in
// the prelude).
var appendScript = redis.NewScript(prelude + `
local maxcalls, maxlabels, maxpairs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tool, callid, nl = ARGV[6], ARGV[7], tonumber(ARGV[8])
local function full(why)
  local r = refuse(why)
  redis.call('ZREM', KEYS[7], callid)
  return r
end
local newlabels, newpairs = 0, 0
local prefixes = {}
for i = 1, nl do
  local label = ARGV[8 + i]
  if redis.call('HEXISTS', KEYS[2], label) == 0 then newlabels = newlabels + 1 end
  prefixes[i] = fieldprefix(label)
  for j = 9 + nl, #ARGV do
    if redis.call('HEXISTS', KEYS[4], prefixes[i] .. ARGV[j]) == 0 then newpairs = newpairs + 1 end
  end
end
if calls + 1 > maxcalls then return full('calls') end
if redis.call('HLEN', KEYS[2]) + newlabels > maxlabels then return full('labels') end
if npairs + newpairs > maxpairs then return full('tokens') end
local seq = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('ZREM', KEYS[7], callid)
local origin = string.format('%d', seq) .. ':' .. fieldprefix(tool) .. callid
redis.call('HINCRBY', KEYS[3], tool, 1)
for i = 1, nl do
  redis.call('HSETNX', KEYS[2], ARGV[8 + i], origin)
  for j = 9 + nl, #ARGV do redis.call('HSETNX', KEYS[4], prefixes[i] .. ARGV[j], origin) end
end
if newpairs > 0 then redis.call('HINCRBY', KEYS[1], 't', newpairs) end
touch(true)
return {1, seq}
`)

// rememberScript: ARGV[3] the most approvals, ARGV[4] the field (rule and
// key), ARGV[5] the origin. The first approval of a field is kept. It
// replies {1}, or {0, "approvals"} after marking the session full.
var rememberScript = redis.NewScript(prelude + `
if redis.call('HEXISTS', KEYS[5], ARGV[4]) == 1 then touch(false) return {1} end
if approved + 1 > tonumber(ARGV[3]) then return refuse('approvals') end
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[1], 'r', 1)
touch(true)
return {1}
`)

// rememberedScript: ARGV[3] the field (rule and key). It replies {1,
// origin or nil}.
var rememberedScript = redis.NewScript(prelude + `
local o = redis.call('HGET', KEYS[5], ARGV[3])
touch(false)
return {1, o}
`)
