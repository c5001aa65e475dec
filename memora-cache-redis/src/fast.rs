//! [`RedisFastPath`]: the review fast path
//! ([`memora_core::ports::ReviewFastPath`]) in a fixed number of Redis round
//! trips, with exactly the semantics of the adapters it stands for
//! ([`RedisDueCache`], [`RedisServedLedger`], [`RedisQueue`],
//! [`RedisLeaderboard`]).
//!
//! It owns no keys and no encoding of its own: its scripts are assembled
//! from the Lua helpers those adapters' own scripts are built from
//! (`due_read`, `put_rows`, `read_cards`, `record_served`,
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
//! | `prepare_submit` | 1 script | 1 script (user slot) |
//! | `commit_submit` | 1 script | 3, + board credits |
//!
//! * `due_and_serve`: one script on the user's slot (schedule keys and
//!   ledger share the `{<user>}` tag): the `due` read and, if the schedule
//!   is present and returned items, `record_served` of
//!   `item_prefix + question` for each of them.
//! * `prepare_submit`: one script on the user's slot — `HMGET` of the
//!   ledger (entries past `retain_until` at `now` read as absent), the
//!   schedule's `hz` and the cached rows (`read_cards`). The schedule
//!   counts as absent without a marker or with `now` past its horizon, as
//!   `due` says.
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
use memora_core::domain::MasteryCounts;
use memora_core::ids::{QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::{
    DueSlice, FastCommit, FastCommitOutcome, JobStatus, LeaderboardCache, PersistenceQueue,
    ReviewFastPath, ServeTerms, ServedLedger, SubmitView,
};
use redis::{Script, Value};

use crate::codec::{micros, time_from_micros};
use crate::config::Topology;
use crate::conn::RedisConn;
use crate::due::{RedisDueCache, SCHEDULE_LUA, SCHEDULE_WRITE_LUA, push_row};
use crate::error::{Error, Result};
use crate::leaderboard::{BOARD_ADD, RedisLeaderboard};
use crate::queue::{ENQUEUE_FN, RedisQueue, STATUS_TTL_MS, encode_job};
use crate::served::{
    LEDGER_LUA, RedisServedLedger, SWEEP_SAMPLE, committed_tail, decode_lookup, ledger_ttl_ms,
};

/// KEYS = schedule base, ledger; ARGV = now, limit, subject ('' for
/// every one), item prefix, served_at, answerable_until, retain_until (µs),
/// ledger ttl_ms, sample.
const DUE_AND_SERVE: &str = r"
local r = due_read(KEYS[1], ARGV[3], ARGV[1], ARGV[2])
if not r then return false end
local ids = r[2]
if #ids > 0 then
  local items = {}
  for i, q in ipairs(ids) do items[i] = ARGV[4] .. q end
  record_served(KEYS[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], items)
end
return r
";

/// KEYS = ledger, schedule base; ARGV = #items, items*, questions*.
/// Returns `{ledger entries, hz (false: absent), read_cards(questions)}`.
const PREPARE: &str = r"
local ni = tonumber(ARGV[1])
local led = {}
if ni > 0 then led = redis.call('HMGET', KEYS[1], unpack(ARGV, 2, ni + 1)) end
local S = sched(KEYS[2])
if not S then return {led, false, {}} end
return {led, redis.call('HGET', S.m, 'hz'), read_cards(S, ARGV, ni + 2)}
";

/// Counts the items due at `now` (with a subject filter, `''` for none)
/// if the schedule is present (`-1` otherwise).
const COUNT_DUE: &str = r"
local function due_total(b, subject, now)
  local r = due_read(b, subject, now, 0)
  if not r then return -1 end
  return r[1]
end
";

/// The whole commit on one server.
///
/// KEYS = ledger, schedule base, stream, status, then (board, built)*.
/// ARGV = #claim args, #row args, schedule ttl_ms, job payload, status
/// ttl_ms, count (`1`/`0`), now µs, -xp, user, count subject (`''`: every
/// subject), job id, claim triples (item, served_at µs, tail)*, row
/// quintuples*, one ttl_ms per board. Returns `{0}` (lost, nothing written) or `{1,
/// total_due or -1, boards credited (1/0), m0, m1, m2}` (mastery counts,
/// `-1` when not kept).
const COMMIT_SINGLE: &str = r"
local nc, nr = tonumber(ARGV[1]), tonumber(ARGV[2])
local c0 = 12
local r0 = c0 + nc
local t0 = r0 + nr
local heads = check_claims(KEYS[1], ARGV, c0, r0 - 1)
if not heads then return {0} end
enqueue(KEYS[3], KEYS[4], ARGV[4], ARGV[5])
write_claims(KEYS[1], heads, ARGV, c0, r0 - 1)
if nr > 0 then
  local ok, w = pcall(put_rows, KEYS[2], ARGV[3], ARGV, r0, t0 - 1)
  if ok and w >= 0 then mark_written(KEYS[2], ARGV[11]) end
end
local credited = 1
for j = 1, (#KEYS - 4) / 2 do
  local ok = pcall(board_add, KEYS[3 + 2 * j], KEYS[4 + 2 * j], ARGV[8], ARGV[t0 + j - 1], ARGV[9])
  if not ok then credited = 0 end
end
local total = -1
if ARGV[6] == '1' then
  local ok, n = pcall(due_total, KEYS[2], ARGV[10], ARGV[7])
  if ok then total = n end
end
local mc = mastery_read(KEYS[2])
return {1, total, credited, mc[1], mc[2], mc[3]}
";

/// Step 3 of the Cluster commit (user slot): rows and count.
///
/// KEYS = schedule base; ARGV = schedule ttl_ms, count (`1`/`0`), now µs,
/// count subject, job id, row quintuples*. Returns `{total_due or -1, m0, m1, m2}`
/// (mastery counts, `-1` when not kept).
const APPLY_ROWS: &str = r"
if #ARGV > 5 and put_rows(KEYS[1], ARGV[1], ARGV, 6, #ARGV) >= 0 then
  mark_written(KEYS[1], ARGV[5])
end
local total = -1
if ARGV[2] == '1' then total = due_total(KEYS[1], ARGV[4], ARGV[3]) end
local mc = mastery_read(KEYS[1])
return {total, mc[1], mc[2], mc[3]}
";

struct Scripts {
    due_and_serve: Script,
    prepare: Script,
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
        // The ledger names question items as the schedules name cards.
        let ledger = match due.numbering() {
            Some(n) => ledger.with_numbering(n.clone()),
            None => ledger,
        };
        let script = |parts: &[&str]| Script::new(&due.lua(parts));
        RedisFastPath {
            scripts: Arc::new(Scripts {
                due_and_serve: script(&[SCHEDULE_LUA, LEDGER_LUA, DUE_AND_SERVE]),
                prepare: script(&[SCHEDULE_LUA, PREPARE]),
                commit_single: script(&[
                    SCHEDULE_LUA,
                    SCHEDULE_WRITE_LUA,
                    COUNT_DUE,
                    LEDGER_LUA,
                    ENQUEUE_FN,
                    BOARD_ADD,
                    COMMIT_SINGLE,
                ]),
                apply_rows: script(&[SCHEDULE_LUA, SCHEDULE_WRITE_LUA, COUNT_DUE, APPLY_ROWS]),
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

    async fn due_and_serve_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> Result<Option<DueSlice>> {
        let mut inv = self
            .scripts
            .due_and_serve
            .key(self.due.schedule_key(user, season));
        inv.key(self.ledger.ledger_key(user, season))
            .arg(micros(now))
            .arg(limit)
            .arg(self.due.wire_subject(subject).await?)
            .arg(self.ledger.field_prefix(&terms.item_prefix)?)
            .arg(micros(terms.served_at))
            .arg(micros(terms.answerable_until))
            .arg(micros(terms.retain_until))
            .arg(ledger_ttl_ms(terms.served_at, terms.retain_until))
            .arg(SWEEP_SAMPLE);
        self.due
            .due_slice(self.conn.script(self.call_timeout(), &inv).await?)
            .await
    }

    async fn prepare_inner(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> Result<SubmitView> {
        let fields = self
            .ledger
            .fields(items.iter().map(String::as_str), false)
            .await?;
        let cards = self.due.wire_find(questions).await?;
        let mut inv = self
            .scripts
            .prepare
            .key(self.ledger.ledger_key(user, season));
        inv.key(self.due.schedule_key(user, season))
            .arg(fields.len())
            .arg(fields);
        // A question with no number has no card: '' is no hash field.
        for q in cards {
            inv.arg(q.unwrap_or_default());
        }
        let (ledger, hz, cards): (Vec<Option<String>>, Option<String>, Vec<Value>) =
            self.conn.script(self.call_timeout(), &inv).await?;
        if ledger.len() != items.len() {
            return Err(Error::Decode(format!(
                "HMGET of {} fields returned {}",
                items.len(),
                ledger.len()
            )));
        }
        let servings = if items.is_empty() {
            Vec::new()
        } else {
            decode_lookup(ledger, now)?
        };
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
        let states = self
            .due
            .decode_cards(user, season, questions, cards)
            .await?;
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
        let (stream, status) = self.queue.enqueue_keys(&commit.job.id);
        let credits = self.credits(commit);
        let fields = self
            .ledger
            .fields(commit.claims.iter().map(|c| c.item.as_str()), false)
            .await?;
        let wire = self.due.wire_rows(&commit.rows).await?;
        let mut inv = self
            .scripts
            .commit_single
            .key(self.ledger.ledger_key(user, season));
        inv.key(self.due.schedule_key(user, season))
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
            .arg(user.as_str())
            .arg(self.due.wire_subject(count_subject).await?)
            .arg(commit.job.id.as_str());
        for (c, field) in commit.claims.iter().zip(&fields) {
            inv.arg(field)
                .arg(micros(c.served_at))
                .arg(committed_tail(c));
        }
        for r in &wire {
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
        let wire = self.due.wire_rows(&commit.rows).await?;
        let mut inv = self
            .scripts
            .apply_rows
            .key(self.due.schedule_key(user, season));
        inv.arg(self.due.ttl_ms())
            .arg(if commit.count_due.is_some() { "1" } else { "0" })
            .arg(micros(commit.now))
            .arg(self.due.wire_subject(count_subject).await?)
            .arg(commit.job.id.as_str());
        for r in &wire {
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
