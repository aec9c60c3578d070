//! The Lua scripts behind every Redis write and drop.
//!
//! Reads need no script: a key's version, expiry and value are one hash
//! field (a *record*, see the layout in `keys.rs`), so `get`,
//! `get_versioned` and `get_many` are one `HGET` / `HMGET` — one command,
//! atomic by itself — and a scan page is `ZRANGEBYLEX` on the index then
//! one `HMGET` (see `kv_scan`); the client judges expiry against the
//! store clock by the same rule the scripts use.
//!
//! Each script is run by `EVALSHA` through [`redis::Script`] (which loads
//! it again after a `NOSCRIPT`). Script texts are constants: keys, values,
//! "now" and every other input travel in `KEYS`/`ARGV`, never in the text.
//!
//! Conventions shared by all scripts (the [`PRELUDE`]):
//!
//! - One namespace is four keys, in the order of
//!   [`NsKeys::all`](crate::keys::NsKeys::all): `i` (index zset), `d`
//!   (records), `x` (expiry zset), `c` (counter).
//! - A record is `<version>;<expiry>;<value>`; expiry is empty for never.
//!   The client builds it whole (the version from a block it reserved
//!   from the namespace counter, see `versions.rs`), so no script touches
//!   the counter or copies a value to build a record.
//! - "now" is the store clock in ms, as a decimal string; an entry with
//!   `expiry <= now` is absent. Expiry instants are stored as the decimal
//!   string the client sent, so they read back exactly; they are compared
//!   as Lua numbers (ms timestamps are far below 2^53).
//! - Versions are compared as strings (the record's first field) with
//!   the canonical token the client sends (an empty string, which no
//!   stored version equals, for a token this store could not have
//!   issued).
//! - A write script that creates a key also adds the namespace to the
//!   registry when the client passed the registry as the key after the
//!   namespace keys (standalone servers; on a Cluster the registry is in
//!   another slot and the client adds it itself).
//! - Every reply is an array of bulk strings or `false` (nil), so the
//!   client decodes one shape: `Vec<Option<Vec<u8>>>`.
//! - Write scripts `guard` every namespace they touch before they write
//!   anything: a key of a foreign type fails the call (`WRONGTYPE`) with
//!   nothing changed — Redis never rolls a script back, so the check must
//!   come first. The single-key scripts (put, delete) read the record hash
//!   and the expiry zset before their first write anyway, and those reads
//!   fail on a foreign type by themselves, so they look at only the index
//!   (`guard_unread`). The counter is the client's (`INCRBY` of a
//!   reservation), which fails by itself on a foreign value.
//! - Write scripts purge up to 64 expired entries of each namespace they
//!   touch, found through the `x` zset.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every script starts with.
const PRELUDE: &str = r#"
-- A record's version and expiry ('' = never).
local function header(rec)
  local a = string.find(rec, ';', 1, true)
  local b = string.find(rec, ';', a + 1, true)
  return string.sub(rec, 1, a - 1), string.sub(rec, a + 1, b - 1)
end

local function expired(ex, now)
  return ex ~= '' and tonumber(ex) <= now
end

-- The version of a record (or false) if it is live at now, else false.
local function live(rec, now)
  if not rec then return false end
  local ver, ex = header(rec)
  if expired(ex, now) then return false end
  return ver
end

-- Up to 64 entries of x that have expired at now (a read: it fails on
-- a foreign type of x before anything is written).
local function expired_keys(x, now)
  return redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, 64)
end

local function remove_all(i, d, x, dead)
  if #dead > 0 then
    redis.call('ZREM', i, unpack(dead))
    redis.call('HDEL', d, unpack(dead))
    redis.call('ZREM', x, unpack(dead))
  end
end

local function purge(i, d, x, now)
  remove_all(i, d, x, expired_keys(x, now))
end

-- Stores record rec (built by the client) at k; exp is its expiry, ''
-- for never. in_x is false only when k is known not to be in x (no
-- record, or one without expiry). Returns whether k was created.
local function store(i, d, x, k, rec, exp, in_x)
  local created = redis.call('HSET', d, k, rec) == 1
  if created then redis.call('ZADD', i, 0, k) end
  if exp ~= '' then
    redis.call('ZADD', x, exp, k)
  elseif in_x then
    redis.call('ZREM', x, k)
  end
  return created
