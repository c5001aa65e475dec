//! [`RedisServedLedger`]: the fast served-set ledger
//! ([`memora_core::ports::ServedLedger`]) on Redis hashes.
//!
//! One hash per (user, season): `<ns>served:{<user>}:<season>`. The
//! `{<user>}` hash tag is the one the schedule keys use, so a learner's
//! ledger and schedule share a Cluster slot; every call touches this one key
//! only (works unchanged on Redis Cluster).
//!
//! | field | value |
//! |---|---|
//! | item key (`q:<question>`, `l:<lesson>`, opaque to the adapter) | encoded entry, below |
//!
//! Entry encoding, version 1, fields separated by U+001F (`␟`; ids cannot
//! contain control characters, so nothing needs escaping):
//!
//! `1␟served_at␟answerable_until␟retain_until␟answered␟xp_day[␟review_id␟job_id␟xp␟answered_at]`
//!
//! Times are Unix microseconds (exact for the core's truncated timestamps,
//! and below 2^53, so Lua compares them exactly as numbers); `answered` is
//! `0`/`1`; `xp_day` is days since 1970-01-01, empty for none; the four
//! receipt fields are present together or absent. The three times and the
//! flag come first so the scripts split an entry with one pattern into a
//! head (kept by `commit` and `release`) and a tail (`xp_day` + receipt,
//! kept by `record_served`); `served_at` is compared as text, which is exact
//! because both sides are the same canonical decimal.
//!
//! Writes are Lua scripts (atomic, one round trip):
//! * `record_served` rewrites each entry, carrying the old tail over unless
//!   the old entry was past `retain_until` at the new `served_at`; once the
//!   hash holds more than `4 × SWEEP_SAMPLE` (64) entries, it also deletes
//!   any of `SWEEP_SAMPLE` randomly sampled fields (`HRANDFIELD`) that are
//!   past `retain_until`, so the hash of a learner who never pauses long
//!   enough for the key to expire stays bounded by the retention window
//!   (or 64 entries). A smaller hash is not swept: its expired entries
//!   read as absent and leave with the key, and sampling them cost a sixth
//!   of Redis' work per review (`docs/PERFORMANCE.md`).
//!   The key's TTL is raised (never lowered) to `retain_until - served_at`
//!   plus a minute, so the key outlives its latest `retain_until`; it is
//!   relative to Redis's clock, so skew between the app servers and Redis
//!   does not shorten it.
//! * `commit` checks every claim, then writes them all, or writes nothing.
//! * `release` rewrites only entries whose receipt has the claim's review id.
//!
//! `lookup` is one `HMGET`; entries past `retain_until` at `now` read as
//! absent. `purge_expired` does nothing (keys expire by themselves).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memora_core::PortResult;
use memora_core::ids::{JobId, QuestionId, ReviewId, SeasonId, UserId};
use memora_core::ports::{AnswerReceipt, ServedLedger, Serving, ServingClaim};
use memora_core::services::integrity::QUESTION_KEY_PREFIX;
use redis::Script;

use crate::card_text::push_int;
use crate::codec::{SEP, micros, time_from_micros};
use crate::config::RedisConfig;
use crate::conn::RedisConn;
use crate::error::{Error, Result};
use crate::lua::MULTI_LUA;
use crate::numbers::Numbering;

/// Lua helpers shared by the ledger's scripts and by the fast path's
/// ([`crate::fast`]), so both write entries the same way:
/// * `parse(v)` splits an entry into head (`1␟served␟answerable␟retain`),
///   served, retain, answered, tail;
/// * `record_served(k, served, answerable, retain, ttl_ms, sample, items)`
///   is `record_served` (sweep of sampled expired fields, rewrite of each
///   item, TTL raised, never lowered); `items` is a Lua list;
/// * `check_claims(k, args, first, last)` checks the claim triples
///   `(item, served_at µs, new tail)` in `args[first..=last]` and returns
///   the heads to keep, or `nil` if any claim fails (nothing written);
/// * `write_claims(k, heads, args, first, last)` writes them.
pub(crate) const LEDGER_LUA: &str = r"
local function parse(v)
  return string.match(v, '^(1\031([^\031]*)\031[^\031]*\031([^\031]*))\031([01])(\031.*)$')
