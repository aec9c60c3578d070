//! The Lua scripts behind every Redis operation.
//!
//! Each script is run by `EVALSHA` through [`redis::Script`] (which loads
//! it again after a `NOSCRIPT`). Script texts are constants: keys, values,
//! "now" and every other input travel in `KEYS`/`ARGV`, never in the text.
//!
//! Conventions shared by all scripts (the [`PRELUDE`]):
//!
//! - One namespace is six keys, in the order of
//!   [`NsKeys::all`](crate::keys::NsKeys::all): `i` (index zset), `d`
//!   (values), `v` (versions), `e` (expiry ms), `x` (expiry zset), `c`
//!   (counter).
//! - "now" is the store clock in ms, as a decimal string; an entry with
//!   `expiry <= now` is absent. Expiry instants are stored as the decimal
//!   string the client sent, so they read back exactly; they are compared
//!   as Lua numbers (ms timestamps are far below 2^53).
//! - Versions are `INCR` of the namespace counter, formatted with `%d`
//!   (never `tostring`, which switches to exponent form at 1e14), and
//!   compared as strings with the canonical token the client sends (an
//!   empty string, which no stored version equals, for a token this store
//!   could not have issued).
//! - Every reply is an array of bulk strings or `false` (nil), so the
//!   client decodes one shape: `Vec<Option<Vec<u8>>>`.
//! - Write scripts purge up to 64 expired entries of each namespace they
//!   touch, found through the `x` zset.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function purge(i, d, v, e, x, now)
  local dead = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, 64)
  if #dead > 0 then
    redis.call('ZREM', i, unpack(dead))
    redis.call('HDEL', d, unpack(dead))
    redis.call('HDEL', v, unpack(dead))
    redis.call('HDEL', e, unpack(dead))
    redis.call('ZREM', x, unpack(dead))
  end
end

local function expired(ex, now)
  return ex and tonumber(ex) <= now
end

-- The live version at k, or false.
local function alive(v, e, k, now)
  local ver = redis.call('HGET', v, k)
  if not ver then return false end
  if expired(redis.call('HGET', e, k), now) then return false end
  return ver
end

-- Stores val at k with a fresh version; exp is '' for never.
local function store(i, d, v, e, x, c, k, val, exp)
  local ver = string.format('%d', redis.call('INCR', c))
  redis.call('ZADD', i, 0, k)
  redis.call('HSET', d, k, val)
  redis.call('HSET', v, k, ver)
  if exp == '' then
    redis.call('HDEL', e, k)
    redis.call('ZREM', x, k)
  else
    redis.call('HSET', e, k, exp)
    redis.call('ZADD', x, exp, k)
  end
  return ver
end

-- Removes k; returns its live version before removal, or false.
local function remove(i, d, v, e, x, k, now)
  local was = alive(v, e, k, now)
  redis.call('ZREM', i, k)
  redis.call('HDEL', d, k)
  redis.call('HDEL', v, k)
  redis.call('HDEL', e, k)
  redis.call('ZREM', x, k)
  return was
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Reads keys. KEYS: d, v, e. ARGV: now, key1, key2, ...
/// Reply: per key, value then version (both nil when absent or expired).
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local out = {}
for n = 2, #ARGV do
  local k = ARGV[n]
  local ver = alive(KEYS[2], KEYS[3], k, now)
  if ver then
    out[#out + 1] = redis.call('HGET', KEYS[1], k) or ''
    out[#out + 1] = ver
  else
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
"#,
    )
});

/// A (conditional) put. KEYS: the six namespace keys. ARGV: now, key,
/// value, expiry ('' = never), mode ('o' overwrite, 'c' create, 'u'
/// update), expected version (mode 'u').
/// Reply: {'1', new version} or {'0', current version or nil}.
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local k = ARGV[2]
local mode = ARGV[5]
if mode ~= 'o' then
  local cur = alive(KEYS[3], KEYS[4], k, now)
  if (mode == 'c' and cur) or (mode == 'u' and cur ~= ARGV[6]) then
    return {'0', cur}
  end
end
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
local ver = store(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], k, ARGV[3], ARGV[4])
return {'1', ver}
"#,
    )
});

/// A (conditional) delete. KEYS: the six namespace keys. ARGV: now, key,
/// mode ('a' any, 'u' only at the expected version), expected version.
/// Reply: {'1', removed live version or nil} or {'0', current or nil}.
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local k = ARGV[2]
if ARGV[3] == 'u' then
  local cur = alive(KEYS[3], KEYS[4], k, now)
  if (not cur) or cur ~= ARGV[4] then
    return {'0', cur}
  end
