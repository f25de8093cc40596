package redislimit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The scripts read the clock once (Redis TIME, or ARGV when the limiter
// runs on the caller's clock in tests) and work in integer microseconds.
// Lua 5.1 turns numbers into strings with "%.14g", which would round a
// microsecond timestamp, so every number handed to Redis goes through s().

// takeScript decides all the uses of one call, all or none.
//
//	KEYS[i]   the key of use i
//	ARGV[1]   "1" for a dry run
//	ARGV[2]   now in microseconds, or "" to use Redis TIME
//	ARGV[3]   the lease id for concurrency caps
//	ARGV[4]   the lease time in microseconds
//	ARGV[5..] five per use: kind, count, p1, p2, cost
//	          rate ("r"):        p1 emission interval (µs), p2 burst
//	          quota ("q"):       p1 window length (µs), p2 window offset (µs)
//	          concurrency ("c"): p1, p2 unused
//
// It returns {allowed, then per use: allowed, retry after (µs; -1 never),
// used}.
var takeScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local function s(x) return string.format('%.0f', x) end
local function ms(x)
  local v = math.ceil(x / 1000)
  if v < 1 then v = 1 end
  return s(v)
end
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local dry = ARGV[1] == '1'
local lease = ARGV[3]
local ttl = tonumber(ARGV[4])
local out = {0}
local ok = true
local pending = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local b = 4 + (i - 1) * 5
  local kind = ARGV[b + 1]
  local count = tonumber(ARGV[b + 2])
  local p1 = tonumber(ARGV[b + 3])
  local p2 = tonumber(ARGV[b + 4])
  local cost = tonumber(ARGV[b + 5])
  local allowed, retry, used = 1, 0, 0
  if kind == 'r' then
    -- GCRA: the key holds the theoretical arrival time (TAT). A call of
    -- cost n fits if max(TAT, now) + n*interval - now <= burst*interval.
    local tat = tonumber(redis.call('GET', key)) or now
    if tat < now then tat = now end
    local newtat = math.ceil(tat + cost * p1)
    local tolerance = p2 * p1
    if cost > p2 or count <= 0 then
      allowed, retry = 0, -1
    elseif newtat - now > tolerance then
      allowed, retry = 0, math.ceil(newtat - now - tolerance)
    end
    pending[i] = newtat
  elseif kind == 'q' then
    -- A hash {w = window start, u = units used}; another window's count
    -- does not apply.
    local start = now - math.fmod(now - p2, p1)
    local h = redis.call('HMGET', key, 'w', 'u')
    if tonumber(h[1]) == start then used = tonumber(h[2]) or 0 end
    if used + cost > count then allowed, retry = 0, start + p1 - now end
    pending[i] = {start, used + cost, start + p1}
  else
    -- A sorted set of leases scored by their expiry.
    if not dry then redis.call('ZREMRANGEBYSCORE', key, '-inf', s(now)) end
    used = redis.call('ZCOUNT', key, '(' .. s(now), '+inf')
    if used >= count then allowed = 0 end
  end
  if allowed == 0 then ok = false end
  out[#out + 1] = allowed
  out[#out + 1] = retry
  out[#out + 1] = used
end
if ok and not dry then
  for i = 1, #KEYS do
    local key = KEYS[i]
    local kind = ARGV[4 + (i - 1) * 5 + 1]
    if kind == 'r' then
      redis.call('SET', key, s(pending[i]), 'PX', ms(pending[i] - now))
    elseif kind == 'q' then
      local q = pending[i]
      redis.call('HSET', key, 'w', s(q[1]), 'u', s(q[2]))
      redis.call('PEXPIRE', key, ms(q[3] - now))
    else
      redis.call('ZADD', key, s(now + ttl), lease)
      local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      redis.call('PEXPIRE', key, ms(tonumber(top[2]) - now))
    end
  end
  out[1] = 1
end
return out
`)

// renewScript extends a live lease on each of KEYS to now + ARGV[2]
// microseconds. ARGV[1] is now or "" for Redis TIME, ARGV[3] the lease id.
// A lease that is gone (released, or expired) is not brought back. It
// returns {how many leases it renewed}.
var renewScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local function s(x) return string.format('%.0f', x) end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local ttl = tonumber(ARGV[2])
local n = 0
for i = 1, #KEYS do
  local score = tonumber(redis.call('ZSCORE', KEYS[i], ARGV[3]))
  if score and score > now then
    redis.call('ZADD', KEYS[i], 'XX', s(now + ttl), ARGV[3])
    local top = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    local v = math.ceil((tonumber(top[2]) - now) / 1000)
    if v < 1 then v = 1 end
    redis.call('PEXPIRE', KEYS[i], s(v))
    n = n + 1
  end
end
return {n}
`)

// releaseScript removes lease ARGV[1] from each of KEYS.
var releaseScript = redis.NewScript(`
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return {}
`)

// maxReadableKey is the longest limit name and key kept readable in a Redis
// key; longer ones are hashed so that a hostile key cannot make Redis keys
// grow without bound.
const maxReadableKey = 200

// appendKey appends the Redis key of one use: the hash-tagged prefix, the
// kind, then the limit's name and bucket key. The name is length-prefixed,
// so that ("a:b", "c") and ("a", "b:c") stay apart.
func appendKey(dst []byte, prefix string, kind byte, name, key string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, kind, ':')
	if len(name)+len(key) > maxReadableKey {
		h := sha256.New()
		var n [20]byte
		h.Write(strconv.AppendInt(n[:0], int64(len(name)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(name))
		h.Write([]byte{':'})
		h.Write([]byte(key))
		var sum [sha256.Size]byte
		dst = append(dst, "h:"...)
		return hex.AppendEncode(dst, h.Sum(sum[:0]))
	}
	dst = strconv.AppendInt(dst, int64(len(name)), 10)
	dst = append(dst, ':')
	dst = append(dst, name...)
	dst = append(dst, ':')
	return append(dst, key...)
}
