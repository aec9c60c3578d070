//! The Lua scripts of the queue tier (layout in [`super::keys`]).
//!
//! Conventions, on top of the KV scripts' (texts are constants, inputs in
//! `KEYS`/`ARGV`, "now" from the store clock, replies are arrays of bulk
//! strings):
//!
//! - `KEYS[1..14]` are the queue's keys in [`CODES`](super::keys::CODES)
//!   order. A dead-letter queue's keys are derived in the script from the
//!   base (`{P}:q`) and the name in the source's config, because the
//!   redrive policy lives on the server; they share the source's hash tag,
//!   so they are in the slot the script runs on.
//! - The first reply item is a status: `ok`, `nf` (no such queue),
//!   `stale` (receipt), `cfg` (the config the client validated against
//!   changed; the current one follows), `same` / `differs` (create).
//! - Instants and durations are whole ms, below 2^53 (exact Lua numbers);
//!   they are written back with `%d`, never `tostring`.
//! - Retention runs first in every script that reads messages: messages
//!   with `sent_at + retention <= now` are removed (each message once, so
//!   the cost is amortised), FIFO groups they touched re-filed. The
//!   config's `nexp` field is a lower bound of the earliest retention
//!   deadline in the queue (absent: unknown), so until that instant the
//!   check costs no call at all: retention looks at `t` only when
//!   `now >= nexp`, then stores the head's deadline. Every script that
//!   files a message lowers a known `nexp` to its deadline; removals
//!   leave it (still a lower bound); an import leaves it unknown.
//! - Wake-ups: a script that may have made a message deliverable
//!   publishes the queue's name on the store's channel.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every queue script starts with.
const PRELUDE: &str = r#"
local function qkeys(at)
  return {c = KEYS[at], r = KEYS[at + 1], p = KEYS[at + 2], i = KEYS[at + 3],
    v = KEYS[at + 4], h = KEYS[at + 5], t = KEYS[at + 6], d = KEYS[at + 7],
    dx = KEYS[at + 8], g = KEYS[at + 9], gm = KEYS[at + 10], gh = KEYS[at + 11],
    gr = KEYS[at + 12], gw = KEYS[at + 13]}
end

local function derive(base, name)
  local function k(code) return base .. code .. ':' .. name end
  return {c = k('c'), r = k('r'), p = k('p'), i = k('i'), v = k('v'), h = k('h'),
    t = k('t'), d = k('d'), dx = k('dx'), g = k('g'), gm = k('gm'), gh = k('gh'),
    gr = k('gr'), gw = k('gw')}
end

local function all(Q)
  return {Q.c, Q.r, Q.p, Q.i, Q.v, Q.h, Q.t, Q.d, Q.dx, Q.g, Q.gm, Q.gh, Q.gr, Q.gw}
end