end
local was = remove(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], k, now)
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
return {'1', was}
"#,
    )
});

/// A write batch on one namespace, applied in order. KEYS: the six
/// namespace keys. ARGV: now, then per operation four values: kind ('p'
/// put, 'd' delete), key, value, expiry ('' = never).
/// Reply: {'1'}.
pub(crate) static BATCH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
for n = 2, #ARGV, 4 do
  local k = ARGV[n + 1]
  if ARGV[n] == 'p' then
    store(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], k, ARGV[n + 2], ARGV[n + 3])
  else
    remove(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], k, now)
  end
end
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1])
return {'1'}
"#,
    )
});

/// One scan page. KEYS: i, d, v, e. ARGV: now, lower bound, upper bound
/// (ZRANGEBYLEX syntax: '[k', '(k', '-', '+'), limit, '1' for reverse.
/// Walks the index in chunks, advancing the bound past the last key read
/// (no LIMIT offsets), skipping expired entries, until limit + 1 live
/// entries are seen or the range ends.
/// Reply: {more ('1'/'0'), then per entry key, value, version, expiry
/// (nil = never)}.
pub(crate) static SCAN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local lo, hi = ARGV[2], ARGV[3]
local limit = tonumber(ARGV[4])
local rev = ARGV[5] == '1'
local chunk = limit + 1
if chunk > 1000 then chunk = 1000 end
local out = {'0'}
local found = 0
while true do
  local ks
  if rev then
    ks = redis.call('ZREVRANGEBYLEX', KEYS[1], hi, lo, 'LIMIT', 0, chunk)
  else
    ks = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', 0, chunk)
  end
  if #ks == 0 then break end
  local vals = redis.call('HMGET', KEYS[2], unpack(ks))
  local vers = redis.call('HMGET', KEYS[3], unpack(ks))
  local exps = redis.call('HMGET', KEYS[4], unpack(ks))
  for j = 1, #ks do
    if vers[j] and not expired(exps[j], now) then
      if found == limit then
        out[1] = '1'
        return out
      end
      found = found + 1
      out[#out + 1] = ks[j]
      out[#out + 1] = vals[j] or ''
      out[#out + 1] = vers[j]
      out[#out + 1] = exps[j] or false
    end
  end
  if #ks < chunk then break end
  if rev then hi = '(' .. ks[#ks] else lo = '(' .. ks[#ks] end
end
return out
"#,
    )
});

/// Drops a namespace (never its counter). KEYS: i, d, v, e, x. ARGV: now.
/// Reply: {'1' if a live entry existed else '0'}.
pub(crate) static DROP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local total = redis.call('ZCARD', KEYS[1])
local dead = redis.call('ZCOUNT', KEYS[5], '-inf', ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
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

/// A transaction. KEYS: six keys per distinct namespace, namespace after
/// namespace. ARGV: now, then per operation seven values: namespace index
/// (0-based), action ('p' put, 'd' delete, 'c' check), key, value, expiry
/// ('' = never), condition ('' none, 'a' absent, 'e' exists, 'v'
/// version), expected version.
/// Every condition is checked before anything is written.
/// Reply: {'0', failed op index (0-based), its current version or nil} or
/// {'1', then per operation the new version (puts) or nil}.
pub(crate) static TRANSACT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local nops = (#ARGV - 1) / 7
local function base(n) return 2 + n * 7 end
local function ks(ns) local b = tonumber(ns) * 6 return b + 1 end
for n = 0, nops - 1 do
  local a = base(n)
  local cond = ARGV[a + 5]
  if cond ~= '' then
    local b = ks(ARGV[a])
    local cur = alive(KEYS[b + 2], KEYS[b + 3], ARGV[a + 2], now)
    local ok
    if cond == 'a' then ok = not cur
    elseif cond == 'e' then ok = cur and true or false
    else ok = cur and cur == ARGV[a + 6] end
    if not ok then
      return {'0', tostring(n), cur}
    end
  end
end
local out = {'1'}
for n = 0, nops - 1 do
  local a = base(n)
  local b = ks(ARGV[a])
  local act = ARGV[a + 1]
  if act == 'p' then
    out[#out + 1] = store(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5],
      ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
  else
    if act == 'd' then
      remove(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], ARGV[a + 2], now)
    end
    out[#out + 1] = false
  end
end
for b = 1, #KEYS, 6 do
  purge(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], ARGV[1])
end
return out
"#,
    )
});
