//! [`RedisDueCache`]: the due-schedule cache, layout version 3 ("compact",
//! questions named by their ids, subjects and topics by a dictionary per
//! schedule) or, with [`RedisDueCache::with_numbering`] (the server's
//! default), 5: the same keys with every question, subject and topic named
//! by its permanent number ([`crate::Numbering`]) and no dictionary.
//! (Layout 4, of an earlier version, numbered questions only.)
//!
//! One schedule is one learner's cards of one season. Its base key is
//! `B = <ns>srs:{<user>}:<season>` (the `{<user>}` hash tag puts every key
//! of the learner in one Cluster slot). The marker `B:m` says which
//! generation `g` (eight base-36 characters) holds the cards; the data keys
//! are `G = B:<g>:…`:
//!
//! | key | type | content |
//! |---|---|---|
//! | `B:m` | HASH | `v` = 3 or 4, `g` generation, `n` state chunks, `hz` horizon end (µs, empty: none), `c` cards, `m0`–`m2` mastery counts (only while exact), per subject index `sn:<s>` due chunks and `sc:<s>` cards, the cached due counts `k<set>`, `rm` removals so far; and, when `di` is set, the dictionary (below) |
//! | `B:w:<job>` | STRING | generation `G` and removals `rm`, joined by a bar: the review fast path's commit of job `<job>` wrote its rows into generation `G` with `rm` removals so far; the persistence worker's refresh of the job skips them while both still hold ([`DueCache::refresh`]); one hour at most |
//! | `G:d` | HASH | the schedule's dictionary, unless it was small enough for the marker (≤ 24 fields): `d:<s|t><id>` → index, `r:<index>` → name, `dn` last index |
//! | `G:h<k>` | HASH | question (id or number) → card value ([`crate::codec`], binary) for the questions with `hq(q) mod n = k` |
//! | `G:z<s>.<k>` | ZSET | question → due (Unix µs), the cards of subject index `s` (0: none) with `hq(q) mod sn:<s> = k` |
//! | `G:i<s>` | ZSET | chunk `k` → earliest due in `G:z<s>.<k>`, for a subject of two chunks or more (one chunk is its own index) |
//! | `G:x` | ZSET | `<s>.<k>` → earliest due in `G:z<s>.<k>` (every subject) |
//! | `G:l` | STRING | the last unfiltered answer, `time|limit|questions`, until a write |
//!
//! Why it is built this way (sizes measured in docs/PERFORMANCE.md):
//! * Chunks hold ~32–64 cards, under Redis' 128-entry limit for the compact
//!   `listpack` encoding: a card costs one hash entry and one sorted-set
//!   entry of that encoding instead of three hash-table or skip-list
//!   entries; a load and a rebuild insert two entries per card. A schedule
//!   that grows after its load (lessons add cards) splits its chunks in two
//!   when they pass 64 cards on average.
//! * Due counts are cached in the marker with the interval of times they
//!   hold for (until the next card falls due) and kept exact by every
//!   write, so a read costs O(limit) chunk reads, not one per chunk; the
//!   last unfiltered answer is kept too until a write, and reused while it
//!   still holds (a full answer does, as items falling due later sort
//!   after it).
//! * There is no all-items set: an unfiltered due query merges the chunks
//!   through `G:x`, a filtered one through `G:i<s>` (or reads the
//!   subject's one chunk). The first `limit` due
//!   items lie in at most `limit` chunks — those with the earliest minima —
//!   so a query reads at most `limit` chunks (plus ties), and counts the due
//!   items with one `ZCOUNT` per chunk that has any.
//! * Items with the same due time come in question-id byte order, as in
//!   every other adapter (layout 5: in the byte order of their numbers'
//!   decimal form, which is id order for the ids one call numbered when
//!   their numbers have as many digits).
//! * Layout 5 stores a card's question once as a `listpack` integer of a
//!   few bytes in each of its two entries (state hash field, sorted-set
//!   member) instead of an id of ~17; the process maps numbers back with
//!   [`crate::Numbering`] (the store's `question_numbers` table, kept in
//!   memory: a warm process asks nothing). Ids a client sent are looked up
//!   (`find`), never numbered: only rows the server writes number new ids.
//! * Layout 5 names a card's subject by its label number in the value's
//!   header (and in the names of its due sets and marker fields), and its
//!   topic by a varint in the value's tail (`label_numbers`, [`Numbering`]
//!   again): a learner filed under many topics pays no dictionary (layout
//!   3's costs ~20 B per card for 40 topics over 100 cards). A subject
//!   filter is numbered on first use (the core passes only catalog
//!   subjects), so reads of it never ask the store again.
//! * A small learner pays mostly for keys (~100–150 B each: name, main
//!   and expiry dictionary entries, object header): a subject of one chunk
//!   has no index key, a small dictionary lives in the marker, and the
//!   generation in every key name is eight characters.
//! * Every key of one generation expires together: the marker gets the
//!   schedule TTL, data keys the TTL plus a minute (they never expire
//!   before the marker). A write refreshes every key only when the marker
//!   has lost an eighth of its TTL, and otherwise the keys it touched; a
//!   new load writes a new generation, so keys left by an expired or
//!   replaced one are never read.
//!
//! The marker is the schedule's presence: no marker of this layout ⇒ absent
//! (`due` answers `None` and the core rehydrates); a schedule of layout 1
//! 2 or 4 (earlier versions) or of the other current layout (3 ↔ 5) is
//! absent too, and the next load deletes its keys.
//! Every write is one Lua script (atomic, one round trip). A load writes the
//! new generation in one pipeline — one `RESTORE` of a serialized value per
//! key ([`crate::dump`]), or `HSET`/`ZADD` on a server that refuses it —
//! then one script keeps the live entries that are newer than the loaded
//! ones and switches the marker.
//!
//! Horizon mode caches only items due before the marker's `hz`; a query
//! with `now > hz` treats the schedule as absent, so answers stay exact.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use memora_core::domain::MemoryTracker;
use memora_core::ids::{Label, QuestionId, SeasonId, SubjectId, TopicId, UserId};
use memora_core::ports::{CacheStats, DueCache, DueSlice, UserCacheStats};
use memora_core::{PortError, PortResult};
use redis::{FromRedisValue, Script, Value};

use crate::codec::{self, hq, micros};
use crate::config::{LoadWrite, RedisConfig};
use crate::conn::{RedisConn, glob_escape};
use crate::dump;
use crate::error::{Error, Result};
use crate::lua::MULTI_LUA;
use crate::numbers::Numbering;

/// The Lua helpers every schedule script is built from (also the fast
/// path's, [`crate::fast`]):
/// * `sched(b)`: the schedule of base `b` (`nil`: absent), a table with its
///   marker `m`, generation prefix `g`, chunks `n` and horizon `hz`;
/// * `due_read(b, subject, now, limit)`: `nil` when absent (or `now` past
///   the horizon), else `{total due, first ids}`;
/// * `put_rows(b, ttl, args, first, last)`: writes the row quintuples
///   `(question, value, due, subject, topic)` of `args[first..=last]`
///   (newer wins, horizon respected); `-1` if the schedule is absent;
/// * `read_cards(S, qs, first)`: per question of `qs[first..]` four
///   entries: value, due, subject, topic (`false` ×4 when not cached);
/// * `mastery_read(b)`: `{m0, m1, m2}`, `-1`s when not kept.
pub(crate) const SCHEDULE_LUA: &str = r"
local LAYOUT = '3'
local LABELS = false
local GRACE = 60000
-- A question's chunk hash, kept per script call for the questions it
-- names again (a submission hashes each card up to five times; hashing
-- costs ~0.7 us, a kept one ~0.1 us).
local HQ = {}
local byte = string.byte
local function hq(q)
  local h = HQ[q]
  if h then return h end
  h = 0
  for i = 1, #q do h = (h * 31 + byte(q, i)) % 2147483647 end
  HQ[q] = h
  return h
end
-- A value's mastery bucket, last review (nil: none), subject and topic
-- (layout 5: the subject's label number, and 0: the topic is in the tail).
local function hdr(v)
  local fl, lr, si, ti
  if LABELS then
    fl, lr, si = struct.unpack('<BdI4', v)
    ti = 0
  else
    fl, lr, si, ti = struct.unpack('<BdHH', v)
  end
  if math.floor(fl / 4) % 2 == 0 then lr = nil end
  return fl % 4, lr, si, ti
end
-- struct.unpack(HFMT, v): a value's flags, last review and subject (its
-- third result, in either layout) in one C call, for loops that need
-- only the subject.
local HFMT = '<BdHH'
if LABELS then HFMT = '<BdI4' end
local sunpack = struct.unpack
-- A value with dictionary indexes si, ti (layout 5: Rust wrote the whole
-- value).
local function with_dict(v, si, ti)
  if LABELS then return v end
  return string.sub(v, 1, 9) .. struct.pack('<HH', si, ti) .. string.sub(v, 14)
