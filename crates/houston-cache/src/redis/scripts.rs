//! Lua scripts, so each cache operation is one atomic round trip.
//!
//! Entries are versioned per workspace: the key of an entry contains the workspace's current
//! version, and an invalidation increments that version, so every entry of the workspace in
//! Redis becomes unreachable at once without scanning for keys. The version key and the entry
//! keys share the `{workspace}` hash tag, so on a Redis cluster they live in one slot.

use fred::types::scripts::Script;

/// Reads the version and, if present, the entry and its remaining lifetime.
///
/// KEYS[1]: version key. ARGV[1]: entry key up to the version. ARGV[2]: entry key after it.
/// Returns `{version}` or `{version, value, pttl_ms}`.
const GET: &str = r"
local version = redis.call('GET', KEYS[1]) or '0'
local key = ARGV[1] .. version .. ARGV[2]
local value = redis.call('GET', key)
if not value then
  return {version}
end
return {version, value, redis.call('PTTL', key)}
";

/// Stores an entry unless the version changed since the miss.
///
/// KEYS[1]: version key. ARGV[1], ARGV[2]: entry key around the version. ARGV[3]: version
/// seen at the miss. ARGV[4]: value. ARGV[5]: time to live in ms. Returns 1 when stored.
const PUT: &str = r"
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[3] then
  return 0
end
redis.call('SET', ARGV[1] .. version .. ARGV[2], ARGV[4], 'PX', ARGV[5])
return 1
";

/// Makes every entry of a workspace unreachable and publishes the message to every replica.
///
/// KEYS[1]: version key. ARGV[1]: channel. ARGV[2]: message. ARGV[3]: lifetime of the
/// version key in ms. Returns the number of subscribers that received the message.
const INVALIDATE: &str = r"
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
";

/// Counts one request with GCRA; the same arithmetic as `rate_limit::gcra`.
///
/// KEYS[1]: limit key. ARGV[1]: emission interval in µs. ARGV[2]: burst tolerance in µs.
/// ARGV[3]: now in µs, or empty to use the Redis server clock, which every replica shares.
/// Returns 0 when allowed, else the retry-after delay in µs.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local ahead = tat - now
if ahead > tolerance then
  return ahead - tolerance
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return 0
";

/// The scripts, hashed once.
pub(crate) struct Scripts {
    pub(crate) get: Script,
    pub(crate) put: Script,
    pub(crate) invalidate: Script,
    pub(crate) gcra: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            get: Script::from_lua(GET),
            put: Script::from_lua(PUT),
            invalidate: Script::from_lua(INVALIDATE),
            gcra: Script::from_lua(GCRA),
        }
    }
}