local function pad(n) return string.format('%016d', n) end
local function num(n) return string.format('%d', n) end
local function gprefix(grp) return string.format('%05d', #grp) .. grp end

local function rec_parse(s)
  local vis, rc, frt, sent, id = string.match(s, '^(%d+):(%d+):(%d*):(%d+):(.*)$')
  if not vis then return nil end
  return {vis = tonumber(vis), rc = tonumber(rc), frt = frt, sent = sent, id = id}
end

local function rec_get(Q, sid)
  local s = redis.call('HGET', Q.r, sid)
  if not s then return nil end
  return rec_parse(s)
end

local function rec_put(Q, sid, m)
  redis.call('HSET', Q.r, sid, num(m.vis) .. ':' .. num(m.rc) .. ':' .. m.frt .. ':' .. m.sent .. ':' .. m.id)
end

-- Re-files a FIFO group: ready (by head sequence) when its head is
-- visible and none of its received messages is hidden, else waiting (by
-- the instant that stops being true); dropped when empty.
local function refresh(Q, grp, now)
  redis.call('ZREM', Q.gr, grp)
  redis.call('ZREM', Q.gw, grp)
  local gp = gprefix(grp)
  local head = redis.call('ZRANGEBYLEX', Q.gm, '[' .. gp, '(' .. gp .. '\255', 'LIMIT', 0, 1)[1]
  if not head then return end
  local hsid = string.sub(head, #gp + 1)
  local m = rec_get(Q, hsid)
  local till = now
  if m then till = m.vis end
  local last = redis.call('ZREVRANGEBYLEX', Q.gh, '(' .. gp .. '\255', '[' .. gp, 'LIMIT', 0, 1)[1]
  if last then
    local lv = tonumber(string.sub(last, #gp + 1, #gp + 16))
    if lv > till then till = lv end
  end
  if till <= now then
    redis.call('ZADD', Q.gr, num(tonumber(hsid)), grp)
  else
    redis.call('ZADD', Q.gw, num(till), grp)
  end
end

-- Files a message in every index (the caller re-files a FIFO group).
local function file(Q, fifo, sid, m, payload, grp)
  rec_put(Q, sid, m)
  redis.call('HSET', Q.p, sid, payload)
  redis.call('HSET', Q.i, m.id, sid)
  redis.call('ZADD', Q.v, num(m.vis), sid)
  redis.call('ZADD', Q.t, m.sent, sid)
  if m.rc > 0 then redis.call('ZADD', Q.h, num(m.vis), sid) end
  if fifo then
    local gp = gprefix(grp)
    redis.call('HSET', Q.g, sid, grp)
    redis.call('ZADD', Q.gm, 0, gp .. sid)
    if m.rc > 0 then redis.call('ZADD', Q.gh, 0, gp .. pad(m.vis) .. sid) end
  end
end

-- Takes a message out of every index; returns its group ('' if none).
-- indexed: the caller already read that i maps m.id to sid.
local function unfile(Q, fifo, sid, m, indexed)
  redis.call('HDEL', Q.r, sid)
  redis.call('HDEL', Q.p, sid)
  if indexed or redis.call('HGET', Q.i, m.id) == sid then redis.call('HDEL', Q.i, m.id) end
  redis.call('ZREM', Q.v, sid)
  redis.call('ZREM', Q.h, sid)
  redis.call('ZREM', Q.t, sid)
  local grp = ''
  if fifo then
    grp = redis.call('HGET', Q.g, sid) or ''
    local gp = gprefix(grp)
    redis.call('HDEL', Q.g, sid)
    redis.call('ZREM', Q.gm, gp .. sid)
    if m.rc > 0 then redis.call('ZREM', Q.gh, gp .. pad(m.vis) .. sid) end
  end
  return grp
end

-- No retention deadline known: the value `nexp` holds for an empty queue.
local NEVER = 9007199254740991

-- Removes every message past retention, unless nexp (the config's
-- 'nexp' field, or false) says none can be yet. Returns the deadline
-- lower bound in force afterwards.
local function expire(Q, fifo, now, ret, nexp)
  if nexp and now < tonumber(nexp) then return tonumber(nexp) end
  local touched = {}
  while true do
    local dead = redis.call('ZRANGEBYSCORE', Q.t, '-inf', num(now - ret), 'LIMIT', 0, 256)
    if #dead == 0 then break end
    for _, sid in ipairs(dead) do
      local m = rec_get(Q, sid)
      if m then
        touched[unfile(Q, fifo, sid, m)] = true
      else
        redis.call('ZREM', Q.t, sid)
      end
    end
  end
  if fifo then
    for grp in pairs(touched) do refresh(Q, grp, now) end
  end
  local head = redis.call('ZRANGE', Q.t, 0, 0, 'WITHSCORES')
  local nx = NEVER
  if head[2] then nx = tonumber(head[2]) + ret end
  redis.call('HSET', Q.c, 'nexp', num(nx))
  return nx
end

-- Sets a message's visible-at (and receive count) in every index.
local function set_vis(Q, fifo, sid, m, vis, rc)
  local old_vis, old_rc = m.vis, m.rc
  m.vis, m.rc = vis, rc
  rec_put(Q, sid, m)
  redis.call('ZADD', Q.v, num(vis), sid)
  if rc > 0 then redis.call('ZADD', Q.h, num(vis), sid) end
  if fifo then
    local grp = redis.call('HGET', Q.g, sid) or ''
    local gp = gprefix(grp)
    if old_rc > 0 then redis.call('ZREM', Q.gh, gp .. pad(old_vis) .. sid) end
    if rc > 0 then redis.call('ZADD', Q.gh, 0, gp .. pad(vis) .. sid) end
    return grp
  end
  return ''
end

-- The message of a receipt (id, receive count), or nil when stale.
local function current(Q, id, rc)
  local sid = redis.call('HGET', Q.i, id)
  if not sid then return nil end
  local m = rec_get(Q, sid)
  if not m or m.rc == 0 or m.rc ~= rc then return nil end
  return sid, m
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Creates a queue. KEYS: the queue's config key, the registry. ARGV:
/// name, cfg JSON, vis, delay, ret, fifo ('1'/'0'), dlq ('' = none),
/// maxrecv. Reply: {'ok'} (created), {'same'} or {'differs'}.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local cur = redis.call('HGET', KEYS[1], 'cfg')
if cur then
  if cur == ARGV[2] then return {'same'} end
  return {'differs'}
end
redis.call('HSET', KEYS[1], 'cfg', ARGV[2], 'vis', ARGV[3], 'delay', ARGV[4], 'ret', ARGV[5],
  'fifo', ARGV[6], 'dlq', ARGV[7], 'maxrecv', ARGV[8], 'seq', '1')
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return {'ok'}
"#,
    )
});

/// Deletes a queue. KEYS: the queue's keys, the registry. ARGV: name,
/// channel. Reply: {'1'} if it existed, else {'0'}.
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local existed = redis.call('EXISTS', KEYS[1]) == 1
redis.call('UNLINK', unpack(all(qkeys(1))))
redis.call('ZREM', KEYS[15], ARGV[1])
if existed then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  return {'1'}
end
return {'0'}
"#,
    )
});