end
local function record_served(k, served_txt, answerable_txt, retain_txt, ttl_ms, sample, items)
  local served = tonumber(served_txt)
  local n = tonumber(sample)
  if n > 0 and redis.call('HLEN', k) > 4 * n then
    local fs = redis.call('HRANDFIELD', k, n)
    local vs = mcall('HMGET', k, fs)
    local gone = {}
    for j, f in ipairs(fs) do
      local v = vs[j]
      if v then
        local h, _, r = parse(v)
        local rn = tonumber(r or '')
        if h and rn and rn < served then gone[#gone + 1] = f end
      end
    end
    mcall('HDEL', k, gone)
  end
  local head = '1\031' .. served_txt .. '\031' .. answerable_txt .. '\031' .. retain_txt .. '\0310'
  local olds = mcall('HMGET', k, items)
  local kv = {}
  for j, item in ipairs(items) do
    local tail = '\031'
    local old = olds[j]
    if old then
      local h, _, r, _, t = parse(old)
      local rn = tonumber(r or '')
      if h and rn and rn >= served then tail = t end
    end
    kv[#kv + 1] = item
    kv[#kv + 1] = head .. tail
  end
  mcall('HSET', k, kv)
  local ttl = tonumber(ttl_ms)
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
local function check_claims(k, args, first, last)
  local fs = {}
  for i = first, last, 3 do fs[#fs + 1] = args[i] end
  local vs = mcall('HMGET', k, fs)
  local heads = {}
  local j = 0
  for i = first, last, 3 do
    j = j + 1
    local v = vs[j]
    if not v then return nil end
    local h, s, _, a = parse(v)
    if (not h) or s ~= args[i + 1] or a ~= '0' then return nil end
    heads[i] = h
  end
  return heads
end
local function write_claims(k, heads, args, first, last)
  local kv = {}
  for i = first, last, 3 do
    kv[#kv + 1] = args[i]
    kv[#kv + 1] = heads[i] .. '\0311' .. args[i + 2]
  end
  mcall('HSET', k, kv)
end
";

/// KEYS[1] = ledger; ARGV = served_at, answerable_until, retain_until (µs),
/// ttl_ms, sample size, items*.
const RECORD: &str = r"
local items = {}
for i = 6, #ARGV do items[#items + 1] = ARGV[i] end
record_served(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], items)
return 1
";

/// KEYS[1] = ledger; ARGV = (item, served_at µs, new tail)*. Returns 1 if
/// every claim matched and all were written, else 0 and nothing written.
const COMMIT: &str = r"
local heads = check_claims(KEYS[1], ARGV, 1, #ARGV)
if not heads then return 0 end
write_claims(KEYS[1], heads, ARGV, 1, #ARGV)
return 1
";

/// KEYS[1] = ledger; ARGV = (item, review id, previous xp_day)*.
const RELEASE: &str = r"
local k = KEYS[1]
for i = 1, #ARGV, 3 do
  local v = redis.call('HGET', k, ARGV[i])
  if v then
    local h, _, _, _, t = parse(v)
    if h then
      local rid = string.match(t, '^\031[^\031]*\031([^\031]*)\031')
      if rid == ARGV[i + 1] then
        redis.call('HSET', k, ARGV[i], h .. '\0310\031' .. ARGV[i + 2])
      end
    end
  end
end
return 1
";

/// Fields sampled for expired entries on each `record_served` of a ledger
/// holding more than four times as many entries.
pub(crate) const SWEEP_SAMPLE: u32 = 16;
/// Added to every TTL: the key outlives the latest `retain_until` even if
/// Redis's clock runs a little ahead of the app servers'.
const TTL_SLACK_MS: i64 = 60_000;
/// Longest TTL set (about 100 years): far-future times cannot overflow
/// Redis's expiry arithmetic.
const MAX_TTL_MS: i64 = 100 * 366 * 86_400_000;

const EPOCH_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

fn day_code(d: Option<NaiveDate>) -> String {
    d.map(|d| (d - EPOCH_DAY).num_days().to_string())
        .unwrap_or_default()
}

fn day_of(f: &str) -> Result<Option<NaiveDate>> {
    if f.is_empty() {
        return Ok(None);
    }
    let n: i64 = num(f, "xp_day")?;
    EPOCH_DAY
        .checked_add_signed(chrono::Duration::days(n))
        .map(Some)
        .ok_or_else(|| Error::Decode(format!("xp_day {n}")))
}

fn num<T: std::str::FromStr>(f: &str, what: &str) -> Result<T> {
    f.parse()
        .map_err(|_| Error::Decode(format!("bad {what}: {f:?}")))
}

fn time(f: &str, what: &str) -> Result<DateTime<Utc>> {
    time_from_micros(num(f, what)?)
}

/// TTL (ms) `record_served` gives the ledger key: `retain_until -
/// served_at` plus a minute of slack, bounded.
pub(crate) fn ledger_ttl_ms(served_at: DateTime<Utc>, retain_until: DateTime<Utc>) -> i64 {
    (retain_until - served_at)
        .num_milliseconds()
        .clamp(0, MAX_TTL_MS)
        + TTL_SLACK_MS
}

/// Decodes `HMGET` answers as `lookup` does: entries past `retain_until`
/// at `now` read as absent.
pub(crate) fn decode_lookup(
    raw: Vec<Option<String>>,
    now: DateTime<Utc>,
) -> Result<Vec<Option<Serving>>> {
    raw.into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(v) => decode(&v).map(|e| (e.retain_until >= now).then_some(e)),
        })
        .collect()
}

/// The tail `commit` writes after the answered flag: `␟xp_day␟receipt`.
pub(crate) fn committed_tail(c: &ServingClaim) -> String {
    // Pushed piece by piece, as `card_text` encodes states (one per answer).
    let r = &c.receipt;
    let mut out = String::with_capacity(96);
    out.push(SEP);
    if let Some(d) = c.xp_day {
        push_int(&mut out, (d - EPOCH_DAY).num_days());
    }
    out.push(SEP);
    out.push_str(r.review_id.as_str());
    out.push(SEP);
    out.push_str(r.job_id.as_str());
    out.push(SEP);
    push_int(&mut out, r.xp);
    out.push(SEP);
    push_int(&mut out, micros(r.answered_at));
    out
}

/// Decodes one stored entry.
fn decode(raw: &str) -> Result<Serving> {
    let f: Vec<&str> = raw.split(SEP).collect();
    if f[0] != "1" || (f.len() != 6 && f.len() != 10) {
        return Err(Error::Decode(format!("unknown served encoding {raw:?}")));
    }
    let answered = match f[4] {
        "0" => false,
        "1" => true,
        o => return Err(Error::Decode(format!("answered flag {o:?}"))),
    };
    let bad = |e: memora_core::CoreError| Error::Decode(e.to_string());
    let last_receipt = if f.len() == 10 {
        Some(AnswerReceipt {
            review_id: ReviewId::new(f[6]).map_err(bad)?,
            job_id: JobId::new(f[7]).map_err(bad)?,
            xp: num(f[8], "xp")?,
            answered_at: time(f[9], "answered_at")?,
        })
    } else {
        None
    };
    Ok(Serving {
        served_at: time(f[1], "served_at")?,
        answerable_until: time(f[2], "answerable_until")?,
        retain_until: time(f[3], "retain_until")?,
        answered,
        last_receipt,
        xp_day: day_of(f[5])?,
    })
}

struct Scripts {
    record: Script,
    commit: Script,
    release: Script,
}

/// The [`ServedLedger`] on Redis or Redis Cluster. Clones share the
/// connection.
#[derive(Clone)]
pub struct RedisServedLedger {
    conn: RedisConn,
    cfg: Arc<RedisConfig>,
    scripts: Arc<Scripts>,
    /// With numbered schedules: question items under their numbers.
    numbers: Option<Numbering>,
}

/// The field of a question item (`q:<id>`) whose question has a number, in
/// a ledger beside numbered schedules: `q{<number>` (no id contains `{`,
/// so it never meets an item the core names).
pub(crate) const NUMBERED_ITEM_PREFIX: &str = "q{";

impl std::fmt::Debug for RedisServedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServedLedger")
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl RedisServedLedger {
    /// Connects with `config`.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = RedisConn::connect(&config).await?;
        Ok(Self::with_connection(conn, config))
    }

    /// Uses an existing connection (shared with the other adapters).
    pub fn with_connection(conn: RedisConn, config: RedisConfig) -> Self {
        let w = |body: &str| Script::new(&format!("{MULTI_LUA}\n{LEDGER_LUA}\n{body}"));
        RedisServedLedger {
            conn,
            cfg: Arc::new(config),
            scripts: Arc::new(Scripts {
                record: w(RECORD),
                commit: w(COMMIT),
                release: w(RELEASE),
            }),
            numbers: None,
        }
    }

    /// Names question items by their numbers, as numbered schedules
    /// ([`crate::RedisDueCache::with_numbering`]) and the fast path over
    /// them do; must match the schedules' setting.
    pub fn with_numbering(mut self, numbering: Numbering) -> Self {
        self.numbers = Some(numbering);
        self
    }

    /// The hash fields of `items`: a question item (`q:<id>`) as
    /// `q{<number>` when the ledger is numbered and the question has a
    /// number (`assign`: numbering it if not, for items being served);
    /// every other item as it is.
    pub(crate) async fn fields<'i>(
        &self,
        items: impl ExactSizeIterator<Item = &'i str> + Clone,
        assign: bool,
    ) -> Result<Vec<String>> {
        let Some(numbers) = &self.numbers else {
            return Ok(items.map(str::to_owned).collect());
        };
        let questions: Vec<Option<QuestionId>> = items
            .clone()
            .map(|i| {
                i.strip_prefix(QUESTION_KEY_PREFIX)
                    .and_then(|q| QuestionId::parse(q).ok())
            })
            .collect();
        let asked: Vec<QuestionId> = questions.iter().flatten().cloned().collect();
        if asked.is_empty() {
            return Ok(items.map(str::to_owned).collect());
        }
        let found: Vec<Option<u64>> = if assign {
            numbers
                .assign(asked.iter())
                .await?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            numbers.find(&asked).await?
        };
        let mut found = found.into_iter();
        Ok(items
            .zip(questions)
            .map(|(item, q)| match q.and_then(|_| found.next().flatten()) {
                Some(n) => format!("{NUMBERED_ITEM_PREFIX}{n}"),
                None => item.to_owned(),
            })
            .collect())
    }

    /// The item prefix a numbered ledger's fields of the questions of
    /// `prefix` take (the fast path's served items are built in Lua).
    pub(crate) fn field_prefix<'p>(&self, prefix: &'p str) -> Result<&'p str> {
        match &self.numbers {
            None => Ok(prefix),
            Some(_) if prefix == QUESTION_KEY_PREFIX => Ok(NUMBERED_ITEM_PREFIX),
            Some(_) => Err(Error::Config(format!(
                "numbered schedules serve question items ({QUESTION_KEY_PREFIX:?}), not {prefix:?}"
            ))),
        }
    }

    /// The ledger key of (`user`, `season`): `<ns>served:{<user>}:<season>`.
    pub fn ledger_key(&self, user: &UserId, season: &SeasonId) -> String {
        format!(
            "{}served:{{{}}}:{}",
            self.cfg.namespace,
            user.as_str(),
            season.as_str()
        )
    }

    async fn lookup_inner(
        &self,
        key: &str,
        items: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Serving>>> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key).arg(items);
        let raw: Vec<Option<String>> = self.conn.query(self.cfg.call_timeout, &cmd).await?;
        if raw.len() != items.len() {
            return Err(Error::Decode(format!(
                "HMGET of {} fields returned {}",
                items.len(),
                raw.len()
            )));
        }
        decode_lookup(raw, now)
    }
}

