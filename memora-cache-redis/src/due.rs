//! [`RedisDueCache`]: the due-schedule cache on sorted sets.
//!
//! Keys of one schedule (`B = <ns>srs:{<user>}:<season>`; the `{<user>}`
//! hash tag puts all of them, for every season, in one Cluster slot):
//!
//! | key | type | content |
//! |---|---|---|
//! | `B` | ZSET | question id → due (Unix µs) |
//! | `B:s:<subject>` | ZSET | the same, for one subject only |
//! | `B:h` | HASH | question id → encoded card ([`crate::codec`]) |
//! | `B:m` | HASH | marker: `v` (layout version), `hz` (horizon end µs or empty), `s:<subject>` per subject set |
//!
//! The marker is the schedule's presence: no marker ⇒ absent (`due` answers
//! `None` and the core rehydrates), even if stray keys remain. Every write
//! runs in one Lua script (atomic, one round trip) and refreshes the TTL of
//! every key of the schedule. Loads write the new schedule under temporary
//! keys with the same hash tag in one pipeline, then swap them in with one
//! script that keeps live entries newer than the loaded ones.
//!
//! Subject filter: per-subject sorted sets make a filtered due query exact
//! and `O(log n + limit)` whatever the other subjects hold; over-fetching
//! from the master set cannot give that guarantee (the earliest `k·limit`
//! items may all belong to other subjects).
//!
//! Horizon mode caches only items due before the marker's `hz`; a query with
//! `now > hz` treats the schedule as absent, so answers stay exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use memora_core::domain::MemoryTracker;
use memora_core::ids::{QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::{CacheStats, DueCache, DueSlice, UserCacheStats};
use memora_core::{PortError, PortResult};
use redis::Script;

use crate::codec::{self, micros};
use crate::config::RedisConfig;
use crate::conn::{RedisConn, glob_escape};
use crate::error::{Error, Result};

/// Lua helper shared by the write scripts: refresh the TTL of every key.
pub(crate) const EXPIRE_ALL: &str = r"
local function expire_all(b, ttl)
  local m = b .. ':m'
  redis.call('PEXPIRE', b, ttl)
  redis.call('PEXPIRE', b .. ':h', ttl)
  redis.call('PEXPIRE', m, ttl)
  local f = redis.call('HKEYS', m)
  for _, k in ipairs(f) do
    if string.sub(k, 1, 2) == 's:' then redis.call('PEXPIRE', b .. ':' .. k, ttl) end
  end
end
";

/// Lua helpers of the mastery counts a full schedule keeps in its marker
/// (`m0`, `m1`, `m2`: cards per bucket, present only while exact — set by
/// a load without horizon, kept by every write, dropped when a write meets
/// a card whose bucket it cannot know). `mbucket(enc)` is the bucket code
/// of an encoded card (`''` none, `nil` unknown).
pub(crate) const MASTERY: &str = r"
local function mbucket(enc)
  return string.match(enc, '\031m(%d?)$')
end
local function mvalid(m)
  return redis.call('HEXISTS', m, 'm0') == 1
end
local function madd(m, code, delta)
  if code ~= '' then redis.call('HINCRBY', m, 'm' .. code, delta) end
end
local function mdrop(m)
  redis.call('HDEL', m, 'm0', 'm1', 'm2')
end
local function mastery_read(m)
  local c = redis.call('HMGET', m, 'm0', 'm1', 'm2')
  if not c[1] then return {-1, -1, -1} end
  return {tonumber(c[1]), tonumber(c[2] or '0'), tonumber(c[3] or '0')}
end
";

/// Lua helper shared by `put` and the fast path's commit ([`crate::fast`]):
/// `put_rows(b, ttl, args, first, last)` writes the row quintuples
/// `(question, encoded, due, last_review, subject)` of `args[first..=last]`
/// into schedule `b` (newer wins, horizon respected, subject sets kept)
/// and refreshes its TTL; `-1` (nothing written) if the schedule is absent.
/// Needs [`EXPIRE_ALL`] and [`MASTERY`].
pub(crate) const PUT_ROWS: &str = r"
local function put_rows(b, ttl, args, first, last)
  local m = b .. ':m'
  if redis.call('EXISTS', m) == 0 then return -1 end
  local hz = tonumber(redis.call('HGET', m, 'hz') or '')
  local h = b .. ':h'
  local written = 0
  local counted = (not hz) and mvalid(m)
  for i = first, last, 5 do
    local q, enc, due, lr, subj = args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]
    local old = redis.call('HGET', h, q)
    local skip = false
    local osub = ''
    if old then
      local olr, os = string.match(old, '^1\031([^\031]*)\031[^\031]*\031([^\031]*)\031')
      osub = os or ''
      local o, n = tonumber(olr), tonumber(lr)
      if o and ((not n) or o > n) then skip = true end
    end
    if not skip then
      if counted then
        local nb = mbucket(enc)
        local ob = ''
        if old then ob = mbucket(old) end
        if nb and ob then
          madd(m, ob, -1)
          madd(m, nb, 1)
        else
          mdrop(m)
          counted = false
        end
      end
      if osub ~= '' and osub ~= subj then redis.call('ZREM', b .. ':s:' .. osub, q) end
      if hz and tonumber(due) > hz then
        redis.call('HDEL', h, q)
        redis.call('ZREM', b, q)
        if subj ~= '' then redis.call('ZREM', b .. ':s:' .. subj, q) end
      else
        redis.call('HSET', h, q, enc)
        redis.call('ZADD', b, due, q)
        if subj ~= '' then
          redis.call('ZADD', b .. ':s:' .. subj, due, q)
          redis.call('HSET', m, 's:' .. subj, 1)
        end
      end
      written = written + 1
    end
  end
  expire_all(b, ttl)
  return written