/// Sends messages. KEYS: the queue's keys. ARGV: now, the cfg JSON the
/// batch was validated against, dedup window ms, channel, name, then per
/// message: id, payload, delay ms ('' = the queue's), group, dedup id
/// ('' = none). Reply: {'ok', id per message (a duplicate's is the
/// original's)}, {'nf'} or {'cfg', current cfg}.
pub(crate) static SEND: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'cfg', 'delay', 'ret', 'fifo', 'seq', 'nexp')
if not c[1] then return {'nf'} end
if c[1] ~= ARGV[2] then return {'cfg', c[1]} end
local fifo = c[4] == '1'
local nexp = expire(Q, fifo, now, tonumber(c[3]), c[6])
local window = tonumber(ARGV[3])
if fifo then
  local dead = redis.call('ZRANGEBYSCORE', Q.dx, '-inf', ARGV[1], 'LIMIT', 0, 64)
  if #dead > 0 then
    redis.call('HDEL', Q.d, unpack(dead))
    redis.call('ZREM', Q.dx, unpack(dead))
  end
end
local seq = tonumber(c[5])
local out = {'ok'}
local wake = false
for n = 6, #ARGV, 5 do
  local id, payload, delay, grp, did = ARGV[n], ARGV[n + 1], ARGV[n + 2], ARGV[n + 3], ARGV[n + 4]
  local dup = nil
  if did ~= '' then
    local e = redis.call('HGET', Q.d, did)
    if e then
      local exp, mid = string.match(e, '^(%d+):(.*)$')
      if exp and tonumber(exp) > now then dup = mid end
    end
  end
  if dup then
    out[#out + 1] = dup
  else
    if did ~= '' then
      redis.call('HSET', Q.d, did, num(now + window) .. ':' .. id)
      redis.call('ZADD', Q.dx, num(now + window), did)
    end
    local d = tonumber(c[2])
    if delay ~= '' then d = tonumber(delay) end
    local sid = pad(seq)
    seq = seq + 1
    file(Q, fifo, sid, {vis = now + d, rc = 0, frt = '', sent = ARGV[1], id = id}, payload, grp)
    if fifo then refresh(Q, grp, now) end
    if d == 0 then wake = true end
    out[#out + 1] = id
  end
end
-- Messages filed now expire at now + retention.
local deadline = now + tonumber(c[3])
if seq ~= tonumber(c[5]) and deadline < nexp then
  redis.call('HSET', Q.c, 'seq', num(seq), 'nexp', num(deadline))
else
  redis.call('HSET', Q.c, 'seq', num(seq))
end
if wake then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return out
"#,
    )
});

