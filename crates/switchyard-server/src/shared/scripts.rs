//! The Lua scripts the replicas run on Redis: each is one round trip and atomic, and reads
//! the time from Redis (`TIME`), so that replicas whose clocks differ still agree.
//! Numbers kept in Redis are written with `%d`, never in Lua's `%.14g` form.

/// A tenant's request bucket as GCRA (the generic cell rate algorithm, the same one the
/// in-process limiter runs): `KEYS[1]` the bucket, `ARGV[1]` the emission interval and
/// `ARGV[2]` the burst, in microseconds and requests. Returns 0 when admitted, else the
/// microseconds until a request would be.
pub const RATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - (burst - 1) * interval
if now < allowed_at then return allowed_at - now end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
return 0
";

/// The sliding windows of [`LOGIN_ATTEMPT`] and [`LOGIN_FAILED`]: a sorted set of events
/// by time in milliseconds.
const WINDOWS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function full_for(key, window, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= max then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
  end
  return 0
end
local function push(key, window, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
";

/// Whether a login may go on: `KEYS[1]` the account's failures, `KEYS[2]` the address's
/// failures, `KEYS[3]` the address's attempts; `ARGV[1]` the failure window (ms),
/// `ARGV[2]` failures per account, `ARGV[3]` failures per address, `ARGV[4]` attempts per
/// address a minute, `ARGV[5]` a unique member, `ARGV[6]` `1` when the address is known.
/// Counts the attempt. Returns `{0, 0}`, or `{1, seconds}` for the account, `{2, seconds}`
/// for the address.
pub fn login_attempt() -> String {
    format!(
        "{WINDOWS}{}",
        r"
if ARGV[6] == '1' then
  local s = full_for(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[3]))
  if s > 0 then return {2, s} end
  s = full_for(KEYS[3], 60000, tonumber(ARGV[4]))
  if s > 0 then return {2, s} end
  push(KEYS[3], 60000, ARGV[5])
end
local s = full_for(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if s > 0 then return {1, s} end
return {0, 0}
"
    )
}

/// Records a failed login: `KEYS[1]` the account's failures, `KEYS[2]` the address's;
/// `ARGV[1]` the window (ms), `ARGV[2]` a unique member, `ARGV[3]` `1` when the address is
/// known.
pub fn login_failed() -> String {
    format!(
        "{WINDOWS}{}",
        r"
push(KEYS[1], tonumber(ARGV[1]), ARGV[2])
if ARGV[3] == '1' then push(KEYS[2], tonumber(ARGV[1]), ARGV[2]) end
return 0
"
    )
}

/// How long a tenant's circuits are remembered after their last change.
const CIRCUITS_TTL_MS: &str = "86400000";

/// A failed call (or check) of an agent: `KEYS[1]` the tenant's circuits, `ARGV[1]` the
/// agent, `ARGV[2]` the failures that open its circuit, `ARGV[3]` how long it stays open
/// (ms), `ARGV[4]` `1` when this failure opens it whatever the count (a failed trial call
/// or health check). Returns `{failures, open until (ms, 0: closed), now (ms)}`.
pub fn circuit_failed() -> String {
    format!(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':f', 1)
local o = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':o') or '0')
if ARGV[4] == '1' or (f >= tonumber(ARGV[2]) and o == 0) then
  o = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[1] .. ':o', string.format('%d', o))
end
redis.call('PEXPIRE', KEYS[1], {CIRCUITS_TTL_MS})
return {{f, string.format('%d', o), string.format('%d', now)}}
"
    )
}

/// The tenant's circuits as the replicas share them: `KEYS[1]`. Returns the time (ms) and
/// then the hash's fields and values (`AGENT:f` failures, `AGENT:o` open until, ms).
pub const CIRCUITS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, string.format('%d', now))
return out
";