end
";

/// KEYS[1]=B; ARGV = ttl_ms, then (question, encoded, due, last_review, subject)*.
const PUT: &str = r"
return put_rows(KEYS[1], ARGV[1], ARGV, 2, #ARGV)
";

/// KEYS[1]=B; ARGV = tmp base, ttl_ms, hz, mastery counts of the loaded
/// rows (m0, m1, m2; empty in horizon mode), subjects of the loaded rows*.
const SWAP: &str = r"
local b, t, ttl, hz = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local m = b .. ':m'
local th = t .. ':h'
local counts = nil
if hz == '' and ARGV[4] ~= '' then
  counts = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])}
end
local function cadd(code, delta)
  if counts and code ~= '' then
    local i = tonumber(code) + 1
    counts[i] = counts[i] + delta
  end
end
local subjects = {}
for i = 7, #ARGV do subjects[ARGV[i]] = true end
if redis.call('EXISTS', m) == 1 then
  local cur = redis.call('HGETALL', b .. ':h')
  for i = 1, #cur, 2 do
    local q, old = cur[i], cur[i + 1]
    local new = redis.call('HGET', th, q)
    local nlr = nil
    local present = false
    if new then
      present = true
      nlr = tonumber(string.match(new, '^1\031([^\031]*)\031'))
    else
      local far = redis.call('HGET', t .. ':x', q)
      if far then present = true; nlr = tonumber(far) end
    end
    if present then
      local olr = tonumber(string.match(old, '^1\031([^\031]*)\031'))
      if olr and ((not nlr) or olr > nlr) then
        local due, osub = string.match(old, '^1\031[^\031]*\031([^\031]*)\031([^\031]*)\031')
        if new then
          local nsub = string.match(new, '^1\031[^\031]*\031[^\031]*\031([^\031]*)\031')
          if nsub and nsub ~= '' then redis.call('ZREM', t .. ':s:' .. nsub, q) end
          local nb, ob = mbucket(new), mbucket(old)
          if nb and ob then
            cadd(nb, -1)
            cadd(ob, 1)
          else
            counts = nil
          end
        end
        redis.call('HSET', th, q, old)
        redis.call('ZADD', t, due, q)
        if osub and osub ~= '' then
          redis.call('ZADD', t .. ':s:' .. osub, due, q)
          subjects[osub] = true
        end
      end
    end
  end
  local f = redis.call('HKEYS', m)
  for _, k in ipairs(f) do
    if string.sub(k, 1, 2) == 's:' then redis.call('DEL', b .. ':' .. k) end
  end
