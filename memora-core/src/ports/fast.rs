//! The review fast path: the two review requests in a fixed, small number
//! of cache round trips.
//!
//! A warm `get_review_session` is one call ([`ReviewFastPath::due_and_serve`]:
//! read the due items and record them as served). A `submit_review_session`
//! whose cards were served from the cache is two calls, whatever the number
//! of answers: [`ReviewFastPath::prepare_submit`] reads the servings and the
//! cached card states, the core schedules the answers in memory, and
//! [`ReviewFastPath::commit_submit`] binds the answers, writes the new
//! states, enqueues the persistence job and credits the leaderboards — all
//! or nothing on a single Redis, so it is one round trip there.
//!
//! The fast path is an optimisation with the semantics of the general path
//! (the [`DueCache`](super::DueCache), [`ServedLedger`](super::ServedLedger),
//! [`PersistenceQueue`](super::PersistenceQueue) and
//! [`LeaderboardCache`](super::LeaderboardCache) calls it replaces): the
//! core takes it only when the cache is healthy and everything the request
//! touches lives in the cache, and falls back to the general path otherwise.
//! Adapters store and compare; every rule lives in the core.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{DueSlice, JobStatus, PersistJob, Serving, ServingClaim};
use crate::domain::{MasteryCounts, MemoryTracker};
use crate::error::PortResult;
use crate::ids::{QuestionId, SeasonId, SubjectId, UserId};

/// How the items returned by [`ReviewFastPath::due_and_serve`] are recorded
/// in the cache's served-set ledger (as
/// [`ServedLedger::record_served`](super::ServedLedger::record_served) would,
/// at `served_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeTerms {
    /// Item key of a question: this prefix followed by the question id.
    pub item_prefix: String,
    /// The serving time.
    pub served_at: DateTime<Utc>,
    /// An answer is accepted until then.
    pub answerable_until: DateTime<Utc>,
    /// The entry is kept until then.
    pub retain_until: DateTime<Utc>,
}

/// What a submission's first round trip read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubmitView {
    /// Per item, in order: the cache ledger's entry (`None`: not in the
    /// cache ledger, or past its `retain_until` at `now`).
    pub servings: Vec<Option<Serving>>,
    /// Per question, in order: the cached row (`None`: not cached). The
    /// whole vector is `None` when the schedule is absent.
    pub states: Option<Vec<Option<MemoryTracker>>>,
    /// End of the schedule's horizon when it caches only items due before
    /// it (horizon mode): a question without a cached row may then still
    /// have one in the store. `None`: the schedule holds every row.
    pub horizon: Option<DateTime<Utc>>,
}

/// Leaderboard XP to credit with a commit (every period bucket of the
/// global board and, if given, of the subject board, as
/// [`LeaderboardCache::add_xp`](super::LeaderboardCache::add_xp)).
#[derive(Debug, Clone, PartialEq)]
pub struct BoardCredit {
    /// Subject board, besides the global one.
    pub subject: Option<SubjectId>,
    /// Learner day the XP counts for.
    pub day: NaiveDate,
    /// XP (> 0).
    pub xp: i64,
}

/// Everything [`ReviewFastPath::commit_submit`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct FastCommit {
    /// Claims on the cache ledger, checked and written as
    /// [`ServedLedger::commit`](super::ServedLedger::commit) does.
    pub claims: Vec<ServingClaim>,
    /// New card rows, written as [`DueCache::put`](super::DueCache::put)
    /// does (into a present schedule; never over a newer entry).
    pub rows: Vec<MemoryTracker>,
    /// The persistence job, enqueued as
    /// [`PersistenceQueue::enqueue`](super::PersistenceQueue::enqueue) does.
    pub job: PersistJob,
    /// Leaderboard credit (best effort), if any.
    pub board: Option<BoardCredit>,
    /// Count the items due at `now` after the write, with this subject
    /// filter (`Some(None)`: every subject; `None`: do not count).
    pub count_due: Option<Option<SubjectId>>,
    /// The request time.
    pub now: DateTime<Utc>,
}

/// The result of [`ReviewFastPath::commit_submit`].
#[derive(Debug, Clone, PartialEq)]
pub enum FastCommitOutcome {
    /// A claim did not match (a concurrent submission won): nothing was
    /// written, enqueued or credited.
    Lost,
    /// Claims committed, rows written, job durably enqueued.
    Committed {
        /// The job's status (`Queued`, or `Done` for a write-through queue).
        status: JobStatus,
        /// Items due after the write (if asked and the schedule is present).
        total_due: Option<u64>,
        /// Mastery counts of the learner's season after the write, if the
        /// adapter keeps them exactly (`None`: the core asks the store).
        mastery: Option<MasteryCounts>,
        /// The leaderboard credit was applied.
        board_credited: bool,
    },
}

/// The review fast path over the cache (see the module documentation).
#[async_trait]
pub trait ReviewFastPath: Send + Sync {
    /// Due items as [`DueCache::due`](super::DueCache::due) answers them
    /// (`None`: schedule absent, nothing recorded), and every returned item
    /// recorded as served per `terms` — one round trip.
    async fn due_and_serve(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        terms: &ServeTerms,
    ) -> PortResult<Option<DueSlice>>;

    /// The cache ledger's entries of `items` and the cached rows of
    /// `questions` — one round trip.
    async fn prepare_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        questions: &[QuestionId],
        now: DateTime<Utc>,
    ) -> PortResult<SubmitView>;

    /// Commits a submission: if every claim matches, writes the claims and
    /// rows, enqueues the job durably and credits the board, and returns
    /// `Committed`; otherwise writes nothing and returns `Lost`. An error
    /// leaves the outcome unknown: the caller releases its claims
    /// ([`ServedLedger::release`](super::ServedLedger::release) on the cache
    /// ledger) and reports the failure. One round trip on a single Redis.
    async fn commit_submit(
        &self,
        user: &UserId,
        season: &SeasonId,
        commit: &FastCommit,
    ) -> PortResult<FastCommitOutcome>;

    /// Whether `commit_submit` returns exact mastery counts (then the core
    /// reads nothing from the store to answer them).
    fn keeps_mastery(&self) -> bool {
        false
    }
}