/// Receives. KEYS: the queue's keys. ARGV: now, max, visibility ms (''
/// = the queue's), base, name, channel.
/// Reply: {'ok', next visible instant ('' = none or something was
/// delivered), then per delivery: payload, receive count, first received,
/// sent at, id} or {'nf'}.
pub(crate) static RECEIVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'vis', 'ret', 'fifo', 'dlq', 'maxrecv', 'nexp')
if not c[1] then return {'nf'} end
local fifo = c[3] == '1'
local vis = tonumber(c[1])
if ARGV[3] ~= '' then vis = tonumber(ARGV[3]) end
expire(Q, fifo, now, tonumber(c[2]), c[6])

-- The dead-letter queue, resolved once, only when a message is due to move.
local maxrecv = tonumber(c[5])
local D, dfifo, resolved = nil, false, false
local function dead_letter(m)
  if c[4] == '' or c[4] == ARGV[5] or m.rc < maxrecv then return nil end
  if not resolved then
    resolved = true
    local dk = derive(ARGV[4], c[4])
    local f = redis.call('HGET', dk.c, 'fifo')
    if f then D, dfifo = dk, f == '1' end
  end
  return D
end
local moved = false
local function move(sid, m)
  local payload = redis.call('HGET', Q.p, sid) or ''
  local grp = unfile(Q, fifo, sid, m)
  -- The move keeps the send time, so the message's deadline in D is
  -- sent + D's retention: a known nexp of D is lowered to it.
  local dc = redis.call('HMGET', D.c, 'seq', 'ret', 'nexp')
  local dseq = tonumber(dc[1])
  local deadline = tonumber(m.sent) + tonumber(dc[2])
  if dc[3] and deadline < tonumber(dc[3]) then
    redis.call('HSET', D.c, 'seq', num(dseq + 1), 'nexp', num(deadline))
  else
    redis.call('HSET', D.c, 'seq', num(dseq + 1))
  end
  local old = redis.call('HGET', D.i, m.id)
  if old then
    local om = rec_get(D, old)
    if om then
      local og = unfile(D, dfifo, old, om)
      if dfifo then refresh(D, og, now) end
    end
  end
  file(D, dfifo, pad(dseq), {vis = now, rc = 0, frt = '', sent = m.sent, id = m.id}, payload, grp)
  if dfifo then refresh(D, grp, now) end
  moved = true
end