end
redis.call('DEL', m, b, b .. ':h', t .. ':x')
if redis.call('EXISTS', t) == 1 then redis.call('RENAME', t, b) end
if redis.call('EXISTS', th) == 1 then redis.call('RENAME', th, b .. ':h') end
redis.call('HSET', m, 'v', 1, 'hz', hz)
if counts then redis.call('HSET', m, 'm0', counts[1], 'm1', counts[2], 'm2', counts[3]) end
for s, _ in pairs(subjects) do
  local k = t .. ':s:' .. s
  if redis.call('EXISTS', k) == 1 then
    redis.call('RENAME', k, b .. ':s:' .. s)
    redis.call('HSET', m, 's:' .. s, 1)
  end
end
expire_all(b, ttl)
return 1
";

/// Lua helper shared by `due` and the fast path ([`crate::fast`]):
/// `due_read(set, marker, now, limit)` is `nil` when the schedule is absent
/// (no marker, or `now` past the horizon), else `{total_due, first ids}`.
pub(crate) const DUE_READ: &str = r"
local function due_read(set, m, now, limit)
  local hz = redis.call('HGET', m, 'hz')
  if not hz then return nil end
  if hz ~= '' and tonumber(now) > tonumber(hz) then return nil end
  local items = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
  return {redis.call('ZCOUNT', set, '-inf', now), items}
end
";

/// KEYS = zset to read, marker; ARGV = now, limit.
const DUE: &str = r"
local r = due_read(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if not r then return false end
return r
";

/// KEYS = B, marker; ARGV = now.
const USER_STATS: &str = r"
local hz = redis.call('HGET', KEYS[2], 'hz')
if not hz then return false end
if hz ~= '' and tonumber(ARGV[1]) > tonumber(hz) then return false end
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])}
";

/// KEYS = hash, marker; ARGV = questions.
const STATES: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
return redis.call('HMGET', KEYS[1], unpack(ARGV))
";

/// KEYS[1]=B; ARGV = questions.
const REMOVE: &str = r"
local b = KEYS[1]
local h = b .. ':h'
local m = b .. ':m'
local n = 0
local counted = redis.call('HGET', m, 'hz') == '' and mvalid(m)
for i = 1, #ARGV do
  local q = ARGV[i]
  local old = redis.call('HGET', h, q)
  if old then
    if counted then
      local ob = mbucket(old)
      if ob then madd(m, ob, -1) else mdrop(m); counted = false end
    end
    local s = string.match(old, '^1\031[^\031]*\031[^\031]*\031([^\031]*)\031')
    if s and s ~= '' then redis.call('ZREM', b .. ':s:' .. s, q) end
    redis.call('HDEL', h, q)
    redis.call('ZREM', b, q)
    n = n + 1
  end
end
return n
";

/// KEYS[1]=B.
const CLEAR: &str = r"
local b = KEYS[1]
local m = b .. ':m'
local f = redis.call('HKEYS', m)
for _, k in ipairs(f) do
  if string.sub(k, 1, 2) == 's:' then redis.call('DEL', b .. ':' .. k) end
end
local n = redis.call('DEL', m)
redis.call('DEL', b, b .. ':h')
return n
";

/// KEYS = B:h, B:m; ARGV = n. Up to n entries (field, value, …) of a
/// present schedule: all of them when it holds no more, else `HRANDFIELD`
/// (Redis ≥ 6.2). `false` if the schedule is absent.
const SAMPLE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local n = tonumber(ARGV[1])
if redis.call('HLEN', KEYS[1]) <= n then return redis.call('HGETALL', KEYS[1]) end
return redis.call('HRANDFIELD', KEYS[1], n, 'WITHVALUES')
";