end

-- Removes k, whose record is rec (false: none); returns its live
-- version before removal, or false.
local function remove_record(i, d, x, k, rec, now)
  if not rec then return false end
  local ver, ex = header(rec)
  redis.call('HDEL', d, k)
  redis.call('ZREM', i, k)
  if ex ~= '' then redis.call('ZREM', x, k) end
  if expired(ex, now) then return false end
  return ver
end

-- Removes k; returns its live version before removal, or false.
local function remove(i, d, x, k, now)
  return remove_record(i, d, x, k, redis.call('HGET', d, k), now)
end

-- Fails the call unless key holds want or nothing; returns whether it
-- exists.
local function check_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    error({err = 'WRONGTYPE key ' .. key .. ' holds a ' .. t .. ', not a ' .. want})
  end
  return t ~= 'none'
end

-- Fails the call before it writes anything if a namespace key holds
-- another type than this store writes there: Redis does not roll a
-- script back, so a write that failed halfway would leave the namespace
-- half-written. Returns whether x exists: while it does not, no key has
-- an expiry, so puts skip their ZREM from it and the purge is skipped.
local function guard(i, d, x)
  check_type(i, 'zset')
  check_type(d, 'hash')
  return check_type(x, 'zset')
end

-- The same check for a script that, before its first write, reads d
-- (HGET) and x (expired_keys): those reads fail on a foreign type by
-- themselves, so only i is left to look at.
local function guard_unread(i)
  check_type(i, 'zset')
end

-- Adds namespace name ns to the registry reg, if the client passed one.
local function register(reg, ns)
  if reg then redis.call('SADD', reg, ns) end
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// A (conditional) put. KEYS: the four namespace keys (the counter is
/// not used), then the registry (standalone only). ARGV: now, key, the
/// record, its expiry ('' = never), mode ('o' overwrite, 'c' create, 'u'
/// update), expected version (mode 'u'), namespace name.
/// Reply: {'1'} (written) or {'0', current version or nil}.
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local k = ARGV[2]
local mode = ARGV[5]
-- Every check comes before the first write (see guard_unread).
local old = redis.call('HGET', KEYS[2], k)
guard_unread(KEYS[1])
local dead = expired_keys(KEYS[3], ARGV[1])
local cur, in_x = false, false
if old then
  local ver, ex = header(old)
  in_x = ex ~= ''
  if not expired(ex, now) then cur = ver end
end
if (mode == 'c' and cur) or (mode == 'u' and cur ~= ARGV[6]) then
  return {'0', cur}
end
remove_all(KEYS[1], KEYS[2], KEYS[3], dead)
local created = store(KEYS[1], KEYS[2], KEYS[3], k, ARGV[3], ARGV[4], in_x)
if created then register(KEYS[5], ARGV[7]) end
return {'1'}
"#,
    )
});

/// A (conditional) delete. KEYS: the four namespace keys. ARGV: now, key,
/// mode ('a' any, 'u' only at the expected version), expected version.
/// Reply: {'1', removed live version or nil} or {'0', current or nil}.
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local k = ARGV[2]
-- Every check comes before the first write (see guard_unread).
local rec = redis.call('HGET', KEYS[2], k)
guard_unread(KEYS[1])
local dead = expired_keys(KEYS[3], ARGV[1])
if ARGV[3] == 'u' then
  local cur = live(rec, now)
  if (not cur) or cur ~= ARGV[4] then
    return {'0', cur}
  end
end
local was = remove_record(KEYS[1], KEYS[2], KEYS[3], k, rec, now)
remove_all(KEYS[1], KEYS[2], KEYS[3], dead)
return {'1', was}
"#,
    )
});