#[async_trait]
impl ServedLedger for RedisServedLedger {
    async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        served_at: DateTime<Utc>,
        answerable_until: DateTime<Utc>,
        retain_until: DateTime<Utc>,
    ) -> PortResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let key = self.ledger_key(user, season);
        let fields = self.fields(items.iter().map(String::as_str), true).await?;
        let ttl_ms = ledger_ttl_ms(served_at, retain_until);
        let mut inv = self.scripts.record.key(&key);
        inv.arg(micros(served_at))
            .arg(micros(answerable_until))
            .arg(micros(retain_until))
            .arg(ttl_ms)
            .arg(SWEEP_SAMPLE)
            .arg(fields);
        let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(())
    }

    async fn lookup(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> PortResult<Vec<Option<Serving>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.ledger_key(user, season);
        let fields = self.fields(items.iter().map(String::as_str), false).await?;
        Ok(self.lookup_inner(&key, &fields, now).await?)
    }

    async fn commit(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<bool> {
        if claims.is_empty() {
            // Vacuously all open, as in the reference adapter.
            return Ok(true);
        }
        let key = self.ledger_key(user, season);
        let fields = self
            .fields(claims.iter().map(|c| c.item.as_str()), false)
            .await?;
        let mut inv = self.scripts.commit.key(&key);
        for (c, field) in claims.iter().zip(&fields) {
            inv.arg(field)
                .arg(micros(c.served_at))
                .arg(committed_tail(c));
        }
        let ok: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(ok == 1)
    }

    async fn release(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<()> {
        if claims.is_empty() {
            return Ok(());
        }
        let key = self.ledger_key(user, season);
        let fields = self
            .fields(claims.iter().map(|c| c.item.as_str()), false)
            .await?;
        let mut inv = self.scripts.release.key(&key);
        for (c, field) in claims.iter().zip(&fields) {
            inv.arg(field)
                .arg(c.receipt.review_id.as_str())
                .arg(day_code(c.prev_xp_day));
        }
        let _: i64 = self.conn.script(self.cfg.call_timeout, &inv).await?;
        Ok(())
    }

    async fn purge_expired(&self, _now: DateTime<Utc>) -> PortResult<u64> {
        // Keys expire by themselves (TTL) and record_served sweeps samples.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(us: i64) -> DateTime<Utc> {
        Utc.timestamp_micros(us).single().expect("time")
    }

    #[test]
    fn entries_round_trip_and_match_the_script_layout() {
        let claim = ServingClaim {
            item: "q:a".into(),
            served_at: t(1_772_366_400_123_456),
            receipt: AnswerReceipt {
                review_id: ReviewId::new("r|1,x").expect("rid"),
                job_id: JobId::new("job 1").expect("job"),
                xp: -3,
                answered_at: t(1_772_366_401_000_001),
            },
            xp_day: NaiveDate::from_ymd_opt(2026, 3, 1),
            prev_xp_day: None,
        };
        // What the scripts write: head, answered flag, tail.
        let head = format!(
            "1{SEP}{}{SEP}{}{SEP}{}",
            1_772_366_400_123_456i64, 1_772_366_400_723_456i64, 1_772_452_800_123_456i64
        );
        let fresh = decode(&format!("{head}{SEP}0{SEP}")).expect("fresh");
        assert!(!fresh.answered);
        assert_eq!(fresh.last_receipt, None);
        assert_eq!(fresh.xp_day, None);
        assert_eq!(fresh.served_at, claim.served_at);
        let done = decode(&format!("{head}{SEP}1{}", committed_tail(&claim))).expect("done");
        assert!(done.answered);
        assert_eq!(done.last_receipt, Some(claim.receipt.clone()));
        assert_eq!(done.xp_day, claim.xp_day);
        assert_eq!(
            day_of(&day_code(NaiveDate::from_ymd_opt(1969, 12, 31))).expect("day"),
            NaiveDate::from_ymd_opt(1969, 12, 31)
        );
        assert!(decode("2\u{1f}x").is_err());
        assert!(decode(&format!("{head}{SEP}2{SEP}")).is_err());
    }

    /// The tail is byte for byte what `format!` wrote before the pieces
    /// were pushed (entries written by either version are read by both).
    #[test]
    fn the_tail_is_the_formatted_one() {
        let days = [
            None,
            NaiveDate::from_ymd_opt(1969, 12, 31),
            NaiveDate::from_ymd_opt(1970, 1, 1),
            NaiveDate::from_ymd_opt(2026, 12, 1),
        ];
        for (i, xp_day) in days.into_iter().enumerate() {
            for xp in [i64::MIN, -3, 0, 7, 1_000_000, i64::MAX] {
                let c = ServingClaim {
                    item: "q:a".into(),
                    served_at: t(1_772_366_400_123_456),
                    receipt: AnswerReceipt {
                        review_id: ReviewId::new(format!("r|{i}")).expect("rid"),
                        job_id: JobId::new("job 1").expect("job"),
                        xp,
                        answered_at: t(1_772_366_401_000_001 - i as i64 * 86_400_000_000_000),
                    },
                    xp_day,
                    prev_xp_day: None,
                };
                let r = &c.receipt;
                let formatted = format!(
                    "{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}",
                    day_code(c.xp_day),
                    r.review_id.as_str(),
                    r.job_id.as_str(),
                    r.xp,
                    micros(r.answered_at)
                );
                assert_eq!(committed_tail(&c), formatted);
            }
        }
    }
}