/// The slice of a `due_read` reply (`None`: the schedule is absent).
pub(crate) fn due_slice(reply: Option<(u64, Vec<String>)>) -> Result<Option<DueSlice>> {
    let Some((total_due, ids)) = reply else {
        return Ok(None);
    };
    let items = ids
        .into_iter()
        .map(|q| QuestionId::parse(&q).map_err(|e| Error::Decode(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(DueSlice { items, total_due }))
}

/// Appends the `put_rows` quintuple of `r` to a script call.
pub(crate) fn push_row(inv: &mut redis::ScriptInvocation<'_>, r: &MemoryTracker) {
    inv.arg(r.key.question.as_str())
        .arg(codec::encode(r))
        .arg(micros(r.state.due))
        .arg(
            r.state
                .last_review
                .map(|t| micros(t).to_string())
                .unwrap_or_default(),
        )
        .arg(r.subject.as_ref().map(|s| s.as_str()).unwrap_or_default());
}

/// Rows per command inside a load pipeline.
const CHUNK: usize = 1000;
/// Questions per `states` script call (Lua `unpack` limit is ~8000).
const STATES_CHUNK: usize = 2000;

static NONCE: AtomicU64 = AtomicU64::new(0);

struct Scripts {
    put: Script,
    swap: Script,
    due: Script,
    user_stats: Script,
    states: Script,
    remove: Script,
    clear: Script,
    sample: Script,
}

/// The [`DueCache`] on Redis or Redis Cluster. Clones share the connection.
#[derive(Clone)]
pub struct RedisDueCache {
    conn: RedisConn,
    cfg: std::sync::Arc<RedisConfig>,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisDueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDueCache")
            .field("cfg", &self.cfg)
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
        let w = |body: &str| Script::new(&format!("{EXPIRE_ALL}\n{body}"));
        RedisDueCache {
            conn,
            cfg: std::sync::Arc::new(config),
            scripts: std::sync::Arc::new(Scripts {
                put: Script::new(&format!("{EXPIRE_ALL}\n{MASTERY}\n{PUT_ROWS}\n{PUT}")),
                swap: w(&format!("{MASTERY}\n{SWAP}")),
                due: Script::new(&format!("{DUE_READ}\n{DUE}")),
                user_stats: Script::new(USER_STATS),
                states: Script::new(STATES),
                remove: Script::new(&format!("{MASTERY}\n{REMOVE}")),
                clear: Script::new(CLEAR),
                sample: Script::new(SAMPLE),
            }),
        }
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
        // Newest row per question (rows may repeat a question).
        let mut latest: HashMap<&str, &MemoryTracker> = HashMap::with_capacity(rows.len());
        for r in rows {
            match latest.get(r.key.question.as_str()) {
                Some(e) if e.state.last_review > r.state.last_review => {}
                _ => {
                    latest.insert(r.key.question.as_str(), r);
                }
            }
        }
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        let tmp = format!("{base}:tmp:{}-{nonce}", std::process::id());
        let tmp_h = format!("{tmp}:h");
        let tmp_x = format!("{tmp}:x");
        let mut master: Vec<(i64, &str)> = Vec::new();
        let mut hash: Vec<(&str, String)> = Vec::new();
        let mut far: Vec<(&str, String)> = Vec::new();
        let mut by_subject: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for (q, r) in &latest {
            let due = micros(r.state.due);
            if hz.is_some_and(|hz| due > hz) {
                let lr = r
                    .state
                    .last_review
                    .map(|t| micros(t).to_string())
                    .unwrap_or_default();
                far.push((q, lr));
                continue;
            }
            master.push((due, q));
            hash.push((q, codec::encode(r)));
            if let Some(s) = &r.subject {
                by_subject.entry(s.as_str()).or_default().push((due, q));
            }
        }
        // Ascending inserts keep skiplist updates cache-friendly.
        master.sort_unstable();
        for items in by_subject.values_mut() {
            items.sort_unstable();
        }
        let mut p = redis::pipe();
        let tmp_keys_ttl = 120_000u64;
        for c in master.chunks(CHUNK) {
            p.cmd("ZADD").arg(&tmp).arg(c).ignore();
        }
        for c in hash.chunks(CHUNK) {
            p.cmd("HSET").arg(&tmp_h).arg(c).ignore();
        }
        for c in far.chunks(CHUNK) {
            p.cmd("HSET").arg(&tmp_x).arg(c).ignore();
        }
        for (s, items) in &by_subject {
            let k = format!("{tmp}:s:{s}");
            for c in items.chunks(CHUNK) {
                p.cmd("ZADD").arg(&k).arg(c).ignore();
            }
            p.cmd("PEXPIRE").arg(&k).arg(tmp_keys_ttl).ignore();
        }
        for k in [&tmp, &tmp_h, &tmp_x] {
            p.cmd("PEXPIRE").arg(k).arg(tmp_keys_ttl).ignore();
        }
        let limit = self.cfg.bulk_timeout;
        let () = self.conn.pipe(limit, &p).await?;
        // Mastery counts of a full schedule (horizon mode keeps none: the
        // cards past the horizon are not there to keep them exact).
        let mut counts = [0u64; 3];
        for r in latest.values() {
            if let Some(b) = r.state.mastery() {
                if let Some(c) = usize::try_from(b.code())
                    .ok()
                    .and_then(|i| counts.get_mut(i))
                {
                    *c += 1;
                }
            }
        }
        let mut inv = self.scripts.swap.key(&base);
        inv.arg(&tmp)
            .arg(self.ttl_ms())
            .arg(hz.map(|h| h.to_string()).unwrap_or_default());
        for c in counts {
            inv.arg(if hz.is_some() {
                String::new()
            } else {
                c.to_string()
            });
        }
        for s in by_subject.keys() {
            inv.arg(*s);
        }
        let _: i64 = self.conn.script(limit, &inv).await?;
        Ok(())
    }

    async fn due_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Option<DueSlice>> {
        let base = self.schedule_key(user, season);
        let set = match subject {
            Some(s) => format!("{base}:s:{}", s.as_str()),
            None => base.clone(),
        };
        let mut inv = self.scripts.due.key(&set);
        inv.key(format!("{base}:m")).arg(micros(now)).arg(limit);
        due_slice(self.conn.script(self.cfg.call_timeout, &inv).await?)
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
            let mut inv = self.scripts.states.key(format!("{base}:h"));
            inv.key(format!("{base}:m"));
            for q in chunk {
                inv.arg(q.as_str());
            }
            let r: Option<Vec<Option<String>>> =
                self.conn.script(self.cfg.call_timeout, &inv).await?;
            match r {
                None => return Ok(vec![None; questions.len()]),
                Some(vals) => {
                    for (q, v) in chunk.iter().zip(vals) {
                        out.push(match v {
                            Some(raw) => Some(codec::decode(user, season, q, &raw)?),
                            None => None,
                        });
                    }
                }
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
            let mut inv = self.scripts.put.key(&base);
            inv.arg(self.ttl_ms());
            for r in chunk {
                push_row(&mut inv, r);
            }
            let n: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
            if n < 0 {
                break; // absent schedule: nothing to update
            }
        }
        Ok(())
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
        let base = self.schedule_key(user, season);
        let subjects: Vec<String> = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("HKEYS").arg(format!("{base}:m")),
            )
            .await?;
        let mut keys = vec![base.clone(), format!("{base}:h"), format!("{base}:m")];
        keys.extend(
            subjects
                .iter()
                .filter_map(|f| f.strip_prefix("s:"))
                .map(|s| format!("{base}:s:{s}")),
        );
        let mut total = 0;
        for k in keys {
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

    /// Remaining TTL (ms) of every key of a schedule, keyed by suffix
    /// (`""`, `"h"`, `"m"`, `"s:<subject>"`); for tests and diagnostics.
    pub async fn schedule_ttls(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> Result<BTreeMap<String, i64>> {
        let base = self.schedule_key(user, season);
        let fields: Vec<String> = self
            .conn
            .query(
                self.cfg.call_timeout,
                redis::cmd("HKEYS").arg(format!("{base}:m")),
            )
            .await?;
        let mut suffixes: BTreeSet<String> = ["".to_owned(), "h".to_owned(), "m".to_owned()].into();
        suffixes.extend(fields.into_iter().filter(|f| f.starts_with("s:")));
        let mut out = BTreeMap::new();
        for s in suffixes {
            let k = if s.is_empty() {
                base.clone()
            } else {
                format!("{base}:{s}")
            };
            let t: i64 = self
                .conn
                .query(self.cfg.call_timeout, redis::cmd("PTTL").arg(&k))
                .await?;
            out.insert(s, t);
        }
        Ok(out)
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
            let mut inv = self.scripts.remove.key(&base);
            for q in chunk {
                inv.arg(q.as_str());
            }
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
        let base = self.schedule_key(user, season);
        let mut inv = self.scripts.user_stats.key(&base);
        inv.key(format!("{base}:m")).arg(micros(now));
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
        let base = self.schedule_key(user, season);
        let mut inv = self.scripts.sample.key(format!("{base}:h"));
        inv.key(format!("{base}:m")).arg(n);
        let r: Option<Vec<String>> = self
            .conn
            .script(self.cfg.bulk_timeout, &inv)
            .await
            .map_err(PortError::from)?;
        let flat = r.unwrap_or_default();
        let mut out = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let q = QuestionId::parse(&pair[0]).map_err(|e| Error::Decode(e.to_string()))?;
            out.push(codec::decode(user, season, &q, &pair[1])?);
        }
        Ok(out)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(self.conn.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_key;

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
