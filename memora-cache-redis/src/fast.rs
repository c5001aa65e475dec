//! [`RedisFastPath`]: the review fast path
//! ([`memora_core::ports::ReviewFastPath`]) in a fixed number of Redis round
//! trips, with exactly the semantics of the adapters it stands for
//! ([`RedisDueCache`], [`RedisServedLedger`], [`RedisQueue`],
//! [`RedisLeaderboard`]).
//!
//! It owns no keys and no encoding of its own: its scripts are assembled
//! from the Lua helpers those adapters' own scripts are built from
//! (`due_read`, `put_rows` + `expire_all`, `record_served`,
//! `check_claims` / `write_claims`, `enqueue`, `board_add`), so an entry
//! written here is byte for byte the entry the general path would write, and
//! the persistence worker reads the jobs it enqueues unchanged.
//!
//! Round trips (warm: scripts loaded; a script's first call on a server
//! costs two more, `SCRIPT LOAD` and the retried `EVALSHA`):
//!
//! | call | single Redis | Redis Cluster |
//! |---|---|---|
//! | `due_and_serve` | 1 script | 1 script (user slot) |
//! | `prepare_submit` | 1 pipeline | 1 pipeline (user slot) |
//! | `commit_submit` | 1 script | 3, + board credits |
//!
//! * `due_and_serve`: one script on the user's slot (schedule keys and
//!   ledger share the `{<user>}` tag): the `due` read and, if the schedule
//!   is present and returned items, `record_served` of
//!   `item_prefix + question` for each of them.
//! * `prepare_submit`: one pipeline on the user's slot — `HMGET` of the
//!   ledger (entries past `retain_until` at `now` read as absent), `HMGET`
//!   of the cached rows, `HGET` of the marker's `hz`. The schedule counts as
//!   absent without a marker or with `now` past its horizon, as `due` says.
//! * `commit_submit` on a single Redis: one script over the ledger, the
//!   schedule, the job stream and status key and every board credited
//!   (several hash tags: fine on one server, impossible on a Cluster). It
//!   checks every claim first and returns "lost" having written nothing;
//!   then it enqueues (so a failing enqueue also leaves nothing written),
//!   writes the claims, and — each in a Lua `pcall`, since the answers are
//!   durable from the enqueue on — writes the rows, credits the boards and
//!   counts the due items.
//! * `commit_submit` on a Cluster, where a script cannot span slots: (1)
//!   the ledger's `commit` script on the user's slot; (2) the queue's
//!   `enqueue` script on the queue's slot — if it fails, the claims are
//!   released and the error returned; (3) one script on the user's slot
//!   writing the rows and counting the due items, concurrently with the
//!   board credits (one script per board, 4 or 8, concurrent). Failures of
//!   (3) are swallowed: the job is enqueued, so the commit stands.
//!
//! Durability is the queue's: its `enqueue` is one `XADD` + status `SET`
//! script with nothing after it (no `WAIT`), and the fast path does exactly
//! that; the job is as durable as the server's AOF/replication make it.
//! `mastery` is never kept here (`None`: the core asks the store).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::PortResult;
use memora_core::domain::{MasteryCounts, MemoryTracker};
use memora_core::ids::{QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::{
    DueSlice, FastCommit, FastCommitOutcome, JobStatus, LeaderboardCache, PersistenceQueue,
    ReviewFastPath, ServeTerms, ServedLedger, SubmitView,
};
use redis::{FromRedisValue, Script, Value};

use crate::codec::{self, micros, time_from_micros};
use crate::config::Topology;
use crate::conn::RedisConn;
use crate::due::{DUE_READ, EXPIRE_ALL, MASTERY, PUT_ROWS, RedisDueCache, due_slice, push_row};
use crate::error::{Error, Result};
use crate::leaderboard::{BOARD_ADD, RedisLeaderboard};
use crate::queue::{ENQUEUE_FN, RedisQueue, STATUS_TTL_MS, encode_job};
use crate::served::{
    LEDGER_LUA, RedisServedLedger, SWEEP_SAMPLE, committed_tail, decode_lookup, ledger_ttl_ms,
};

/// KEYS = zset to read, marker, ledger; ARGV = now, limit, item prefix,
/// served_at, answerable_until, retain_until (µs), ledger ttl_ms, sample.
const DUE_AND_SERVE: &str = r"
local r = due_read(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if not r then return false end
local ids = r[2]
if #ids > 0 then
  local items = {}
  for i, q in ipairs(ids) do items[i] = ARGV[3] .. q end
  record_served(KEYS[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], items)
end
return r
";

/// Counts the items due at `now` in `set` if the schedule is present
/// (`-1` otherwise).
const COUNT_DUE: &str = r"
local function count_due(set, m, now)
  local r = due_read(set, m, now, 0)
  if not r then return -1 end
  return r[1]
end
";

/// The whole commit on one server.
///
/// KEYS = ledger, schedule base, marker, zset to count, stream, status,
/// then (board, built)*.
/// ARGV = #claim args, #row args, schedule ttl_ms, job payload, status
/// ttl_ms, count (`1`/`0`), now µs, -xp, user, claim triples
/// (item, served_at µs, tail)*, row quintuples*, one ttl_ms per board.
/// Returns `{0}` (lost, nothing written) or `{1, total_due or -1, boards
/// credited (1/0), m0, m1, m2}` (mastery counts, `-1` when not kept).
const COMMIT_SINGLE: &str = r"
local nc, nr = tonumber(ARGV[1]), tonumber(ARGV[2])
local c0 = 10
local r0 = c0 + nc
local t0 = r0 + nr
local heads = check_claims(KEYS[1], ARGV, c0, r0 - 1)
if not heads then return {0} end
enqueue(KEYS[5], KEYS[6], ARGV[4], ARGV[5])
write_claims(KEYS[1], heads, ARGV, c0, r0 - 1)
if nr > 0 then pcall(put_rows, KEYS[2], ARGV[3], ARGV, r0, t0 - 1) end
local credited = 1
for j = 1, (#KEYS - 6) / 2 do
  local ok = pcall(board_add, KEYS[5 + 2 * j], KEYS[6 + 2 * j], ARGV[8], ARGV[t0 + j - 1], ARGV[9])
  if not ok then credited = 0 end
end
local total = -1
if ARGV[6] == '1' then
  local ok, n = pcall(count_due, KEYS[4], KEYS[3], ARGV[7])
  if ok then total = n end
end
local mc = mastery_read(KEYS[3])
return {1, total, credited, mc[1], mc[2], mc[3]}
";

/// Step 3 of the Cluster commit (user slot): rows and count.
///
/// KEYS = schedule base, marker, zset to count; ARGV = schedule ttl_ms,
/// count (`1`/`0`), now µs, row quintuples*. Returns `{total_due or -1,
/// m0, m1, m2}` (mastery counts, `-1` when not kept).
const APPLY_ROWS: &str = r"
if #ARGV > 3 then put_rows(KEYS[1], ARGV[1], ARGV, 4, #ARGV) end
local total = -1
if ARGV[2] == '1' then total = count_due(KEYS[3], KEYS[2], ARGV[3]) end
local mc = mastery_read(KEYS[2])
return {total, mc[1], mc[2], mc[3]}
";

struct Scripts {
    due_and_serve: Script,
    commit_single: Script,
    apply_rows: Script,
}

/// The [`ReviewFastPath`] on Redis or Redis Cluster, over the adapters it
/// stands for (see the module documentation). Clones share the connection.
#[derive(Clone)]
pub struct RedisFastPath {
    due: RedisDueCache,
    ledger: RedisServedLedger,
    queue: RedisQueue,
    board: Option<RedisLeaderboard>,
    conn: RedisConn,
    cluster: bool,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisFastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFastPath")
            .field("cfg", self.due.config())
            .field("leaderboard", &self.board.is_some())
            .finish()
    }
}

impl RedisFastPath {
    /// The fast path over these adapters, which must share one connection
    /// and configuration (as the server builds them: one [`RedisConn`] and
    /// one [`crate::RedisConfig`]). Without a leaderboard, board credits are
    /// not applied (`board_credited` is false), as in the composed path.
    pub fn new(
        due: RedisDueCache,
        ledger: RedisServedLedger,
        queue: RedisQueue,
        board: Option<RedisLeaderboard>,
    ) -> Self {
        let conn = due.connection().clone();
        let cluster = matches!(due.config().topology, Topology::Cluster(_));
        let script = |parts: &[&str]| Script::new(&parts.join("\n"));
        RedisFastPath {
            scripts: Arc::new(Scripts {
                due_and_serve: script(&[DUE_READ, LEDGER_LUA, DUE_AND_SERVE]),
                commit_single: script(&[
                    EXPIRE_ALL,
                    MASTERY,
                    PUT_ROWS,
                    DUE_READ,
                    COUNT_DUE,
                    LEDGER_LUA,
                    ENQUEUE_FN,
                    BOARD_ADD,
                    COMMIT_SINGLE,
                ]),
                apply_rows: script(&[
                    EXPIRE_ALL, MASTERY, PUT_ROWS, DUE_READ, COUNT_DUE, APPLY_ROWS,
                ]),
            }),
            due,
            ledger,
            queue,
            board,
            conn,
            cluster,
        }
    }

    fn call_timeout(&self) -> std::time::Duration {
        self.due.config().call_timeout
    }

    /// (schedule base, marker, zset of `subject` or the master set).
    fn schedule_keys(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
    ) -> (String, String, String) {
        let base = self.due.schedule_key(user, season);
        let set = match subject {
            Some(s) => format!("{base}:s:{}", s.as_str()),
            None => base.clone(),
        };
        (format!("{base}:m"), set, base)
    }

    async fn due_and_serve_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> Result<Option<DueSlice>> {
        let (marker, set, _) = self.schedule_keys(user, season, subject);
        let mut inv = self.scripts.due_and_serve.key(set);
        inv.key(marker)
            .key(self.ledger.ledger_key(user, season))
            .arg(micros(now))
            .arg(limit)
            .arg(&terms.item_prefix)
            .arg(micros(terms.served_at))
            .arg(micros(terms.answerable_until))
            .arg(micros(terms.retain_until))
            .arg(ledger_ttl_ms(terms.served_at, terms.retain_until))
            .arg(SWEEP_SAMPLE);
        due_slice(self.conn.script(self.call_timeout(), &inv).await?)
    }

    async fn prepare_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> Result<SubmitView> {
        let (marker, _, base) = self.schedule_keys(user, season, None);
        let mut p = redis::pipe();
        if !items.is_empty() {
            p.cmd("HMGET")
                .arg(self.ledger.ledger_key(user, season))
                .arg(items);
        }
        if !questions.is_empty() {
            p.cmd("HMGET")
                .arg(format!("{base}:h"))
                .arg(questions.iter().map(|q| q.as_str()).collect::<Vec<_>>());
        }
        p.cmd("HGET").arg(marker).arg("hz");
        let replies: Vec<Value> = self.conn.pipe(self.call_timeout(), &p).await?;
        let mut replies = replies.into_iter();
        let mut next = |what: &str| {
            replies
                .next()
                .ok_or_else(|| Error::Decode(format!("pipeline lacks the {what} reply")))
        };
        let servings = if items.is_empty() {
            Vec::new()
        } else {
            let raw: Vec<Option<String>> = FromRedisValue::from_redis_value(&next("ledger")?)?;
            if raw.len() != items.len() {
                return Err(Error::Decode(format!(
                    "HMGET of {} fields returned {}",
                    items.len(),
                    raw.len()
                )));
            }
            decode_lookup(raw, now)?
        };
        let rows: Vec<Option<String>> = if questions.is_empty() {
            Vec::new()
        } else {
            FromRedisValue::from_redis_value(&next("rows")?)?
        };
        let hz: Option<String> = FromRedisValue::from_redis_value(&next("marker")?)?;
        // Presence as `due` sees it: a marker, and `now` within the horizon.
        let horizon = match hz.as_deref() {
            None => return Ok(absent(servings)),
            Some("") => None,
            Some(h) => {
                let h: i64 = h
                    .parse()
                    .map_err(|_| Error::Decode(format!("horizon {h:?}")))?;
                if micros(now) > h {
                    return Ok(absent(servings));
                }
                Some(time_from_micros(h)?)
            }
        };
        if rows.len() != questions.len() {
            return Err(Error::Decode(format!(
                "HMGET of {} rows returned {}",
                questions.len(),
                rows.len()
            )));
        }
        let states = questions
            .iter()
            .zip(rows)
            .map(|(q, raw)| match raw {
                Some(raw) => codec::decode(user, season, q, &raw).map(Some),
                None => Ok(None),
            })
            .collect::<Result<Vec<Option<MemoryTracker>>>>()?;
        Ok(SubmitView {
            servings,
            states: Some(states),
            horizon,
        })
    }

    /// Board keys and TTLs to credit (empty: nothing to credit).
    fn credits(&self, commit: &FastCommit) -> Vec<(String, String, u64)> {
        match (&self.board, &commit.board) {
            (Some(board), Some(c)) if c.xp != 0 => board.credit_keys(c.subject.as_ref(), c.day),
            _ => Vec::new(),
        }
    }

    async fn commit_single(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> Result<FastCommitOutcome> {
        let payload = encode_job(&commit.job)?;
        let count_subject = commit.count_due.as_ref().and_then(|s| s.as_ref());
        let (marker, count_set, base) = self.schedule_keys(user, season, count_subject);
        let (stream, status) = self.queue.enqueue_keys(&commit.job.id);
        let credits = self.credits(commit);
        let mut inv = self
            .scripts
            .commit_single
            .key(self.ledger.ledger_key(user, season));
        inv.key(&base)
            .key(marker)
            .key(count_set)
            .key(stream)
            .key(status);
        for (board, built, _) in &credits {
            inv.key(board).key(built);
        }
        let neg_xp = commit.board.as_ref().map_or(0, |c| -c.xp);
        inv.arg(commit.claims.len() * 3)
            .arg(commit.rows.len() * 5)
            .arg(self.due.ttl_ms())
            .arg(payload)
            .arg(STATUS_TTL_MS)
            .arg(if commit.count_due.is_some() { "1" } else { "0" })
            .arg(micros(commit.now))
            .arg(neg_xp)
            .arg(user.as_str());
        for c in &commit.claims {
            inv.arg(&c.item)
                .arg(micros(c.served_at))
                .arg(committed_tail(c));
        }
        for r in &commit.rows {
            push_row(&mut inv, r);
        }
        for (_, _, ttl) in &credits {
            inv.arg(*ttl);
        }
        let r: Vec<i64> = self.conn.script(self.call_timeout(), &inv).await?;
        match r.as_slice() {
            [0] => Ok(FastCommitOutcome::Lost),
            [1, total, credited, m0, m1, m2] => Ok(FastCommitOutcome::Committed {
                status: JobStatus::Queued,
                total_due: u64::try_from(*total).ok(),
                mastery: mastery_of(*m0, *m1, *m2),
                board_credited: self.board.is_some() && commit.board.is_some() && *credited == 1,
            }),
            other => Err(Error::Decode(format!("commit script answered {other:?}"))),
        }
    }

    async fn commit_cluster(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> PortResult<FastCommitOutcome> {
        // (1) Claims, on the user's slot.
        if !self.ledger.commit(user, season, &commit.claims).await? {
            return Ok(FastCommitOutcome::Lost);
        }
        // (2) The job, on the queue's slot.
        let status = match self.queue.enqueue(&commit.job).await {
            Ok(s) => s,
            Err(e) => {
                // Not durable: give the servings back.
                let _ = self.ledger.release(user, season, &commit.claims).await;
                return Err(e);
            }
        };
        // (3) Best effort from here on: the answers are durable.
        let rows = self.apply_rows(user, season, commit);
        let board = async {
            match (&self.board, &commit.board) {
                (Some(b), Some(c)) => b
                    .add_xp(user, c.subject.as_ref(), c.day, c.xp)
                    .await
                    .is_ok(),
                _ => false,
            }
        };
        let (applied, board_credited) = futures::join!(rows, board);
        let (total_due, mastery) = applied.unwrap_or((None, None));
        Ok(FastCommitOutcome::Committed {
            status,
            total_due,
            mastery,
            board_credited,
        })
    }

    /// Cluster step (3): rows and count in one script on the user's slot.
    async fn apply_rows(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> Result<(Option<u64>, Option<MasteryCounts>)> {
        if commit.rows.is_empty() && commit.count_due.is_none() {
            return Ok((None, None));
        }
        let count_subject = commit.count_due.as_ref().and_then(|s| s.as_ref());
        let (marker, count_set, base) = self.schedule_keys(user, season, count_subject);
        let mut inv = self.scripts.apply_rows.key(base);
        inv.key(marker)
            .key(count_set)
            .arg(self.due.ttl_ms())
            .arg(if commit.count_due.is_some() { "1" } else { "0" })
            .arg(micros(commit.now));
        for r in &commit.rows {
            push_row(&mut inv, r);
        }
        let r: Vec<i64> = self.conn.script(self.call_timeout(), &inv).await?;
        match r.as_slice() {
            [total, m0, m1, m2] => Ok((u64::try_from(*total).ok(), mastery_of(*m0, *m1, *m2))),
            other => Err(Error::Decode(format!("rows script answered {other:?}"))),
        }
    }
}

/// Mastery counts from a script's answer (`None` when the schedule does not
/// keep them: `-1`).
fn mastery_of(m0: i64, m1: i64, m2: i64) -> Option<MasteryCounts> {
    Some(MasteryCounts {
        new: u64::try_from(m0).ok()?,
        learning: u64::try_from(m1).ok()?,
        mature: u64::try_from(m2).ok()?,
    })
}

/// The view of an absent schedule: no states, no horizon.
fn absent(servings: Vec<Option<memora_core::ports::Serving>>) -> SubmitView {
    SubmitView {
        servings,
        states: None,
        horizon: None,
    }
}

#[async_trait]
impl ReviewFastPath for RedisFastPath {
    async fn due_and_serve(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> PortResult<Option<DueSlice>> {
        Ok(self
            .due_and_serve_inner(user, season, subject, now, limit, terms)
            .await?)
    }

    async fn prepare_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> PortResult<SubmitView> {
        Ok(self
            .prepare_inner(user, season, items, questions, now)
            .await?)
    }

    async fn commit_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> PortResult<FastCommitOutcome> {
        if self.cluster {
            self.commit_cluster(user, season, commit).await
        } else {
            Ok(self.commit_single(user, season, commit).await?)
        }
    }

    fn keeps_mastery(&self) -> bool {
        self.due.keeps_mastery()
    }
}