local out = {'ok', ''}
local got = 0
local function deliver(sid, m)
  if m.frt == '' then m.frt = num(now) end
  set_vis(Q, fifo, sid, m, now + vis, m.rc + 1)
  out[#out + 1] = redis.call('HGET', Q.p, sid) or ''
  out[#out + 1] = num(m.rc)
  out[#out + 1] = m.frt
  out[#out + 1] = m.sent
  out[#out + 1] = m.id
  got = got + 1
end

if not fifo then
  -- Delivered with visibility 0 (still due; skipped for the rest of the call).
  local again, nagain = {}, 0
  while got < max do
    local cand = redis.call('ZRANGEBYSCORE', Q.v, '-inf', ARGV[1], 'LIMIT', 0, max - got + nagain)
    local progressed = false
    for _, sid in ipairs(cand) do
      if got >= max then break end
      if not again[sid] then
        progressed = true
        local m = rec_get(Q, sid)
        if not m then
          redis.call('ZREM', Q.v, sid)
        elseif dead_letter(m) then
          move(sid, m)
        else
          deliver(sid, m)
          if vis == 0 then again[sid] = true; nagain = nagain + 1 end
        end
      end
    end
    if not progressed then break end
  end
  if got == 0 then
    local nxt = redis.call('ZRANGEBYSCORE', Q.v, '(' .. num(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if nxt[2] then out[2] = nxt[2] end
  end
else
  for _, grp in ipairs(redis.call('ZRANGEBYSCORE', Q.gw, '-inf', ARGV[1])) do
    refresh(Q, grp, now)
  end
  local touched = {}
  while got < max do
    local top = redis.call('ZPOPMIN', Q.gr)
    if #top == 0 then break end
    local grp = top[1]
    local sid = pad(tonumber(top[2]))
    local gp = gprefix(grp)
    touched[grp] = true
    local m = rec_get(Q, sid)
    if m then
      if dead_letter(m) then move(sid, m) else deliver(sid, m) end
    end
    -- The group's next message may follow in this call if it is visible;
    -- it competes with other groups' heads.
    local nxt = redis.call('ZRANGEBYLEX', Q.gm, '(' .. gp .. sid, '(' .. gp .. '\255', 'LIMIT', 0, 1)[1]
    if nxt then
      local nsid = string.sub(nxt, #gp + 1)
      local nm = rec_get(Q, nsid)
      if nm and nm.vis <= now then redis.call('ZADD', Q.gr, num(tonumber(nsid)), grp) end
    end
  end
  for grp in pairs(touched) do refresh(Q, grp, now) end
  if got == 0 then
    local nxt = redis.call('ZRANGE', Q.gw, 0, 0, 'WITHSCORES')
    if nxt[2] then out[2] = nxt[2] end
  end
end
if moved then redis.call('PUBLISH', ARGV[6], c[4]) end
return out
"#,
    )
});

/// Acks. KEYS: the queue's keys. ARGV: now, message id, receive count,
/// channel, name. Reply: {'ok'}, {'stale'} or {'nf'}.
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'ret', 'fifo', 'nexp')
if not c[1] then return {'nf'} end
local fifo = c[2] == '1'
expire(Q, fifo, now, tonumber(c[1]), c[3])
local sid, m = current(Q, ARGV[2], tonumber(ARGV[3]))
if not sid then return {'stale'} end
local grp = unfile(Q, fifo, sid, m, true)
if fifo then
  refresh(Q, grp, now)
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return {'ok'}
"#,
    )
});

/// Changes visibility. KEYS: the queue's keys. ARGV: now, message id,
/// receive count, timeout ms, channel, name. Reply: {'ok'}, {'stale'} or
/// {'nf'}.
pub(crate) static CHANGE_VISIBILITY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'ret', 'fifo', 'nexp')
if not c[1] then return {'nf'} end
local fifo = c[2] == '1'
expire(Q, fifo, now, tonumber(c[1]), c[3])
local sid, m = current(Q, ARGV[2], tonumber(ARGV[3]))
if not sid then return {'stale'} end
local grp = set_vis(Q, fifo, sid, m, now + tonumber(ARGV[4]), m.rc)
if fifo then refresh(Q, grp, now) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {'ok'}
"#,
    )
});