end
local function bytes_lt(a, c)
  for i = 1, math.min(#a, #c) do
    local x, y = string.byte(a, i), string.byte(c, i)
    if x ~= y then return x < y end
  end
  return #a < #c
end
local function sched_any(b)
  local m = b .. ':m'
  local v = redis.call('HMGET', m, 'v', 'g', 'n', 'hz', 'ka', 'di')
  if v[1] ~= '2' and v[1] ~= '3' and v[1] ~= '4' and v[1] ~= '5' then return nil end
  local g = b .. ':' .. v[2]
  -- A small dictionary lives in the marker ('di'), a larger one in G:d.
  local d = g .. ':d'
  if v[6] then d = m end
  return {m = m, g = g, d = d, n = tonumber(v[3]), hz = tonumber(v[4] or ''), ka = v[5], v = v[1]}
end
local function sched(b)
  local S = sched_any(b)
  if S and S.v == LAYOUT then return S end
  return nil
end
-- Key and field names with numbers in them are built once per script
-- call and kept in S: Lua turns a number into text with sprintf (~2 000
-- instructions), and a submission names the same few keys for every card.
-- t[k], a table created empty if absent.
local function slot(t, k)
  local u = t[k]
  if not u then u = {}; t[k] = u end
  return u
end
local function hkey(S, k)
  local t = slot(S, 'hk')
  local h = t[k]
  if not h then h = S.g .. ':h' .. k; t[k] = h end
  return h
end
local function zkey(S, si, k)
  local u = slot(slot(S, 'zk'), si)
  local z = u[k]
  if not z then z = S.g .. ':z' .. si .. '.' .. k; u[k] = z end
  return z
end
-- p .. i for a short constant prefix p ('s', 'sc:', 'm').
local function named(S, p, i)
  local u = slot(slot(S, 'nm'), p)
  local v = u[i]
  if not v then v = p .. i; u[i] = v end
  return v
end
local function card(S, q)
  local h = hkey(S, hq(q) % S.n)
  return h, redis.call('HGET', h, q)
end
-- The number of due-set chunks of subject si (false: none yet). A subject
-- of one chunk has no index G:i<si>: the chunk is its own.
local function snum(S, si)
  S.snm = S.snm or {}
  local n = S.snm[si]
  if n == nil then
    n = tonumber(redis.call('HGET', S.m, 'sn:' .. si)) or false
    S.snm[si] = n
  end
  return n
end
-- The due set and chunk of question q in subject si (nil: the subject
-- has no sets yet, unless `create`). Hot (a few times per answered
-- card): it reads the names snum, hq and zkey keep without calling them
-- when they are there.
local function zof(S, si, q, create)
  local snm = S.snm
  local n = snm and snm[si]
  if n == nil then n = snum(S, si) end
  if not n then
    if not create then return nil end
    n = 1
    redis.call('HSET', S.m, 'sn:' .. si, 1)
    S.snm[si] = 1
  end
  local k = (HQ[q] or hq(q)) % n
  local zk = S.zk
  local u = zk and zk[si]
  local z = u and u[k]
  if not z then z = zkey(S, si, k) end
  return z, k
end
local function mastery_read(b)
  local c = redis.call('HMGET', b .. ':m', 'v', 'm0', 'm1', 'm2')
  if c[1] ~= LAYOUT or not c[2] then return {-1, -1, -1} end
  return {tonumber(c[2]), tonumber(c[3] or '0'), tonumber(c[4] or '0')}
end
local function fmt(x) return string.format('%.0f', x) end
-- Due counts, cached in the marker per count set ('a': every subject,
-- 's<index>': one): 'k<set>' = 'tv|tn|tc' says tc cards are due at any
-- time in [tv, tn) (tn empty: no later due); no card of the set has its
-- due in (tv, tn). Writes keep it exact; a query outside recounts.
local function cache_get(S, key)
  local v
  if key == 'a' and S.ka ~= nil then
    v = S.ka
  else
    v = redis.call('HGET', S.m, 'k' .. key)
  end
  if not v then return nil end
  local tv, tn, tc = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
  return tonumber(tv), tonumber(tn), tonumber(tc)
end
local function cache_set(S, key, tv, tn, tc)
  local n = ''
  if tn then n = fmt(tn) end
  local v = fmt(tv) .. '|' .. n .. '|' .. fmt(tc)
  redis.call('HSET', S.m, 'k' .. key, v)
  if key == 'a' then S.ka = v end
end
-- Where the due chunks of subject si (nil: every subject) are found: an
-- index of chunk minima and the chunks' key prefix, or the one chunk.
local function chunks_of(S, si)
  if not si then return S.g .. ':x', '', nil end
  if (snum(S, si) or 1) > 1 then return S.g .. ':i' .. si, si .. '.', nil end
  return nil, nil, zkey(S, si, 0)
end
local function count_due(S, si, now)
  local key = 'a'
  if si then key = named(S, 's', si) end
  local idx, prefix, single = chunks_of(S, si)
  local tv, tn, tc = cache_get(S, key)
  if tv and now >= tv and ((not tn) or now < tn) then return tc end
  tc, tn = 0, nil
  local after = '(' .. fmt(now)
  if single then
    tc = redis.call('ZCOUNT', single, '-inf', now)
    local nx = redis.call('ZRANGEBYSCORE', single, after, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if nx[2] then tn = tonumber(nx[2]) end
    cache_set(S, key, now, tn, tc)
    return tc
  end
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', idx, '-inf', now)) do
    local z = S.g .. ':z' .. prefix .. c
    tc = tc + redis.call('ZCOUNT', z, '-inf', now)
    local nx = redis.call('ZRANGEBYSCORE', z, after, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if nx[2] then
      local d = tonumber(nx[2])
      if (not tn) or d < tn then tn = d end
    end
  end
  local nx = redis.call('ZRANGEBYSCORE', idx, after, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if nx[2] then
    local d = tonumber(nx[2])
    if (not tn) or d < tn then tn = d end
  end
  cache_set(S, key, now, tn, tc)
  return tc
end
local function due_read(b, subject, now, limit)
  local S = sched(b)
  if not S then return nil end
  now, limit = tonumber(now), tonumber(limit)
  if S.hz and now > S.hz then return nil end
  local si = nil
  if subject and subject ~= '' then
    -- Layout 5: the subject's number.
    if LABELS then
      si = tonumber(subject)
    else
      si = tonumber(redis.call('HGET', S.d, 'd:s' .. subject))
    end
    if not si then return {0, {}} end
  end
  local idx, prefix, single = chunks_of(S, si)
  local total = count_due(S, si, now)
  -- The last unfiltered answer, `G:l` = 'time|limit|ids', still holds
  -- when nothing was written since (every write deletes it), `now` is not
  -- earlier, and either it was full (items falling due later come after
  -- it) or nothing fell due since (the count is its length).
  local kept = (not si) and redis.call('GET', S.g .. ':l')
  if kept then
    local tv, l0, ids = string.match(kept, '^([^|]*)|([^|]*)|(.*)$')
    tv, l0 = tonumber(tv), tonumber(l0)
    if tv and l0 == limit and now >= tv then
      local cached = {}
      for id in string.gmatch(ids, '[^\031]+') do cached[#cached + 1] = id end
      if #cached == limit or #cached == total then return {total, cached} end
    end
  end
  local items = {}
  if limit > 0 and single then
    items = redis.call('ZRANGEBYSCORE', single, '-inf', now, 'LIMIT', 0, limit)
  elseif limit > 0 then
    -- The first `limit` items lie in the `limit` chunks with the earliest
    -- minima, and in any chunk whose minimum ties the last of those.
    local ch = redis.call('ZRANGEBYSCORE', idx, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
    if #ch >= 2 * limit then
      ch = redis.call('ZRANGEBYSCORE', idx, '-inf', ch[2 * limit], 'WITHSCORES')
    end
    if #ch == 2 then
      items = redis.call('ZRANGEBYSCORE', S.g .. ':z' .. prefix .. ch[1], '-inf', now, 'LIMIT', 0, limit)
    elseif #ch > 2 then
      -- A k-way merge of the chunks' answers, each in (due, id bytes)
      -- order: at each step the least head, dues as numbers and ids of
      -- one due in byte order. Each chunk is read in pages of about
      -- limit / k items, the next page only once its head is taken:
      -- reading `limit` items from every chunk formatted (Redis 7.0:
      -- `%.17g`) and parsed back up to k times as many scores as the
      -- answer needs, ~3 000 instructions each.
      local k = #ch / 2
      local p = math.floor(limit / k) + 2
      local keys, buf, pos, off, done = {}, {}, {}, {}, {}
      for c = 1, k do
        keys[c] = S.g .. ':z' .. prefix .. ch[2 * c - 1]
        buf[c], pos[c], off[c], done[c] = {}, 1, 0, false
      end
      local function fill(c)
        local r = redis.call('ZRANGEBYSCORE', keys[c], '-inf', now, 'WITHSCORES', 'LIMIT', off[c], p)
        local b = {}
        for t = 1, #r, 2 do
          b[t] = r[t]
          b[t + 1] = tonumber(r[t + 1])
        end
        buf[c], pos[c] = b, 1
        off[c] = off[c] + #r / 2
        if #r < 2 * p then done[c] = true end
      end
      while #items < limit do
        local best, bd, bm = nil, nil, nil
        for c = 1, k do
          local b = buf[c]
          if pos[c] > #b and not done[c] then
            fill(c)
            b = buf[c]
          end
          local i = pos[c]
          if i <= #b then
            local d, m = b[i + 1], b[i]
            if (not best) or d < bd or (d == bd and bytes_lt(m, bm)) then
              best, bd, bm = c, d, m
            end
          end
        end
        if not best then break end
        items[#items + 1] = bm
        pos[best] = pos[best] + 2
      end
    end
  end
  if not si then
    local ttl = redis.call('PTTL', S.m)
    if ttl > 0 then
      redis.call('SET', S.g .. ':l', fmt(now) .. '|' .. limit .. '|' .. table.concat(items, '\031'), 'PX', ttl + GRACE)
    end
  end
  return {total, items}
end
local function read_cards(S, qs, first)
  local out, names = {}, {}
  local function name(i)
    if i == 0 or LABELS then return false end
    local n = names[i]
    if n == nil then
      n = redis.call('HGET', S.d, 'r:' .. i) or false
      names[i] = n
    end
    if n then return string.sub(n, 2) end
    return false
  end
  -- One HMGET per state hash, then one ZMSCORE per due set. The
  -- per-question tables are indexed from 1 (question j is qs[first + j -
  -- 1]): Lua keeps keys 1..n in a table's array part, while keys from
  -- `first` on would live in its hash part, rehashed as it grows. Key
  -- names come from the tables hkey and zkey fill, without a call where
  -- they hold them (as in put_rows).
  local hk, n = slot(S, 'hk'), S.n
  local nq = #qs - first + 1
  local vs, dues, sis, tis = {}, {}, {}, {}
  local byh, byz = {}, {}
  for j = 1, nq do
    local k = hq(qs[first + j - 1]) % n
    local h = hk[k] or hkey(S, k)
    local g = byh[h]
    if not g then g = {}; byh[h] = g end
    g[#g + 1] = j
  end
  for h, js in pairs(byh) do
    local fs = {}
    for t, j in ipairs(js) do fs[t] = qs[first + j - 1] end
    local r = mcall('HMGET', h, fs)
    for t, j in ipairs(js) do vs[j] = r[t] end
  end
  for j = 1, nq do
    local v = vs[j]
    if v then
      local _f, _l, si, ti = sunpack(HFMT, v)
      if LABELS then ti = 0 end
      sis[j], tis[j] = si, ti
      local z = zof(S, si, qs[first + j - 1], false)
      if z then
        local g = byz[z]
        if not g then g = {}; byz[z] = g end
        g[#g + 1] = j
      end
    end
  end
  for z, js in pairs(byz) do
    local ms = {}
    for t, j in ipairs(js) do ms[t] = qs[first + j - 1] end
    local r = mcall('ZMSCORE', z, ms)
    for t, j in ipairs(js) do dues[j] = r[t] end
  end
  local o = 0
  for j = 1, nq do
    local due = dues[j]
    if due then
      out[o + 1] = vs[j]
      out[o + 2] = due
      if LABELS then
        out[o + 3], out[o + 4] = false, false
      else
        out[o + 3] = name(sis[j])
        out[o + 4] = name(tis[j])
      end
    else
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] = false, false, false, false
    end
    o = o + 4
  end
  return out
end
";

/// The write helpers, after [`SCHEDULE_LUA`] in the scripts that write
/// (reads do not pay for defining them).
pub(crate) const SCHEDULE_WRITE_LUA: &str = r"
local function reindex(S, si, k)
  local first = redis.call('ZRANGE', zkey(S, si, k), 0, 0, 'WITHSCORES')
  local x, i = S.g .. ':x', S.g .. ':i' .. si
  local indexed = (snum(S, si) or 1) > 1
  if first[1] then
    redis.call('ZADD', x, first[2], si .. '.' .. k)
    if indexed then redis.call('ZADD', i, first[2], k) end
  else
    redis.call('ZREM', x, si .. '.' .. k)
    if indexed then redis.call('ZREM', i, k) end
  end
end
local function dict(S, name)
  S.dm = S.dm or {}
  if S.dm[name] then return S.dm[name] end
  local i = redis.call('HGET', S.d, 'd:' .. name)
  if i then
    S.dm[name] = tonumber(i)
    return S.dm[name]
  end
  i = redis.call('HINCRBY', S.d, 'dn', 1)
  if i > 65535 then error('schedule dictionary full') end
  redis.call('HSET', S.d, 'd:' .. name, i, 'r:' .. i, name)
  S.dm[name] = i
  return i
end
local function data_keys(S)
  local keys = {S.g .. ':x', S.g .. ':l'}
  if S.d ~= S.m then keys[#keys + 1] = S.d end
  for k = 0, S.n - 1 do keys[#keys + 1] = hkey(S, k) end
  local f = redis.call('HGETALL', S.m)
  for j = 1, #f, 2 do
    local si = string.match(f[j], '^sn:(%d+)$')
    if si then
      keys[#keys + 1] = S.g .. ':i' .. si
      for k = 0, tonumber(f[j + 1]) - 1 do keys[#keys + 1] = zkey(S, si, k) end
    end
  end
  return keys
end
local function expire_all(S, ttl)
  redis.call('PEXPIRE', S.m, ttl)
  for _, k in ipairs(data_keys(S)) do redis.call('PEXPIRE', k, ttl + GRACE) end
end
local function ttl_refresh(S, ttl, touched)
  ttl = tonumber(ttl)
  local left = redis.call('PTTL', S.m)
  if left < ttl * 7 / 8 then
    expire_all(S, ttl)
  else
    for k, _ in pairs(touched) do redis.call('PEXPIRE', k, left + GRACE) end
  end
end
local function madd(m, b, delta)
  if b ~= 3 then redis.call('HINCRBY', m, 'm' .. b, delta) end
end
-- Count caches and counters change in memory during one script and are
-- written once by `flush` (a submission moves many cards).
local function cache_move(S, key, od, nd)
  S.cc = S.cc or {}
  local e = S.cc[key]
  if e == nil then
    local tv, tn, tc = cache_get(S, key)
    e = false
    if tv then e = {tv = tv, tn = tn, tc = tc} end
    S.cc[key] = e
  end
  if not e then return end
  if od and od <= e.tv then e.tc = e.tc - 1 end
  if nd and nd <= e.tv then e.tc = e.tc + 1 end
  if nd and nd > e.tv and ((not e.tn) or nd < e.tn) then e.tn = nd end
  e.dirty = true
end
local function incr(S, field, delta)
  S.inc = S.inc or {}
  S.inc[field] = (S.inc[field] or 0) + delta
end
local function flush(S)
  for si, u in pairs(S.rx or {}) do
    for k, _ in pairs(u) do reindex(S, si, k) end
  end
  S.rx = nil
  for f, d in pairs(S.inc or {}) do
    if d ~= 0 then redis.call('HINCRBY', S.m, f, d) end
  end
  S.inc = nil
  for key, e in pairs(S.cc or {}) do
    if e and e.dirty then
      cache_set(S, key, e.tv, e.tn, e.tc)
      e.dirty = false
    end
  end
end
-- A card leaves subject osi at due od and/or enters subject nsi at due nd.
local function counts_move(S, osi, od, nsi, nd)
  cache_move(S, 'a', od, nd)
  if osi and nsi and osi == nsi then
    cache_move(S, named(S, 's', osi), od, nd)
  else
    if osi then cache_move(S, named(S, 's', osi), od, nil) end
    if nsi then cache_move(S, named(S, 's', nsi), nil, nd) end
  end
end
-- Growth: a schedule keeps ~32–64 cards per chunk as it grows (lessons
-- add cards to a present schedule): past 64 per chunk on average, its
-- state hashes, or one subject's due sets, split in two — `hq mod 2n` is
-- `k` or `k + n` — once per doubling, so a card moves O(1) times on average.
local function grow(S, touched, subjects)
  local c = tonumber(redis.call('HGET', S.m, 'c') or '0')
  if c > 64 * S.n then
    local n = S.n
    for k = 0, n - 1 do
      local h = hkey(S, k)
      local e = redis.call('HGETALL', h)
      for j = 1, #e, 2 do
        if hq(e[j]) % (2 * n) ~= k then
          redis.call('HSET', hkey(S, k + n), e[j], e[j + 1])
          redis.call('HDEL', h, e[j])
        end
      end
      touched[hkey(S, k + n)] = true
    end
    S.n = 2 * n
    redis.call('HSET', S.m, 'n', S.n)
  end
  for si, _ in pairs(subjects) do
    local sc = redis.call('HMGET', S.m, 'sc:' .. si, 'sn:' .. si)
    local n = tonumber(sc[2] or '1')
    if tonumber(sc[1] or '0') > 64 * n then
      for k = 0, n - 1 do
        local z = zkey(S, si, k)
        local e = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
        local z2 = zkey(S, si, k + n)
        for t = 1, #e, 2 do
          if hq(e[t]) % (2 * n) ~= k then
            redis.call('ZADD', z2, e[t + 1], e[t])
            redis.call('ZREM', z, e[t])
          end
        end
        touched[z2] = true
      end
      redis.call('HSET', S.m, 'sn:' .. si, 2 * n)
      S.snm = S.snm or {}
      S.snm[si] = 2 * n
      for k = 0, 2 * n - 1 do reindex(S, si, k) end
    end
  end
end
-- The fast path's commit wrote job j's rows into schedule b: until the
-- schedule is replaced (another generation) or loses cards (`rm`, counted
-- by REMOVE), the persistence worker's refresh of that job has nothing to
-- write (`WRITTEN`). An hour bounds how long a mark waits for a worker
-- that never comes.
local function mark_written(b, j)
  local S = sched(b)
  if S then
    local rm = redis.call('HGET', S.m, 'rm') or '0'
    redis.call('SET', b .. ':w:' .. j, S.g .. '|' .. rm, 'PX', 3600000)
  end
end
local function put_rows(b, ttl, args, first, last)
  local S = sched(b)
  if not S then return -1 end
  local counted = (not S.hz) and redis.call('HEXISTS', S.m, 'm0') == 1
  local touched = {[S.g .. ':x'] = true}
  local subjects = {}
  local written = 0
  -- The cards as they are (hv: state hash -> question -> value, false
  -- when absent; zs: due set -> question -> due, false when not in it),
  -- read with one HMGET per state hash and one ZMSCORE per due set before
  -- the rows are applied in order. A row's writes go to hv/zs (later rows
  -- of the call read them there) and to ph/pz, sent at the end as one
  -- HSET/HDEL per hash and one ZADD/ZREM per set.
  --
  -- The loop over the rows is written out rather than through small
  -- helpers: a Lua function call costs a few hundred instructions, and
  -- the helpers made ~50 calls per row (docs/PERFORMANCE.md, section
  -- 'Where Redis' instructions go, by script'). Counters change in local
  -- tables and go to `incr` once per call.
  local hv, zs, ph, pz = {}, {}, {}, {}
  local byh, byz = {}, {}
  S.snm = S.snm or {}
  local snm = S.snm
  local hk = slot(S, 'hk')
  local n = S.n
  local rh = {} -- rh[r]: the state hash of row r (1-based)
  local r = 0
  for i = first, last, 5 do
    r = r + 1
    local q = args[i]
    local k = hq(q) % n
    local h = hk[k] or hkey(S, k)
    rh[r] = h
    local g = byh[h]
    if not g then g = {}; byh[h] = g end
    g[#g + 1] = q
  end
  for h, fs in pairs(byh) do
    local got = mcall('HMGET', h, fs)
    local t = {}
    hv[h] = t
    for j, q in ipairs(fs) do t[q] = got[j] end
  end
  for _, t in pairs(hv) do
    for q, v in pairs(t) do
      if v then
        local _f, _l, osi = sunpack(HFMT, v)
        local oz = zof(S, osi, q, false)
        if oz then
          local g = byz[oz]
          if not g then g = {}; byz[oz] = g end
          g[#g + 1] = q
        end
      end
    end
  end
  for z, ms in pairs(byz) do
    local got = mcall('ZMSCORE', z, ms)
    local t = {}
    zs[z] = t
    for j, q in ipairs(ms) do t[q] = tonumber(got[j]) or false end
  end
  local rx = slot(S, 'rx')
  local gi = S.g .. ':i'
  -- Deltas of the card count, of each subject's card count and of each
  -- mastery bucket's count.
  local dc, dsc, dm = 0, {}, {}
  -- Pending writes: t[z] (or t[h]) created on first use.
  local function pend(t, k)
    local u = t[k]
    if not u then u = {}; t[k] = u end
    return u
  end
  r = 0
  for i = first, last, 5 do
    r = r + 1
    local q, v, due, sname, tname = args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]
    local dn = tonumber(due)
    local h = rh[r]
    local hvh = hv[h]
    local old = hvh[q] or nil
    local nb, nlr, nsi = hdr(v)
    local ob, olr, osi, oti
    -- The card's due set and chunk before the write, and its due there
    -- (nil: new, or not in one).
    local oz, ok, od = nil, nil, nil
    local skip = false
    if old then
      ob, olr, osi, oti = hdr(old)
      oz, ok = zof(S, osi, q, false)
      if oz then
        local t = zs[oz]
        local d = t and t[q]
        if d == nil then
          d = tonumber(redis.call('ZSCORE', oz, q)) or false
          pend(zs, oz)[q] = d
        end
        od = d or nil
      end
      if olr and ((not nlr) or olr > nlr) then
        skip = true
      elseif olr == nlr and string.sub(old, 14) == string.sub(v, 14)
          and string.sub(old, 1, 9) == string.sub(v, 1, 9) then
        -- The same state (the persistence worker refreshing what the
        -- commit wrote): unchanged if its subject, topic and due are too.
        local same
        if LABELS then
          same = osi == nsi
        else
          same = (sname == '' and osi == 0) or (sname ~= '' and osi == dict(S, 's' .. sname))
          same = same and ((tname == '' and oti == 0) or (tname ~= '' and oti == dict(S, 't' .. tname)))
        end
        if same and od and od == dn then skip = true end
      end
    end
    if not skip then
      if old and counted and ob ~= 3 then dm[ob] = (dm[ob] or 0) - 1 end
      if S.hz and dn > S.hz then
        if oz then
          pend(zs, oz)[q] = false
          pend(pz, oz)[q] = false
          pend(rx, osi)[ok] = true
        end
        if old then
          hvh[q] = false
          pend(ph, h)[q] = false
          dc = dc - 1
          if od then
            counts_move(S, osi, od, nil, nil)
            dsc[osi] = (dsc[osi] or 0) - 1
          end
        end
      else
        local si, ti = 0, 0
        if LABELS then
          si = nsi
        else
          if sname ~= '' then si = dict(S, 's' .. sname) end
          if tname ~= '' then ti = dict(S, 't' .. tname) end
        end
        local nv = with_dict(v, si, ti)
        hvh[q] = nv
        local p = ph[h]
        if not p then p = {}; ph[h] = p end
        p[q] = nv
        if not old then dc = dc + 1 end
        -- Same set (the subject is unchanged, as for nearly every
        -- answer): ZADD moves the member, one listpack pass instead of two.
        local z, k
        if oz and osi == si then
          z, k = oz, ok
        else
          z, k = zof(S, si, q, true)
          if oz then
            pend(zs, oz)[q] = false
            pend(pz, oz)[q] = false
            pend(rx, osi)[ok] = true
          end
        end
        p = zs[z]
        if not p then p = {}; zs[z] = p end
        p[q] = dn or false
        p = pz[z]
        if not p then p = {}; pz[z] = p end
        p[q] = due
        p = rx[si]
        if not p then p = {}; rx[si] = p end
        p[k] = true
        counts_move(S, od and osi, od, si, dn)
        if not (od and osi == si) then
          if od then dsc[osi] = (dsc[osi] or 0) - 1 end
          dsc[si] = (dsc[si] or 0) + 1
        end
        touched[h] = true
        touched[z] = true
        if (snm[si] or 1) > 1 then touched[named(S, gi, si)] = true end
        subjects[si] = true
        if counted and nb ~= 3 then dm[nb] = (dm[nb] or 0) + 1 end
      end
      written = written + 1
    end
  end
  if dc ~= 0 then incr(S, 'c', dc) end
  for s, d in pairs(dsc) do incr(S, named(S, 'sc:', s), d) end
  for m, d in pairs(dm) do incr(S, named(S, 'm', m), d) end
  -- The pending writes of each key: removals, then one write of the rest
  -- (HSET takes field value, ZADD score member).
  local function send(pending, del, set, value_first)
    for k, t in pairs(pending) do
      local pairs_, gone = {}, {}
      for q, v in pairs(t) do
        if not v then
          gone[#gone + 1] = q
        elseif value_first then
          pairs_[#pairs_ + 1] = v
          pairs_[#pairs_ + 1] = q
        else
          pairs_[#pairs_ + 1] = q
          pairs_[#pairs_ + 1] = v
        end
      end
      mcall(del, k, gone)
      mcall(set, k, pairs_)
    end
  end
  send(ph, 'HDEL', 'HSET', false)
  send(pz, 'ZREM', 'ZADD', true)
  if written > 0 then redis.call('DEL', S.g .. ':l') end
  flush(S)
  grow(S, touched, subjects)
  ttl_refresh(S, ttl, touched)
  return written
end
";

/// KEYS[1]=B; ARGV[1] = job id. `1` if the fast path's commit of that job
/// wrote its rows into the schedule as it is now (the same generation, no
/// card removed since), else `0`; the mark is consumed either way.
const WRITTEN: &str = r"
local mk = KEYS[1] .. ':w:' .. ARGV[1]
local g = redis.call('GET', mk)
if not g then return 0 end
redis.call('DEL', mk)
local S = sched(KEYS[1])
if S and S.g .. '|' .. (redis.call('HGET', S.m, 'rm') or '0') == g then return 1 end
return 0
";

/// KEYS[1]=B; ARGV = ttl_ms, then (question, value, due, subject, topic)*.
const PUT: &str = r"
return put_rows(KEYS[1], ARGV[1], ARGV, 2, #ARGV)
";

/// KEYS[1]=B; ARGV = generation, ttl_ms, hz, n, cards, m0, m1, m2 (empty
/// in horizon mode). The new generation's data keys and its dictionary
/// (`G:d`) and horizon-far cards (`G:f`: question → last review µs) were
/// written by the load's pipeline.
const SWAP: &str = r"
local b = KEYS[1]
local g, ttl, hz, n, c = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local m = b .. ':m'
local W = {m = b .. ':' .. g .. ':d', d = b .. ':' .. g .. ':d', g = b .. ':' .. g, n = n, hz = tonumber(hz)}
local far = W.g .. ':f'
local counts = nil
if hz == '' and ARGV[6] ~= '' then
  counts = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
end
local function cadd(bucket, delta)
  if counts and bucket ~= 3 then counts[bucket + 1] = counts[bucket + 1] + delta end
end
local O = sched(b)
if O then
  local function rename(i)
    if i == 0 or LABELS then return i end
    local nm = redis.call('HGET', O.d, 'r:' .. i)
    if not nm then return 0 end
    return dict(W, nm)
  end
  for k = 0, O.n - 1 do
    local entries = redis.call('HGETALL', hkey(O, k))
    for j = 1, #entries, 2 do
      local q, ov = entries[j], entries[j + 1]
      local ob, olr, osi, oti = hdr(ov)
      if olr then
        local h, nv = card(W, q)
        local present, nb, nlr, nsi = false, nil, nil, nil
        if nv then
          present = true
          nb, nlr, nsi = hdr(nv)
        else
          local f = redis.call('HGET', far, q)
          if f then present = true; nlr = tonumber(f) end
        end
        if present and ((not nlr) or olr > nlr) then
          local oz = zof(O, osi, q, false)
          local due = oz and redis.call('ZSCORE', oz, q)
          if due then
            if nv then
              local nz, nk = zof(W, nsi, q, false)
              if nz then
                redis.call('ZREM', nz, q)
                redis.call('HINCRBY', W.m, 'sc:' .. nsi, -1)
                reindex(W, nsi, nk)
              end
              cadd(nb, -1)
            else
              c = c + 1
            end
            cadd(ob, 1)
            local si, ti = rename(osi), rename(oti)
            redis.call('HSET', h, q, with_dict(ov, si, ti))
            local z, zk = zof(W, si, q, true)
            redis.call('ZADD', z, due, q)
            redis.call('HINCRBY', W.m, 'sc:' .. si, 1)
            reindex(W, si, zk)
          end
        end
      end
    end
  end
  -- (A new generation named as the old one, one chance in 36^8, rewrote
  -- its keys: nothing to delete.)
  if O.g ~= W.g then
    for _, k in ipairs(data_keys(O)) do redis.call('DEL', k) end
  end
elseif sched_any(b) then
  -- The other compact layout (ids or numbers): nothing to merge.
  for _, k in ipairs(data_keys(sched_any(b))) do redis.call('DEL', k) end
elseif redis.call('EXISTS', m) == 1 then
  -- An earlier layout (1): a master set, a state hash, subject sets.
  local f = redis.call('HKEYS', m)
  for _, k in ipairs(f) do
    if string.sub(k, 1, 2) == 's:' then redis.call('DEL', b .. ':' .. k) end
  end
  redis.call('DEL', b, b .. ':h')
end
redis.call('DEL', m)
-- The subjects' chunk and card counts move to the marker. A dictionary of
-- at most 24 fields (11 names) moves there too, one key less for a small
-- learner; a larger one stays in the generation's own hash, so reads
-- never scan it in the marker.
local d = redis.call('HGETALL', W.d)
local names = {}
for j = 1, #d, 2 do
  if string.match(d[j], '^s[nc]:') then
    redis.call('HSET', m, d[j], d[j + 1])
  else
    names[#names + 1] = d[j]
    names[#names + 1] = d[j + 1]
  end
end
if #names <= 48 then
  if #names > 0 then redis.call('HSET', m, unpack(names)) end
  redis.call('DEL', W.d)
  redis.call('HSET', m, 'di', 1)
else
  for j = 1, #d, 2 do
    if string.match(d[j], '^s[nc]:') then redis.call('HDEL', W.d, d[j]) end
  end
end
redis.call('HSET', m, 'v', LAYOUT, 'g', g, 'n', n, 'hz', hz, 'c', c)
if counts then redis.call('HSET', m, 'm0', counts[1], 'm1', counts[2], 'm2', counts[3]) end
redis.call('DEL', far)
expire_all(sched(b), ttl)
return 1
";

/// KEYS[1]=B; ARGV = now, limit, subject ('' for every subject).
const DUE: &str = r"
local r = due_read(KEYS[1], ARGV[3], ARGV[1], ARGV[2])
if not r then return false end
return r
";

/// KEYS[1]=B; ARGV = now. `{cards, due now}`, `false` when absent.
const USER_STATS: &str = r"
local r = due_read(KEYS[1], '', ARGV[1], 0)
if not r then return false end
return {tonumber(redis.call('HGET', KEYS[1] .. ':m', 'c') or '0'), r[1]}
";

/// KEYS[1]=B; ARGV = questions. `read_cards` of them, `false` if absent.
const STATES: &str = r"
local S = sched(KEYS[1])
if not S then return false end
return read_cards(S, ARGV, 1)
";

/// KEYS[1]=B; ARGV = questions.
const REMOVE: &str = r"
local S = sched(KEYS[1])
if not S then return 0 end
local counted = (not S.hz) and redis.call('HEXISTS', S.m, 'm0') == 1
local n = 0
for i = 1, #ARGV do
  local q = ARGV[i]
  local h, old = card(S, q)
  if old then
    local ob, _, osi = hdr(old)
    local oz, ok = zof(S, osi, q, false)
    if oz then
      counts_move(S, osi, tonumber(redis.call('ZSCORE', oz, q)), nil, nil)
      redis.call('HINCRBY', S.m, 'sc:' .. osi, -1)
      redis.call('ZREM', oz, q)
      reindex(S, osi, ok)
    end
    redis.call('HDEL', h, q)
    redis.call('HINCRBY', S.m, 'c', -1)
    if counted then madd(S.m, ob, -1) end
    n = n + 1
  end
end
if n > 0 then
  redis.call('DEL', S.g .. ':l')
  -- Jobs committed before keep no claim to be in the schedule (WRITTEN).
  redis.call('HINCRBY', S.m, 'rm', 1)
end
flush(S)
return n
";

/// KEYS[1]=B: deletes every key of the schedule (either layout).
const CLEAR: &str = r"
local b = KEYS[1]
local m = b .. ':m'
local S = sched_any(b)
if S then
  for _, k in ipairs(data_keys(S)) do redis.call('DEL', k) end
elseif redis.call('EXISTS', m) == 1 then
  local f = redis.call('HKEYS', m)
  for _, k in ipairs(f) do
    if string.sub(k, 1, 2) == 's:' then redis.call('DEL', b .. ':' .. k) end
  end
  redis.call('DEL', b, b .. ':h')
end
return redis.call('DEL', m)
";

/// KEYS[1]=B; ARGV = n, seed. Up to n cached cards (all when the schedule
/// holds no more; else `HRANDFIELD` over chunks from a seeded start), as
/// `{ids, read_cards(ids)}`; `false` if absent.
const SAMPLE: &str = r"
local S = sched(KEYS[1])
if not S then return false end
local n = tonumber(ARGV[1])
local ids = {}
if tonumber(redis.call('HGET', S.m, 'c') or '0') <= n then
  for k = 0, S.n - 1 do
    for _, q in ipairs(redis.call('HKEYS', hkey(S, k))) do ids[#ids + 1] = q end
  end
else
  local start = tonumber(ARGV[2]) % S.n
  local per = math.ceil(n / S.n) + 1
  for j = 0, S.n - 1 do
    if #ids >= n then break end
    local want = math.min(n - #ids, per)
    for _, q in ipairs(redis.call('HRANDFIELD', hkey(S, (start + j) % S.n), want)) do
      ids[#ids + 1] = q
    end
  end
end
return {ids, read_cards(S, ids, 1)}
";

/// KEYS[1]=B: the marker and every data key (for sizes and TTLs).
const KEYS_OF: &str = r"
local S = sched(KEYS[1])
if not S then return {} end
local keys = data_keys(S)
table.insert(keys, 1, S.m)
return keys
";

/// The slice of a `due_read` reply (`None`: the schedule is absent).
/// `src` with the layout its helpers check: 5 (numbers) or 3 (ids).
fn layout_lua(src: &str, numbered: bool) -> String {
    if numbered {
        src.replacen("local LAYOUT = '3'", "local LAYOUT = '5'", 1)
            .replacen("local LABELS = false", "local LABELS = true", 1)
    } else {
        src.to_owned()
    }
}

/// The label of a load's dictionary name (`s`: subject, else topic).
fn label_of(prefix: u8, name: &str) -> Result<Label> {
    let bad = |e: memora_core::CoreError| Error::Decode(e.to_string());
    Ok(if prefix == b's' {
        Label::Subject(SubjectId::new(name).map_err(bad)?)
    } else {
        Label::Topic(TopicId::new(name).map_err(bad)?)
    })
}

/// One row as a `put_rows` quintuple: the question as the schedule names
/// it, the value, the due time (µs), and (layout 3) the subject and topic
/// ids the script files it under (layout 5: empty, the value has them).
pub(crate) struct WireRow {
    q: String,
    value: Vec<u8>,
    due: i64,
    subject: String,
    topic: String,
}

/// Appends a `put_rows` quintuple to a script call.
pub(crate) fn push_row(inv: &mut redis::ScriptInvocation<'_>, r: &WireRow) {
    inv.arg(&r.q)
        .arg(&r.value)
        .arg(r.due)
        .arg(&r.subject)
        .arg(&r.topic);
}

/// Chunks for `n` cards: a power of two keeping ~32–64 cards per chunk
/// (listpack-sized whatever the hash spread), at least one.
fn chunks_for(n: usize) -> u64 {
    (n.div_ceil(64).max(1) as u64).next_power_of_two()
}

/// Entries per command inside a load pipeline.
const CHUNK: usize = 1000;
/// Questions per `states` script call.
const STATES_CHUNK: usize = 2000;
/// Keys per pipeline of a large load (~300 KB of values).
const LOAD_BATCH_KEYS: usize = 256;
/// TTL of a load's keys until its swap gives them the schedule's (an
/// abandoned load's keys vanish by themselves).
const LOAD_KEYS_TTL_MS: u64 = 120_000;

static NONCE: AtomicU64 = AtomicU64::new(0);

/// Distinct generation names: 36^8.
const GENERATIONS: u64 = 2_821_109_907_456;

/// `n` (below [`GENERATIONS`]) as eight base-36 digits.
fn base36(mut n: u64) -> String {
    let mut out = [b'0'; 8];
    for d in out.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A hash map with a fast, seeded hasher (a load hashes every question id).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One card of a load: its question, chunk hash, due time (µs), subject
/// index and where its encoded value lies in the load's buffer.
struct Card<'a> {
    q: &'a str,
    h: u64,
    due: i64,
    si: u32,
    value: std::ops::Range<usize>,
}

/// A hash entry of a load: field and value.
type Field<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The entries of one key a load writes.
enum Entries<'a> {
    Hash(Vec<Field<'a>>),
    Zset(Vec<(i64, Cow<'a, [u8]>)>),
}

/// A load's keys as one `RESTORE … REPLACE` each, with the load TTL.
fn restore_pipe(keys: &[(String, Entries<'_>)], listpack: bool) -> redis::Pipeline {
    let mut p = redis::pipe();
    for (key, entries) in keys {
        let empty = match entries {
            Entries::Hash(e) => e.is_empty(),
            Entries::Zset(e) => e.is_empty(),
        };
        if empty {
            // Redis refuses an empty collection (and has no key for one).
            continue;
        }
        let payload = match entries {
            Entries::Hash(e) => {
                let it = e.iter().map(|(f, v)| (&f[..], &v[..]));
                listpack
                    .then(|| dump::hash_listpack(it.clone()))
                    .flatten()
                    .unwrap_or_else(|| dump::hash(it))
            }
            Entries::Zset(e) => {
                let it = e.iter().map(|(s, m)| (*s, &m[..]));
                listpack
                    .then(|| dump::zset_listpack(it.clone()))
                    .flatten()
                    .unwrap_or_else(|| dump::zset(it))
            }
        };
        p.cmd("RESTORE")
            .arg(key)
            .arg(LOAD_KEYS_TTL_MS)
            .arg(payload)
            .arg("REPLACE")
            .ignore();
    }
    p
}

/// A load's keys by `HSET`/`ZADD` of at most [`CHUNK`] entries, then
/// `PEXPIRE` with the load TTL.
fn command_pipe(keys: &[(String, Entries<'_>)]) -> redis::Pipeline {
    let mut p = redis::pipe();
    for (key, entries) in keys {
        match entries {
            Entries::Hash(e) => {
                for c in e.chunks(CHUNK) {
                    let cmd = p.cmd("HSET").arg(key);
                    for (f, v) in c {
                        cmd.arg(&f[..]).arg(&v[..]);
                    }
                    cmd.ignore();
                }
            }
            Entries::Zset(e) => {
                for c in e.chunks(CHUNK) {
                    let cmd = p.cmd("ZADD").arg(key);
                    for (s, m) in c {
                        cmd.arg(*s).arg(&m[..]);
                    }
                    cmd.ignore();
                }
            }
        }
        p.cmd("PEXPIRE").arg(key).arg(LOAD_KEYS_TTL_MS).ignore();
    }
    p
}

struct Scripts {
    put: Script,
    written: Script,
    swap: Script,
    due: Script,
    user_stats: Script,
    states: Script,
    remove: Script,
    clear: Script,
    sample: Script,
    keys_of: Script,
}

impl Scripts {
    fn new(numbered: bool) -> Self {
        let r = |body: &str| {
            Script::new(&layout_lua(
                &format!("{MULTI_LUA}\n{SCHEDULE_LUA}\n{body}"),
                numbered,
            ))
        };
        let w = |body: &str| {
            Script::new(&layout_lua(
                &format!("{MULTI_LUA}\n{SCHEDULE_LUA}\n{SCHEDULE_WRITE_LUA}\n{body}"),
                numbered,
            ))
        };
        Scripts {
            put: w(PUT),
            written: r(WRITTEN),
            swap: w(SWAP),
            due: r(DUE),
            user_stats: r(USER_STATS),
            states: r(STATES),
            remove: w(REMOVE),
            clear: w(CLEAR),
            sample: r(SAMPLE),
            keys_of: w(KEYS_OF),
        }
    }
}

/// The [`DueCache`] on Redis or Redis Cluster. Clones share the connection.
#[derive(Clone)]
pub struct RedisDueCache {
    conn: RedisConn,
    cfg: std::sync::Arc<RedisConfig>,
    scripts: std::sync::Arc<Scripts>,
    /// How loads write their keys ([`LoadWrite`] as a number): raised
    /// when the server refuses one way.
    load_write: std::sync::Arc<AtomicU8>,
    /// Layout 5: cards, subjects and topics by number.
    numbers: Option<Numbering>,
}

impl std::fmt::Debug for RedisDueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDueCache")
            .field("cfg", &self.cfg)
            .field("numbered", &self.numbers.is_some())
            .finish()
    }
}

/// Parts of a schedule key: (user, season, suffix after the season).
fn parse_key<'a>(prefix: &str, key: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?;
    let (user, rest) = rest.split_once("}:")?;
    match rest.split_once(':') {
        Some((season, suffix)) => Some((user, season, suffix)),
        None => Some((user, rest, "")),
    }
}

impl RedisDueCache {
    /// Connects with `config`.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        Ok(Self::with_connection(conn, config))
    }

    /// Uses an existing connection (shared with the other adapters).
    pub fn with_connection(conn: RedisConn, config: RedisConfig) -> Self {
        let first_write = config.load_write;
        RedisDueCache {
            conn,
            cfg: std::sync::Arc::new(config),
            load_write: std::sync::Arc::new(AtomicU8::new(first_write as u8)),
            scripts: std::sync::Arc::new(Scripts::new(false)),
            numbers: None,
        }
    }

    /// Layout 5: keeps each card under its question's permanent number
    /// instead of its id (5 bytes of a `listpack` entry instead of ~17 for
    /// a typical id), and names its subject and topic by their label
    /// numbers instead of a dictionary per schedule, mapped by `numbering`. Schedules of the other layout
    /// read as absent and are replaced by the next load. Items with the
    /// same due time then come in number order (numbers follow the order in
    /// which ids were first numbered, id order within one call).
    pub fn with_numbering(mut self, numbering: Numbering) -> Self {
        self.scripts = std::sync::Arc::new(Scripts::new(true));
        self.numbers = Some(numbering);
        self
    }

    /// The numbering of layout 5 (`None`: layout 3, cards under their ids).
    pub fn numbering(&self) -> Option<&Numbering> {
        self.numbers.as_ref()
    }

    /// A script source of the schedule's layout (the `LAYOUT` the helpers
    /// check: `'3'` ids, `'5'` numbers).
    pub(crate) fn lua(&self, parts: &[&str]) -> String {
        layout_lua(
            &format!("{MULTI_LUA}\n{}", parts.join("\n")),
            self.numbers.is_some(),
        )
    }

    /// How the schedule names `ids` (its numbers in layout 5), numbering
    /// ids that have none: for rows the server writes.
    pub(crate) async fn wire_assign<'q>(
        &self,
        ids: impl ExactSizeIterator<Item = &'q QuestionId> + Clone,
    ) -> Result<Vec<String>> {
        match &self.numbers {
            None => Ok(ids.map(|q| q.as_str().to_owned()).collect()),
            Some(n) => Ok(n
                .assign(ids)
                .await?
                .into_iter()
                .map(|n| n.to_string())
                .collect()),
        }
    }

    /// How the schedule names `ids`, `None` for an id with no number (no
    /// card of layout 5 can have it): for ids a client sent.
    pub(crate) async fn wire_find(&self, ids: &[QuestionId]) -> Result<Vec<Option<String>>> {
        match &self.numbers {
            None => Ok(ids.iter().map(|q| Some(q.as_str().to_owned())).collect()),
            Some(n) => Ok(n
                .find(ids)
                .await?
                .into_iter()
                .map(|n| n.map(|n| n.to_string()))
                .collect()),
        }
    }

    /// The question ids of schedule members.
    pub(crate) async fn ids_of(&self, wire: Vec<String>) -> Result<Vec<QuestionId>> {
        match &self.numbers {
            None => wire
                .into_iter()
                .map(|q| QuestionId::parse(&q).map_err(|e| Error::Decode(e.to_string())))
                .collect(),
            Some(n) => {
                let nums = wire
                    .iter()
                    .map(|w| {
                        w.parse::<u64>()
                            .map_err(|_| Error::Decode(format!("question number {w:?}")))
                    })
                    .collect::<Result<Vec<u64>>>()?;
                n.questions(&nums).await
            }
        }
    }

    /// The slice of a `due_read` reply (`None`: the schedule is absent).
    pub(crate) async fn due_slice(
        &self,
        reply: Option<(u64, Vec<String>)>,
    ) -> Result<Option<DueSlice>> {
        let Some((total_due, ids)) = reply else {
            return Ok(None);
        };
        Ok(Some(DueSlice {
            items: self.ids_of(ids).await?,
            total_due,
        }))
    }

    /// How a due query names its subject filter: its id (layout 3), its
    /// label number (layout 5), or `''` for none. A subject never numbered
    /// is numbered here, so that every later read of it maps it in the
    /// process (looking it up instead would ask the store at every read of
    /// a subject no card has yet): the core passes only subjects of the
    /// catalog (it validates filters), so the table grows by those at most.
    pub(crate) async fn wire_subject(&self, subject: Option<&SubjectId>) -> Result<String> {
        match (subject, &self.numbers) {
            (None, _) => Ok(String::new()),
            (Some(s), None) => Ok(s.as_str().to_owned()),
            (Some(s), Some(n)) => {
                let label = Label::Subject(s.clone());
                let number = n.assign_labels(std::iter::once(&label)).await?;
                number
                    .first()
                    .map(u64::to_string)
                    .ok_or_else(|| Error::Decode("a subject got no number".into()))
            }
        }
    }

    /// `rows` as `put_rows` quintuples, numbering what they name (layout 5).
    pub(crate) async fn wire_rows(&self, rows: &[MemoryTracker]) -> Result<Vec<WireRow>> {
        let qs = self
            .wire_assign(rows.iter().map(|r| &r.key.question))
            .await?;
        let Some(numbering) = &self.numbers else {
            return Ok(rows
                .iter()
                .zip(qs)
                .map(|(r, q)| WireRow {
                    q,
                    value: codec::encode(r),
                    due: micros(r.state.due),
                    subject: r
                        .subject
                        .as_ref()
                        .map(|s| s.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    topic: r
                        .topic
                        .as_ref()
                        .map(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect());
        };
        let mut labels: Vec<Label> = Vec::new();
        for r in rows {
            labels.extend(r.subject.clone().map(Label::Subject));
            labels.extend(r.topic.clone().map(Label::Topic));
        }
        let mut numbers = numbering.assign_labels(labels.iter()).await?.into_iter();
        let mut next = |present: bool| -> Result<u32> {
            if !present {
                return Ok(0);
            }
            let n = numbers
                .next()
                .ok_or_else(|| Error::Decode("a label got no number".into()))?;
            u32::try_from(n).map_err(|_| Error::Decode(format!("label number {n}")))
        };
        let mut out = Vec::with_capacity(rows.len());
        for (r, q) in rows.iter().zip(qs) {
            let subject = next(r.subject.is_some())?;
            let topic = next(r.topic.is_some())?;
            out.push(WireRow {
                q,
                value: codec::encode_state(&r.state, codec::Names::Labels(subject, topic)),
                due: micros(r.state.due),
                subject: String::new(),
                topic: String::new(),
            });
        }
        Ok(out)
    }

    /// Decodes a `read_cards` reply for `questions` of `(user, season)`.
    pub(crate) async fn decode_cards(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
        flat: Vec<Value>,
    ) -> Result<Vec<Option<MemoryTracker>>> {
        if flat.len() != questions.len() * 4 {
            return Err(Error::Decode(format!(
                "{} card fields for {} questions",
                flat.len(),
                questions.len()
            )));
        }
        let labels = self.numbers.is_some();
        let mut decoded = Vec::with_capacity(questions.len());
        let mut it = flat.into_iter();
        while let (Some(v), Some(due), Some(subject), Some(topic)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            let v: Option<Vec<u8>> = FromRedisValue::from_redis_value(&v)?;
            let Some(v) = v else {
                decoded.push(None);
                continue;
            };
            let due: String = FromRedisValue::from_redis_value(&due)?;
            let due: f64 = due
                .parse()
                .map_err(|_| Error::Decode(format!("due score {due:?}")))?;
            let (state, names) = codec::decode_state(&v, due as i64, labels)?;
            let subject: Option<String> = FromRedisValue::from_redis_value(&subject)?;
            let topic: Option<String> = FromRedisValue::from_redis_value(&topic)?;
            decoded.push(Some((state, names, subject, topic)));
        }
        // Layout 5: the labels the numbers name.
        let mut named: FastMap<u32, Label> = FastMap::default();
        if let Some(numbering) = &self.numbers {
            let mut wanted: Vec<u64> = Vec::new();
            for (_, names, _, _) in decoded.iter().flatten() {
                if let codec::Names::Labels(s, t) = names {
                    wanted.extend([*s, *t].into_iter().filter(|n| *n != 0).map(u64::from));
                }
            }
            wanted.sort_unstable();
            wanted.dedup();
            let got = numbering.labels(&wanted).await?;
            named.extend(
                wanted
                    .into_iter()
                    .zip(got)
                    .filter_map(|(n, l)| Some((u32::try_from(n).ok()?, l))),
            );
        }
        let name = |n: u32| -> Option<&str> {
            match named.get(&n)? {
                Label::Subject(s) => Some(s.as_str()),
                Label::Topic(t) => Some(t.as_str()),
            }
        };
        let mut out = Vec::with_capacity(questions.len());
        for (q, card) in questions.iter().zip(decoded) {
            let Some((state, names, subject, topic)) = card else {
                out.push(None);
                continue;
            };
            let key = codec::key(user, season, q);
            out.push(Some(match names {
                codec::Names::Labels(s, t) => codec::tracker(key, state, name(s), name(t))?,
                codec::Names::Dictionary(..) => {
                    codec::tracker(key, state, subject.as_deref(), topic.as_deref())?
                }
            }));
        }
        Ok(out)
    }

    /// The connection (to share it with other adapters).
    pub fn connection(&self) -> &RedisConn {
        &self.conn
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    fn prefix(&self) -> String {
        format!("{}srs:{{", self.cfg.namespace)
    }

    /// Base key of a schedule (`<ns>srs:{<user>}:<season>`).
    pub fn schedule_key(&self, user: &UserId, season: &SeasonId) -> String {
        format!(
            "{}srs:{{{}}}:{}",
            self.cfg.namespace,
            user.as_str(),
            season.as_str()
        )
    }

    /// Whether schedules keep exact mastery counts (not in horizon mode).
    pub(crate) fn keeps_mastery(&self) -> bool {
        self.cfg.horizon_days.is_none()
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.cfg.schedule_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes `rows` as a complete schedule (see [`DueCache::load`]); the
    /// horizon end, when horizon mode is on, is `now + horizon_days`.
    pub async fn load_at(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let base = self.schedule_key(user, season);
        let hz = self
            .cfg
            .horizon_days
            .map(|d| micros(now) + i64::from(d) * 86_400_000_000);
        // Newest row per question (rows may repeat a question; a later row
        // wins a tie), kept in the rows' order so a load is deterministic.
        let mut newest: FastMap<&str, usize> =
            FastMap::with_capacity_and_hasher(rows.len(), Default::default());
        let mut superseded = vec![false; rows.len()];
        for (i, r) in rows.iter().enumerate() {
            match newest.entry(r.key.question.as_str()) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let j = *o.get();
                    if rows[j].state.last_review > r.state.last_review {
                        superseded[i] = true;
                    } else {
                        superseded[j] = true;
                        o.insert(i);
                    }
                }
            }
        }
        drop(newest);
        let latest: Vec<&MemoryTracker> = rows
            .iter()
            .zip(&superseded)
            .filter_map(|(r, s)| (!s).then_some(r))
            .collect();
        // Layout 5 names cards by number.
        let numbered: Option<Vec<String>> = match self.numbers {
            Some(_) => Some(
                self.wire_assign(latest.iter().map(|r| &r.key.question))
                    .await?,
            ),
            None => None,
        };

        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        // Eight base-36 characters (~41 bits) of a hash of who loads when:
        // the generation is in every data key's name, so it is kept short.
        let generation = base36(
            memora_core::srs::stable_hash(
                &[
                    &std::process::id().to_string(),
                    &micros(now).to_string(),
                    &nonce.to_string(),
                ],
                0x6765_6e65,
            ) % GENERATIONS,
        );
        let g = format!("{base}:{generation}");
        // The dictionary: subjects ('s') and topics ('t'), indexed from 1
        // in sorted order.
        let mut names: FastMap<(u8, &str), u32> = FastMap::default();
        let mut far: Vec<Field<'_>> = Vec::new();
        let mut cached: Vec<(&str, &MemoryTracker)> = Vec::with_capacity(latest.len());
        for (i, r) in latest.iter().enumerate() {
            let q = match &numbered {
                Some(w) => w.get(i).map_or("", String::as_str),
                None => r.key.question.as_str(),
            };
            let due = micros(r.state.due);
            if hz.is_some_and(|hz| due > hz) {
                let lr = r
                    .state
                    .last_review
                    .map(|t| micros(t).to_string())
                    .unwrap_or_default();
                far.push((Cow::Borrowed(q.as_bytes()), Cow::Owned(lr.into_bytes())));
                continue;
            }
            if let Some(s) = &r.subject {
                names.entry((b's', s.as_str())).or_insert(0);
            }
            if let Some(t) = &r.topic {
                names.entry((b't', t.as_str())).or_insert(0);
            }
            cached.push((q, r));
        }
        let mut sorted: Vec<(u8, &str)> = names.keys().copied().collect();
        sorted.sort_unstable();
        match &self.numbers {
            // Layout 5: subjects and topics by their label numbers.
            Some(numbering) => {
                let labels = sorted
                    .iter()
                    .map(|(prefix, name)| label_of(*prefix, name))
                    .collect::<Result<Vec<Label>>>()?;
                let numbers = numbering.assign_labels(labels.iter()).await?;
                for (name, n) in sorted.iter().zip(numbers) {
                    let n =
                        u32::try_from(n).map_err(|_| Error::Decode(format!("label number {n}")))?;
                    names.insert(*name, n);
                }
                sorted.clear();
            }
            // Layout 3: the schedule's own dictionary, indexed from 1 in
            // sorted order.
            None => {
                if names.len() > usize::from(u16::MAX) {
                    return Err(Error::Decode(format!(
                        "{} subjects and topics in one schedule",
                        names.len()
                    )));
                }
                for (i, name) in sorted.iter().enumerate() {
                    names.insert(*name, (i + 1) as u32);
                }
            }
        }
        let labels = self.numbers.is_some();
        let index = |prefix: u8, name: Option<&str>| -> u32 {
            name.and_then(|n| names.get(&(prefix, n)).copied())
                .unwrap_or(0)
        };
        let mut counts = [0u64; 3];
        // Card values, back to back in one buffer.
        let mut arena: Vec<u8> = Vec::with_capacity(cached.len() * 24);
        let mut cards: Vec<Card<'_>> = Vec::with_capacity(cached.len());
        for (q, r) in &cached {
            let si = index(b's', r.subject.as_ref().map(|s| s.as_str()));
            let ti = index(b't', r.topic.as_ref().map(|t| t.as_str()));
            let start = arena.len();
            let bucket = r.state.mastery();
            if hz.is_none() {
                // Mastery counts of a full schedule (horizon mode keeps
                // none: the cards past the horizon are not there to keep
                // them exact).
                if let Some(c) = bucket
                    .and_then(|b| usize::try_from(b.code()).ok())
                    .and_then(|i| counts.get_mut(i))
                {
                    *c += 1;
                }
            }
            let header = if labels {
                codec::Names::Labels(si, ti)
            } else {
                // Below 2^16: the dictionary has at most that many names.
                codec::Names::Dictionary(si as u16, ti as u16)
            };
            codec::encode_state_into(&mut arena, &r.state, bucket, header);
            cards.push(Card {
                q,
                h: hq(q),
                due: micros(r.state.due),
                si,
                value: start..arena.len(),
            });
        }
        let n = chunks_for(cards.len());
        let mut states: Vec<Vec<Field<'_>>> = (0..n).map(|_| Vec::new()).collect();
        let mut by_subject: BTreeMap<u32, Vec<&Card<'_>>> = BTreeMap::new();
        for c in &cards {
            if let Some(chunk) = usize::try_from(c.h % n)
                .ok()
                .and_then(|k| states.get_mut(k))
            {
                chunk.push((
                    Cow::Borrowed(c.q.as_bytes()),
                    Cow::Borrowed(&arena[c.value.clone()]),
                ));
            }
            by_subject.entry(c.si).or_default().push(c);
        }
        let mut keys: Vec<(String, Entries<'_>)> = Vec::new();
        for (k, entries) in states.into_iter().enumerate() {
            if !entries.is_empty() {
                keys.push((format!("{g}:h{k}"), Entries::Hash(entries)));
            }
        }
        let text = |s: String| Cow::Owned(s.into_bytes());
        let mut dict: Vec<Field<'_>> = Vec::new();
        for (i, (prefix, name)) in sorted.iter().enumerate() {
            let full = format!("{}{name}", char::from(*prefix));
            dict.push((text(format!("d:{full}")), text((i + 1).to_string())));
            dict.push((text(format!("r:{}", i + 1)), text(full)));
        }
        if !labels {
            dict.push((Cow::Borrowed(b"dn"), text(names.len().to_string())));
        }
        let mut x: Vec<(i64, Cow<'_, [u8]>)> = Vec::new();
        for (si, items) in &by_subject {
            let ns = chunks_for(items.len());
            dict.push((text(format!("sn:{si}")), text(ns.to_string())));
            dict.push((text(format!("sc:{si}")), text(items.len().to_string())));
            let mut chunks: Vec<Vec<(i64, Cow<'_, [u8]>)>> = (0..ns).map(|_| Vec::new()).collect();
            for c in items {
                if let Some(chunk) = usize::try_from(c.h % ns)
                    .ok()
                    .and_then(|k| chunks.get_mut(k))
                {
                    chunk.push((c.due, Cow::Borrowed(c.q.as_bytes())));
                }
            }
            let mut idx: Vec<(i64, Cow<'_, [u8]>)> = Vec::new();
            for (k, mut members) in chunks.into_iter().enumerate() {
                let Some(min) = members.iter().map(|(due, _)| *due).min() else {
                    continue;
                };
                idx.push((min, text(k.to_string())));
                x.push((min, text(format!("{si}.{k}"))));
                // Sorted: a `listpack` holds them in this order, and `ZADD`
                // then appends each entry.
                members.sort_unstable();
                keys.push((format!("{g}:z{si}.{k}"), Entries::Zset(members)));
            }
            // A subject of one chunk has no index: the chunk is its own.
            if ns > 1 {
                idx.sort_unstable();
                keys.push((format!("{g}:i{si}"), Entries::Zset(idx)));
            }
        }
        if !x.is_empty() {
            x.sort_unstable();
            keys.push((format!("{g}:x"), Entries::Zset(x)));
        }
        keys.push((format!("{g}:d"), Entries::Hash(dict)));
        if !far.is_empty() {
            keys.push((format!("{g}:f"), Entries::Hash(far)));
        }
        let limit = self.cfg.bulk_timeout;
        let first = self.load_write();
        let mut how = first;
        loop {
            match self.write_keys(&keys, how).await {
                Ok(()) => {
                    if how != first {
                        // A later way worked where an earlier one failed:
                        // the server refuses the earlier one (an error
                        // every way shares, such as a full memory, gives
                        // up nothing).
                        self.load_write.fetch_max(how as u8, Ordering::Relaxed);
                        tracing::warn!(
                            refused = ?first,
                            used = ?how,
                            "redis refused a schedule load's RESTORE; loading the next way from now on"
                        );
                    }
                    break;
                }
                // Failed, Redis reachable: write the same keys the next way
                // (keys the failed pipeline wrote get the same content).
                Err(e) if how != LoadWrite::Commands && !e.is_unavailable() => {
                    tracing::debug!(error = %e, way = ?how, "schedule load failed; trying the next way");
                    how = LoadWrite::from_u8(how as u8 + 1);
                }
                Err(e) => return Err(e),
            }
        }
        let mut inv = self.scripts.swap.key(&base);
        inv.arg(&generation)
            .arg(self.ttl_ms())
            .arg(hz.map(|h| h.to_string()).unwrap_or_default())
            .arg(n)
            .arg(cards.len());
        for c in counts {
            inv.arg(if hz.is_some() {
                String::new()
            } else {
                c.to_string()
            });
        }
        let _: i64 = self.conn.script(limit, &inv).await?;
        Ok(())
    }

    /// Writes a load's keys the way `how`. A large load goes out in
    /// batches, each sent while the next is built, so Redis stores one
    /// while the client serializes the next; all of them are awaited
    /// (dropping the future aborts the ones in flight).
    async fn write_keys(&self, keys: &[(String, Entries<'_>)], how: LoadWrite) -> Result<()> {
        let limit = self.cfg.bulk_timeout;
        let build = |batch: &[(String, Entries<'_>)]| match how {
            LoadWrite::Listpack => restore_pipe(batch, true),
            LoadWrite::Generic => restore_pipe(batch, false),
            LoadWrite::Commands => command_pipe(batch),
        };
        if keys.len() <= LOAD_BATCH_KEYS {
            return self.conn.pipe::<()>(limit, &build(keys)).await;
        }
        let mut sent = tokio::task::JoinSet::new();
        for batch in keys.chunks(LOAD_BATCH_KEYS) {
            let pipe = build(batch);
            let conn = self.conn.clone();
            sent.spawn(async move { conn.pipe::<()>(limit, &pipe).await });
        }
        let mut first_error = None;
        while let Some(done) = sent.join_next().await {
            let result = done.unwrap_or_else(|e| Err(Error::Task(e.to_string())));
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether loads write their keys with `RESTORE` (configured, and not
    /// refused by the server so far).
    pub fn loads_by_restore(&self) -> bool {
        self.load_write() != LoadWrite::Commands
    }

    /// Whether loads write `listpack` values (`RESTORE` of Redis 7.0's
    /// encoding, accepted by the server so far).
    pub fn loads_by_listpack(&self) -> bool {
        self.load_write() == LoadWrite::Listpack
    }

    fn load_write(&self) -> LoadWrite {
        LoadWrite::from_u8(self.load_write.load(Ordering::Relaxed))
    }

    async fn due_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Option<DueSlice>> {
        let mut inv = self.scripts.due.key(self.schedule_key(user, season));
        inv.arg(micros(now))
            .arg(limit)
            .arg(self.wire_subject(subject).await?);
        self.due_slice(self.conn.script(self.cfg.call_timeout, &inv).await?)
            .await
    }

    async fn states_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> Result<Vec<Option<MemoryTracker>>> {
        let base = self.schedule_key(user, season);
        let mut out = Vec::with_capacity(questions.len());
        for chunk in questions.chunks(STATES_CHUNK) {
            let mut inv = self.scripts.states.key(&base);
            // A question with no number has no card: '' is no hash field.
            for q in self.wire_find(chunk).await? {
                inv.arg(q.unwrap_or_default());
            }
            let r: Option<Vec<Value>> = self.conn.script(self.cfg.call_timeout, &inv).await?;
            match r {
                None => return Ok(vec![None; questions.len()]),
                Some(flat) => out.extend(self.decode_cards(user, season, chunk, flat).await?),
            }
        }
        Ok(out)
    }

    async fn put_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let base = self.schedule_key(user, season);
        for chunk in rows.chunks(STATES_CHUNK / 5) {
            let wire = self.wire_rows(chunk).await?;
            let mut inv = self.scripts.put.key(&base);
            inv.arg(self.ttl_ms());
            for r in &wire {
                push_row(&mut inv, r);
            }
            let n: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
            if n < 0 {
                break; // absent schedule: nothing to update
            }
        }
        Ok(())
    }

    /// Every key of a present schedule, the marker first (empty if absent).
    async fn keys_of(&self, user: &UserId, season: &SeasonId) -> Result<Vec<String>> {
        let inv = self.scripts.keys_of.key(self.schedule_key(user, season));
        self.conn.script(self.cfg.bulk_timeout, &inv).await
    }

    async fn clear_season_inner(&self, season: &SeasonId) -> Result<u64> {
        let limit = self.cfg.bulk_timeout;
        let prefix = self.prefix();
        let pattern = format!(
            "{}*}}:{}*",
            glob_escape(&prefix),
            glob_escape(season.as_str())
        );
        let keys = self.conn.scan_all(limit, &pattern).await?;
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut schedules = 0u64;
        for k in keys {
            let Some((user, s, suffix)) = parse_key(&prefix, &k) else {
                continue;
            };
            if s != season.as_str() {
                continue;
            }
            if suffix == "m" {
                schedules += 1;
            }
            groups.entry(user.to_owned()).or_default().push(k);
        }
        // One UNLINK per user: its keys share a slot.
        let conn = &self.conn;
        let results: Vec<Result<()>> = futures::stream::iter(groups.into_values())
            .map(|ks| async move {
                let mut c = redis::cmd("UNLINK");
                c.arg(ks);
                let _: i64 = conn.query(limit, &c).await?;
                Ok(())
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(schedules)
    }

    async fn stats_inner(&self) -> Result<CacheStats> {
        let limit = self.cfg.bulk_timeout;
        let infos: Vec<String> = self
            .conn
            .on_each_master(limit, redis::cmd("INFO").arg("memory"))
            .await?;
        let memory_used_bytes = infos
            .iter()
            .filter_map(|i| {
                i.lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum();
        let prefix = self.prefix();
        let keys = self
            .conn
            .scan_all(limit, &format!("{}*}}:*:m", glob_escape(&prefix)))
            .await?;
        let mut by_season: BTreeMap<String, u64> = BTreeMap::new();
        let mut total = 0;
        for k in &keys {
            if let Some((_, season, "m")) = parse_key(&prefix, k) {
                *by_season.entry(season.to_owned()).or_default() += 1;
                total += 1;
            }
        }
        Ok(CacheStats {
            connected: true,
            memory_used_bytes,
            total_keys: total,
            keys_by_season: by_season,
        })
    }

    /// Bytes Redis reports for every key of one schedule (`MEMORY USAGE`),
    /// for capacity planning and the perf notes.
    pub async fn schedule_memory(&self, user: &UserId, season: &SeasonId) -> Result<u64> {
        let mut total = 0;
        for k in self.keys_of(user, season).await? {
            let n: Option<u64> = self
                .conn
                .query(
                    self.cfg.bulk_timeout,
                    redis::cmd("MEMORY")
                        .arg("USAGE")
                        .arg(&k)
                        .arg("SAMPLES")
                        .arg(0),
                )
                .await?;
            total += n.unwrap_or(0);
        }
        Ok(total)
    }

    /// Remaining TTL (ms) of every existing key of a schedule, keyed by
    /// its name after the base key and generation (`"m"` for the marker,
    /// `"h0"`, `"z1.0"`, `"i1"`, `"x"`); for tests and diagnostics.
    pub async fn schedule_ttls(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> Result<BTreeMap<String, i64>> {
        let base = self.schedule_key(user, season);
        let mut out = BTreeMap::new();
        for k in self.keys_of(user, season).await? {
            let t: i64 = self
                .conn
                .query(self.cfg.call_timeout, redis::cmd("PTTL").arg(&k))
                .await?;
            if t == -2 {
                continue; // not there (an empty chunk)
            }
            let name = k
                .strip_prefix(&base)
                .and_then(|r| r.rsplit(':').next())
                .unwrap_or(&k)
                .to_owned();
            out.insert(name, t);
        }
        Ok(out)
    }

    /// Every cached card of a schedule with its due time and the keys'
    /// contents that matter, in a canonical order: for tests comparing two
    /// schedules written by different paths.
    pub async fn schedule_dump(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> Result<Vec<MemoryTracker>> {
        let mut all = self.sample_cards(user, season, usize::MAX).await?;
        all.sort_by(|a, b| a.key.question.as_str().cmp(b.key.question.as_str()));
        Ok(all)
    }

    async fn sample_cards(
        &self,
        user: &UserId,
        season: &SeasonId,
        n: usize,
    ) -> Result<Vec<MemoryTracker>> {
        let mut inv = self.scripts.sample.key(self.schedule_key(user, season));
        let seed = memora_core::srs::stable_hash(&[user.as_str(), season.as_str()], 0);
        inv.arg(n.min(i64::MAX as usize)).arg(seed % (1 << 31));
        let r: Option<(Vec<String>, Vec<Value>)> =
            self.conn.script(self.cfg.bulk_timeout, &inv).await?;
        let Some((ids, flat)) = r else {
            return Ok(Vec::new());
        };
        let ids = self.ids_of(ids).await?;
        Ok(self
            .decode_cards(user, season, &ids, flat)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[async_trait]
impl DueCache for RedisDueCache {
    async fn due<'a>(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&'a SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Option<DueSlice>> {
        Ok(self.due_inner(user, season, subject, now, limit).await?)
    }

    async fn states(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<Vec<Option<MemoryTracker>>> {
        if questions.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.states_inner(user, season, questions).await?)
    }

    async fn put(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> PortResult<()> {
        Ok(self.put_inner(user, season, rows).await?)
    }

    /// Skips the rows when the fast path's commit of `job` wrote them into
    /// this same schedule (one small script instead of rewriting every
    /// card: ~15 % of Redis' time per submission, docs/PERFORMANCE.md);
    /// otherwise [`DueCache::put`].
    async fn refresh(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
        job: &memora_core::ids::JobId,
    ) -> PortResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.written.key(self.schedule_key(user, season));
        inv.arg(job.as_str());
        let written: i64 = self
            .conn
            .script(self.cfg.call_timeout, &inv)
            .await
            .map_err(PortError::from)?;
        if written == 1 {
            return Ok(());
        }
        Ok(self.put_inner(user, season, rows).await?)
    }

    async fn load(
        &self,
        user: &UserId,
        season: &SeasonId,
        rows: &[MemoryTracker],
    ) -> PortResult<()> {
        Ok(self.load_at(user, season, rows, Utc::now()).await?)
    }

    async fn remove(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> PortResult<()> {
        let base = self.schedule_key(user, season);
        for chunk in questions.chunks(STATES_CHUNK) {
            // A question with no number has no card to remove.
            let wire: Vec<String> = self.wire_find(chunk).await?.into_iter().flatten().collect();
            if wire.is_empty() {
                continue;
            }
            let mut inv = self.scripts.remove.key(&base);
            inv.arg(wire);
            let _: i64 = self
                .conn
                .script(self.cfg.call_timeout, &inv)
                .await
                .map_err(PortError::from)?;
        }
        Ok(())
    }

    async fn clear_user(&self, user: &UserId, season: &SeasonId) -> PortResult<()> {
        let inv = self.scripts.clear.key(self.schedule_key(user, season));
        let _: i64 = self
            .conn
            .script(self.cfg.call_timeout, &inv)
            .await
            .map_err(PortError::from)?;
        Ok(())
    }

    async fn clear_season(&self, season: &SeasonId) -> PortResult<u64> {
        Ok(self.clear_season_inner(season).await?)
    }

    async fn user_stats(
        &self,
        user: &UserId,
        season: &SeasonId,
        now: DateTime<Utc>,
    ) -> PortResult<Option<UserCacheStats>> {
        let mut inv = self.scripts.user_stats.key(self.schedule_key(user, season));
        inv.arg(micros(now));
        let r: Option<(u64, u64)> = self
            .conn
            .script(self.cfg.call_timeout, &inv)
            .await
            .map_err(PortError::from)?;
        Ok(r.map(|(total, due_now)| UserCacheStats { total, due_now }))
    }

    async fn stats(&self) -> PortResult<CacheStats> {
        Ok(self.stats_inner().await?)
    }

    async fn sample_schedules(
        &self,
        season: &SeasonId,
        n: usize,
        seed: u64,
    ) -> PortResult<Vec<UserId>> {
        let prefix = self.prefix();
        let pattern = format!(
            "{}*}}:{}:m",
            glob_escape(&prefix),
            glob_escape(season.as_str())
        );
        let keys = self.conn.scan_all(self.cfg.bulk_timeout, &pattern).await?;
        let mut users: Vec<(u64, UserId)> = keys
            .iter()
            .filter_map(|k| match parse_key(&prefix, k) {
                Some((user, s, "m")) if s == season.as_str() => UserId::new(user).ok(),
                _ => None,
            })
            .map(|u| (memora_core::srs::stable_hash(&[u.as_str()], seed), u))
            .collect();
        users.sort();
        users.dedup();
        Ok(users.into_iter().take(n).map(|(_, u)| u).collect())
    }

    async fn sample_entries(
        &self,
        user: &UserId,
        season: &SeasonId,
        n: usize,
    ) -> PortResult<Vec<MemoryTracker>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(self.sample_cards(user, season, n).await?)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(self.conn.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{GENERATIONS, base36, parse_key};

    #[test]
    fn generations_are_eight_base36_digits() {
        assert_eq!(base36(0), "00000000");
        assert_eq!(base36(35), "0000000z");
        assert_eq!(base36(36), "00000010");
        assert_eq!(base36(GENERATIONS - 1), "zzzzzzzz");
        assert_eq!(GENERATIONS, 36u64.pow(8));
    }

    #[test]
    fn parses_keys() {
        let p = "ns:srs:{";
        assert_eq!(
            parse_key(p, "ns:srs:{u:1}:SEASON-2026:s:math"),
            Some(("u:1", "SEASON-2026", "s:math"))
        );
        assert_eq!(
            parse_key(p, "ns:srs:{u}:SEASON-2026"),
            Some(("u", "SEASON-2026", ""))
        );
        assert_eq!(parse_key(p, "other"), None);
    }
}