/// A write batch on one namespace, applied in order. KEYS: the four
/// namespace keys, then the registry (standalone only). ARGV: now,
/// namespace name, then per operation four values: kind ('p' put, 'd'
/// delete), key, the record (puts), its expiry ('' = never).
/// Reply: {'1'}.
pub(crate) static BATCH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local created = false
local has_x = guard(KEYS[1], KEYS[2], KEYS[3])
for n = 3, #ARGV, 4 do
  local k = ARGV[n + 1]
  if ARGV[n] == 'p' then
    local new = store(KEYS[1], KEYS[2], KEYS[3], k, ARGV[n + 2], ARGV[n + 3], has_x)
    created = created or new
    has_x = has_x or ARGV[n + 3] ~= ''
  else
    remove(KEYS[1], KEYS[2], KEYS[3], k, now)
  end
end
if has_x then purge(KEYS[1], KEYS[2], KEYS[3], ARGV[1]) end
if created then register(KEYS[5], ARGV[2]) end
return {'1'}
"#,
    )
});

/// Drops a namespace (never its counter). KEYS: i, d, x, then the
/// registry (standalone only). ARGV: now, namespace name.
/// Reply: {'1' if a live entry existed else '0'}.
pub(crate) static DROP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local total = redis.call('ZCARD', KEYS[1])
local dead = redis.call('ZCOUNT', KEYS[3], '-inf', ARGV[1])
redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if KEYS[4] then redis.call('SREM', KEYS[4], ARGV[2]) end
if total > dead then return {'1'} end
return {'0'}
"#,
    )
});

/// Whether a namespace holds a live entry. KEYS: i, x. ARGV: now.
/// Reply: {'1'} or {'0'}.
pub(crate) static LIVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local total = redis.call('ZCARD', KEYS[1])
local dead = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
if total > dead then return {'1'} end
return {'0'}
"#,
    )
});

/// A transaction. KEYS: four keys per distinct namespace, namespace after
/// namespace, then the registry (standalone only). ARGV: now, the number
/// of namespaces m, their m names, then per operation seven values:
/// namespace index (0-based), action ('p' put, 'd' delete, 'c' check),
/// key, the record (puts), its expiry ('' = never), condition ('' none,
/// 'a' absent, 'e' exists, 'v' version), expected version.
/// Every condition is checked before anything is written.
/// Reply: {'0', failed op index (0-based), its current version or nil} or
/// {'1'}.
pub(crate) static TRANSACT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local first = 3 + m
local nops = (#ARGV - first + 1) / 7
local function base(n) return first + n * 7 end
local function ks(ns) return tonumber(ns) * 4 + 1 end
-- Per namespace (by its first key's index): whether x may hold keys.
local has_x = {}
for b = 1, 4 * m, 4 do
  has_x[b] = guard(KEYS[b], KEYS[b + 1], KEYS[b + 2])
end
for n = 0, nops - 1 do
  local a = base(n)
  local cond = ARGV[a + 5]
  if cond ~= '' then
    local b = ks(ARGV[a])
    local cur = live(redis.call('HGET', KEYS[b + 1], ARGV[a + 2]), now)
    local ok
    if cond == 'a' then ok = not cur
    elseif cond == 'e' then ok = cur and true or false
    else ok = cur and cur == ARGV[a + 6] end
    if not ok then
      return {'0', tostring(n), cur}
    end
  end
end
local created = {}
for n = 0, nops - 1 do
  local a = base(n)
  local b = ks(ARGV[a])
  local act = ARGV[a + 1]
  if act == 'p' then
    local new = store(KEYS[b], KEYS[b + 1], KEYS[b + 2],
      ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], has_x[b])
    has_x[b] = has_x[b] or ARGV[a + 4] ~= ''
    if new then created[tonumber(ARGV[a])] = true end
  elseif act == 'd' then
    remove(KEYS[b], KEYS[b + 1], KEYS[b + 2], ARGV[a + 2], now)
  end
end
for b = 1, 4 * m, 4 do
  if has_x[b] then purge(KEYS[b], KEYS[b + 1], KEYS[b + 2], ARGV[1]) end
end
for ns, _ in pairs(created) do
  register(KEYS[4 * m + 1], ARGV[3 + ns])
end
return {'1'}
"#,
    )
});