/// Purges messages (config, sequence and dedup memory stay). KEYS: the
/// queue's keys. Reply: {'ok'} or {'nf'}.
pub(crate) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local Q = qkeys(1)
if redis.call('EXISTS', Q.c) == 0 then return {'nf'} end
redis.call('UNLINK', Q.r, Q.p, Q.i, Q.v, Q.h, Q.t, Q.g, Q.gm, Q.gh, Q.gr, Q.gw)
return {'ok'}
"#,
    )
});

/// Counts. KEYS: the queue's keys. ARGV: now.
/// Reply: {'ok', visible, in flight, delayed} or {'nf'}.
pub(crate) static COUNTS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'ret', 'fifo', 'nexp')
if not c[1] then return {'nf'} end
expire(Q, c[2] == '1', now, tonumber(c[1]), c[3])
local total = redis.call('HLEN', Q.r)
local visible = redis.call('ZCOUNT', Q.v, '-inf', ARGV[1])
local flight = redis.call('ZCOUNT', Q.h, '(' .. num(now), '+inf')
return {'ok', num(visible), num(flight), num(total - visible - flight)}
"#,
    )
});

/// Exports. KEYS: the queue's keys. ARGV: now.
/// Reply: {'ok', cfg, next sequence, message count, per message: sid,
/// record, payload; then per live dedup entry: id, expires at, message
/// id} or {'nf'}.
pub(crate) static EXPORT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
local c = redis.call('HMGET', Q.c, 'cfg', 'ret', 'fifo', 'seq', 'nexp')
if not c[1] then return {'nf'} end
expire(Q, c[3] == '1', now, tonumber(c[2]), c[5])
local recs = redis.call('HGETALL', Q.r)
local out = {'ok', c[1], c[4], num(#recs / 2)}
for n = 1, #recs, 2 do
  out[#out + 1] = recs[n]
  out[#out + 1] = recs[n + 1]
  out[#out + 1] = redis.call('HGET', Q.p, recs[n]) or ''
end
local dd = redis.call('HGETALL', Q.d)
for n = 1, #dd, 2 do
  local exp, mid = string.match(dd[n + 1], '^(%d+):(.*)$')
  if exp and tonumber(exp) > now then
    out[#out + 1] = dd[n]
    out[#out + 1] = exp
    out[#out + 1] = mid
  end
end
return out
"#,
    )
});

/// Imports (replaces) a queue's whole state. KEYS: the queue's keys, the
/// registry. ARGV: now, name, channel, cfg, vis, delay, ret, fifo, dlq,
/// maxrecv, next sequence, message count, per message: sid, record,
/// payload, group; then per dedup entry: id, expires at, message id.
/// Reply: {'ok'}.
pub(crate) static IMPORT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = tonumber(ARGV[1])
local Q = qkeys(1)
redis.call('UNLINK', unpack(all(Q)))
redis.call('HSET', Q.c, 'cfg', ARGV[4], 'vis', ARGV[5], 'delay', ARGV[6], 'ret', ARGV[7],
  'fifo', ARGV[8], 'dlq', ARGV[9], 'maxrecv', ARGV[10], 'seq', ARGV[11])
local fifo = ARGV[8] == '1'
local n = tonumber(ARGV[12])
local groups = {}
local a = 13
for _ = 1, n do
  local m = rec_parse(ARGV[a + 1])
  if not m then return redis.error_reply('malformed message record') end
  file(Q, fifo, ARGV[a], m, ARGV[a + 2], ARGV[a + 3])
  groups[ARGV[a + 3]] = true
  a = a + 4
end
while a + 2 <= #ARGV do
  redis.call('HSET', Q.d, ARGV[a], ARGV[a + 1] .. ':' .. ARGV[a + 2])
  redis.call('ZADD', Q.dx, ARGV[a + 1], ARGV[a])
  a = a + 3
end
if fifo then
  for grp in pairs(groups) do refresh(Q, grp, now) end
end
redis.call('ZADD', KEYS[15], 0, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return {'ok'}
"#,
    )
});
