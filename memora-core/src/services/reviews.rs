//! Review sessions: what is due (normal mode from the cache with rehydration
//! on a miss, safe mode from the database under rate limits, topic focus
//! mode) and submitting answers (scheduling, XP, durable persistence).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{CoreError, CoreResult, PortError};
use crate::gamification;
use crate::ids::*;
use crate::ports::{
    ActivityStore, BoardCredit, DueCache, DueFilter, DueSlice, FastCommit, FastCommitOutcome,
    FsrsParamStore, JobStatus, LeaderboardCache, PersistJob, PersistenceQueue, Ports,
    ReviewFastPath, Serving, TrackerStore,
};
use crate::safe_mode::{Admission, SafeModeLimiter};
use crate::srs::{
    AnswerPath, AnswerSignals, Fsrs6, Ladder, ReviewContext, Scheduler, SchedulerKind, stable_hash,
};
use crate::time::DayBoundary;

use super::CommerceService;
use super::cards::{Card, build_card};
use super::content::ContentIndex;
use super::integrity::{self, LedgerSource, ServedSet};
use super::persistence::SingleFlight;
use super::shared::{Profiles, Shared};

/// How a review session was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewMode {
    /// From the cache.
    Normal,
    /// From the cache after loading it from the database.
    Rehydrated,
    /// From the database because the cache is down (rate limited).
    SafeMode,
    /// Topic focus (always from the database).
    Topic,
    /// No active season: nothing to review.
    NoSeason,
}

/// `get_review_session` input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewQuery {
    /// Only this subject.
    pub subject: Option<SubjectId>,
    /// Topic focus mode.
    pub topic: Option<TopicId>,
    /// Number of questions (default 15, 1..=50).
    pub limit: Option<usize>,
}

/// `get_review_session` output.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSession {
    /// Cards.
    pub questions: Vec<Card>,
    /// Total due in scope.
    pub total_due: u64,
    /// Served in safe mode.
    pub is_degraded: bool,
    /// Season.
    pub season: Option<SeasonId>,
    /// How it was served.
    pub mode: ReviewMode,
}

/// One answer of a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerInput {
    /// Question.
    pub question_id: QuestionId,
    /// Signals.
    pub signals: AnswerSignals,
    /// Optional client idempotency key.
    pub review_id: Option<ReviewId>,
}

/// `submit_review_session` input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewSubmission {
    /// Answers in the order given.
    pub answers: Vec<AnswerInput>,
    /// Session subject (scope of `remaining_items`).
    pub subject: Option<SubjectId>,
    /// Session topic.
    pub topic: Option<TopicId>,
    /// Combo the client claims. Ignored: the server computes the combo
    /// (kept so old clients' payloads still parse).
    pub claimed_combo: Option<u32>,
}

/// `submit_review_session` output.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitOutcome {
    /// Answers newly processed.
    pub processed: usize,
    /// Answers recognised as replays of earlier ones (no effect).
    pub replayed: usize,
    /// XP awarded.
    pub xp_earned: i64,
    /// Items still due in the session's scope.
    pub remaining_items: u64,
    /// Mastery counts of the season after this submission.
    pub mastery: MasteryCounts,
    /// Persistence job.
    pub job_id: JobId,
    /// Persistence status at acknowledgement time.
    pub job_status: JobStatus,
}

/// A submission being answered, as both paths see it.
struct Submitted<'a> {
    idx: &'a ContentIndex,
    user: &'a UserId,
    season: &'a Season,
    submission: &'a ReviewSubmission,
    /// Review ids scoped to the learner, per answer.
    scoped: &'a [Option<ReviewId>],
    /// Ledger item keys, per answer.
    items: &'a [String],
}

/// The fresh answers of a submission with their XP and ledger claims.
struct FreshSet {
    answers: Vec<AnswerInput>,
    xp: i64,
    claims: Vec<(crate::ports::ServingClaim, LedgerSource)>,
    job_id: JobId,
    today: chrono::NaiveDate,
}

/// What the commit of a submission already knows.
struct FinishWith {
    status: JobStatus,
    total_due: Option<u64>,
    mastery: Option<MasteryCounts>,
}

/// One fast-path attempt of a submission.
enum FastTry {
    Done(Box<SubmitOutcome>),
    Lost,
    General,
}

/// Sorts the answers of a submission by their servings: the indices of
/// fresh answers and the receipts of replayed ones, or the error that
/// rejects the whole submission (never served, already answered, expired).
fn classify(
    sub: &Submitted<'_>,
    servings: &[Option<&Serving>],
    now: DateTime<Utc>,
) -> CoreResult<(Vec<usize>, Vec<crate::ports::AnswerReceipt>)> {
    let mut fresh: Vec<usize> = Vec::new();
    let mut replays: Vec<crate::ports::AnswerReceipt> = Vec::new();
    for (i, serving) in servings.iter().enumerate() {
        let q = &sub.submission.answers[i].question_id;
        let Some(serving) = serving else {
            return Err(CoreError::NotServed(format!(
                "question {q} was not served to you in a review session; fetch a review session first"
            )));
        };
        let replay = match (&sub.scoped[i], &serving.last_receipt) {
            (Some(rid), Some(receipt)) if &receipt.review_id == rid => Some(receipt),
            _ => None,
        };
        if let Some(receipt) = replay {
            replays.push(receipt.clone());
        } else if serving.answered {
            return Err(CoreError::NotServed(format!(
                "question {q} was already answered for this serving; fetch a new review session"
            )));
        } else if serving.answerable_until < now {
            return Err(CoreError::NotServed(format!(
                "the serving of question {q} expired; fetch a new review session"
            )));
        } else {
            fresh.push(i);
        }
    }
    Ok((fresh, replays))
}

/// Per-submission maps keyed by question: foldhash, as the catalog index
/// (a submission holds at most `max_answers_per_submit` keys, so no key set
/// a client chooses can make their collisions cost anything).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Adds `rows` to `current` where they are newer (reviewed later).
fn merge_newer(
    current: &mut Map<QuestionId, MemoryTracker>,
    rows: impl IntoIterator<Item = MemoryTracker>,
) {
    for row in rows {
        let newer = current
            .get(&row.key.question)
            .is_none_or(|old| row.state.last_review > old.state.last_review);
        if newer {
            current.insert(row.key.question.clone(), row);
        }
    }
}

/// The result of scheduling a batch of answers.
pub(crate) struct Applied {
    pub records: Vec<ReviewRecord>,
    /// Stored (database) row per question before this batch.
    pub stored_before: Map<QuestionId, Option<MemoryTracker>>,
}

enum DueError {
    Cache,
    Store(PortError),
}

/// Most due ids one review session examines while filling (see
/// [`ReviewService::get_review_session`]): reads ask for `limit` ids, then
/// 8× more each time, up to this many — for the default limit of 15 at
/// most four reads (15, 120, 960, 1 000).
pub const MAX_SCANNED_DUE: usize = 1_000;

fn next_window(window: usize) -> usize {
    window.saturating_mul(8).min(MAX_SCANNED_DUE)
}

/// The cards of a session being filled from due ids in due order.
struct Collector<'a> {
    idx: &'a ContentIndex,
    actor: &'a Actor,
    /// The learner's access keys, read at the first id that needs them.
    keys: Option<AccessKeys>,
    day_seed: &'a str,
    limit: usize,
    cards: Vec<Card>,
    /// Ids examined so far (a prefix of the due order).
    examined: usize,
    /// Examined ids that cannot be served.
    skipped: u64,
}

impl<'a> Collector<'a> {
    fn new(idx: &'a ContentIndex, actor: &'a Actor, limit: usize, day_seed: &'a str) -> Self {
        Collector {
            idx,
            actor,
            keys: None,
            day_seed,
            limit,
            cards: Vec::with_capacity(limit),
            examined: 0,
            skipped: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.cards.len() >= self.limit
    }
}

/// Review sessions and answers: the due path (cache, rehydration, safe
/// mode, topic focus), the one answer engine (scheduling, XP, served-set
/// binding) that lesson plays reuse, and the durable write path with the
/// persistence worker step ([`super::persistence`]). Holds the tracker
/// store, the due cache, the activity ledger (review XP), FSRS parameters,
/// the persistence queue and the leaderboard cache; reads access keys
/// through [`CommerceService`].
pub struct ReviewService {
    pub(crate) shared: Arc<Shared>,
    pub(crate) profiles: Profiles,
    pub(crate) commerce: Arc<CommerceService>,
    pub(crate) ledger: Arc<ServedSet>,
    pub(crate) trackers: Arc<dyn TrackerStore>,
    pub(crate) cache: Arc<dyn DueCache>,
    pub(crate) activity: Arc<dyn ActivityStore>,
    pub(crate) fsrs: Arc<dyn FsrsParamStore>,
    pub(crate) queue: Arc<dyn PersistenceQueue>,
    pub(crate) leaderboard: Option<Arc<dyn LeaderboardCache>>,
    /// The review fast path (see [`ReviewFastPath`]), if the cache has one.
    fast: Option<Arc<dyn ReviewFastPath>>,
    limiter: SafeModeLimiter,
    /// Refusals the shared safe-mode budget already decided, kept here so
    /// that a flood of requests it would refuse does not queue on
    /// PostgreSQL: until when the global window is full, and until when
    /// each learner must wait.
    safe_mode_blocks: Mutex<SafeModeBlocks>,
    rehydrations: SingleFlight,
    /// Schedules that missed a write while the cache was down.
    pub(crate) stale_schedules: Mutex<HashSet<(UserId, SeasonId)>>,
}

impl ReviewService {
    pub(crate) fn new(
        ports: &Ports,
        shared: &Arc<Shared>,
        profiles: Profiles,
        commerce: Arc<CommerceService>,
        ledger: Arc<ServedSet>,
    ) -> Self {
        ReviewService {
            limiter: SafeModeLimiter::new(shared.config.safe_mode.clone()),
            safe_mode_blocks: Mutex::new(SafeModeBlocks::default()),
            shared: Arc::clone(shared),
            profiles,
            commerce,
            ledger,
            trackers: Arc::clone(&ports.trackers),
            cache: Arc::clone(&ports.cache),
            activity: Arc::clone(&ports.activity),
            fsrs: Arc::clone(&ports.fsrs),
            queue: Arc::clone(&ports.queue),
            leaderboard: ports.leaderboard.clone(),
            fast: ports.fast_path.clone(),
            rehydrations: SingleFlight::default(),
            stale_schedules: Mutex::new(HashSet::new()),
        }
    }

    /// Access keys of the actor, fetched only if some question needs them.
    pub(crate) async fn keys_if_needed(
        &self,
        idx: &ContentIndex,
        actor: &Actor,
        questions: &[&QuestionId],
    ) -> CoreResult<Option<AccessKeys>> {
        if actor.is_admin() {
            return Ok(None);
        }
        let empty = AccessKeys::default();
        let needs = questions
            .iter()
            .any(|q| integrity::question_open(idx, &empty, q) == Some(false));
        if needs {
            Ok(Some(self.commerce.access_keys(&actor.user).await?))
        } else {
            Ok(None)
        }
    }

    pub(crate) async fn scheduler_for(
        &self,
        season: &Season,
        user: &UserId,
    ) -> CoreResult<Box<dyn Scheduler>> {
        Ok(match season.scheduler {
            SchedulerKind::Ladder => Box::new(Ladder),
            SchedulerKind::Fsrs6 => {
                // From the learner cache: refits in this process invalidate
                // it, refits elsewhere are seen within its TTL.
                let now = self.shared.now();
                let params = match self.shared.fsrs_params.get(user, now) {
                    Some(p) => p,
                    None => {
                        let p = self.fsrs.fsrs_params(user).await?.map(Arc::new);
                        self.shared.fsrs_params.insert(user.clone(), p.clone(), now);
                        p
                    }
                };
                Box::new(Fsrs6::for_learner(
                    &self.shared.config.fsrs,
                    params.as_ref().map(|p| p.0.as_slice()),
                    season.desired_retention,
                ))
            }
        })
    }

    fn validate_filters(
        idx: &ContentIndex,
        subject: Option<&SubjectId>,
        topic: Option<&TopicId>,
    ) -> CoreResult<()> {
        if let Some(s) = subject {
            if idx.subject(s).is_none() {
                return Err(CoreError::not_found(format!("subject {s} not found")));
            }
        }
        if let Some(t) = topic {
            if idx.topic(t).is_none() {
                return Err(CoreError::not_found(format!("topic {t} not found")));
            }
        }
        Ok(())
    }

    /// Adds cards for `ids` (the next due ids, in due order) to `c` until
    /// it is full: ids no card can be built for (unpublished lesson or
    /// topic, deleted stage or element) and ids the learner may not open
    /// now (premium content without a subscription) are skipped and
    /// counted. Access keys are read once, and only if some id needs them.
    async fn collect_cards(
        &self,
        c: &mut Collector<'_>,
        ids: impl IntoIterator<Item = QuestionId>,
    ) -> CoreResult<()> {
        let empty = AccessKeys::default();
        // Every id read is examined, also past a full session: the ids are
        // at hand, and each unservable one found is one less in `total_due`.
        for q in ids {
            c.examined += 1;
            let open = match integrity::question_open(c.idx, &empty, &q) {
                None => false,
                Some(true) => true,
                Some(false) if c.actor.is_admin() => true,
                Some(false) => {
                    if c.keys.is_none() {
                        c.keys = Some(self.commerce.access_keys(&c.actor.user).await?);
                    }
                    integrity::may_access(c.idx, c.actor, c.keys.as_ref(), &q)
                }
            };
            let seed = stable_hash(&[c.actor.user.as_str(), q.as_str(), c.day_seed], 0);
            match build_card(c.idx, &q, seed).filter(|_| open) {
                Some(card) if !c.is_full() => c.cards.push(card),
                Some(_) => {}
                None => c.skipped += 1,
            }
        }
        Ok(())
    }

    /// `get_review_session`: the due cards (only those the learner may
    /// access now), each recorded as served so that answers to it count.
    ///
    /// A session is full (`limit` cards) whenever that many servable items
    /// are due: items that cannot be served (unpublished or deleted content,
    /// premium content the learner cannot open) are skipped and the due
    /// list is read further — `limit` ids first, then 8× more per read, at
    /// most [`MAX_SCANNED_DUE`] ids per session. `total_due` leaves out
    /// every unservable item among the due ids read. Reads stop once the
    /// session is full, so unservable items further down the due order are
    /// still counted — rarely: they are never answered, so they gather at
    /// the head of the due order, where the first reads find them.
    pub async fn get_review_session(
        &self,
        actor: &Actor,
        query: &ReviewQuery,
    ) -> CoreResult<ReviewSession> {
        let (session, recorded) = self.review_session_unbound(actor, query).await?;
        let Some(season) = session.season.clone() else {
            return Ok(session);
        };
        if session.questions.is_empty() || recorded {
            return Ok(session);
        }
        let items: Vec<String> = session
            .questions
            .iter()
            .map(|c| integrity::question_key(&c.id))
            .collect();
        self.ledger
            .record_served(
                &actor.user,
                &season,
                &items,
                self.shared.config.review_answer_window,
            )
            .await?;
        Ok(session)
    }

    /// The fast path, when it may be taken for `season` now: configured,
    /// the season caches schedules, and the due-cache breaker is closed.
    fn fast_path(&self, season: &Season, now: DateTime<Utc>) -> Option<&Arc<dyn ReviewFastPath>> {
        self.fast
            .as_ref()
            .filter(|_| season.enable_cache && self.shared.health.should_try(now))
    }

    /// Due items through the fast path, recorded as served in the same
    /// round trip (`true` in the third place). An absent schedule is
    /// rehydrated as on the general path, and then nothing is recorded yet.
    async fn fast_due(
        &self,
        fast: &Arc<dyn ReviewFastPath>,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(DueSlice, bool, bool), DueError> {
        self.heal_stale_schedule(user, season)
            .await
            .map_err(|_| DueError::Cache)?;
        let terms = self
            .ledger
            .serve_terms(now, self.shared.config.review_answer_window);
        let epoch = self.rehydrations.epoch();
        match fast
            .due_and_serve(user, season, subject, now, limit, &terms)
            .await
        {
            Ok(Some(slice)) => Ok((slice, false, true)),
            // Absent a moment ago: straight to the single flight.
            Ok(None) => self
                .due_with_rehydration(user, season, subject, now, limit, Some(epoch))
                .await
                .map(|(slice, rehydrated)| (slice, rehydrated, false)),
            Err(_) => Err(DueError::Cache),
        }
    }

    /// A review session, and whether its cards are already recorded as
    /// served (the fast path records what it reads in the same round trip).
    async fn review_session_unbound(
        &self,
        actor: &Actor,
        query: &ReviewQuery,
    ) -> CoreResult<(ReviewSession, bool)> {
        let limit = query
            .limit
            .unwrap_or(self.shared.config.review_limit_default);
        if limit == 0 || limit > self.shared.config.review_limit_max {
            return Err(CoreError::invalid(format!(
                "limit must be between 1 and {}",
                self.shared.config.review_limit_max
            )));
        }
        let idx = self.shared.catalog().await?;
        Self::validate_filters(&idx, query.subject.as_ref(), query.topic.as_ref())?;
        let Some(season) = self.shared.active_season().await? else {
            return Ok((
                ReviewSession {
                    questions: Vec::new(),
                    total_due: 0,
                    is_degraded: false,
                    season: None,
                    mode: ReviewMode::NoSeason,
                },
                false,
            ));
        };
        let now = self.shared.now();
        let day = self
            .profiles
            .clock(&actor.user, false)
            .await?
            .day_boundary_at(now);
        let today = day.local_day(now).to_string();
        let user = &actor.user;

        if let Some(topic) = &query.topic {
            if self.shared.health.is_degraded() {
                self.admit_safe_mode(user, now).await?;
            }
            return self
                .topic_session(
                    &idx,
                    actor,
                    &season,
                    topic,
                    now,
                    day.day_start(day.local_day(now)),
                    &today,
                )
                .await
                .map(|s| (s, false));
        }

        // Normal mode, unless the cache is known to be down.
        if season.enable_cache && self.shared.health.should_try(now) {
            let subject = query.subject.as_ref();
            let mut c = Collector::new(&idx, actor, limit, &today);
            let mut window = limit;
            let mut served: Option<(bool, u64)> = None;
            let fast = self.fast_path(&season, now);
            let mut recorded = false;
            loop {
                // The fast path serves the first read; a larger one (items
                // skipped as unservable) takes the general path, and the
                // whole session is then recorded at the end.
                let read = match fast {
                    Some(fast) if window == limit => {
                        self.fast_due(fast, user, &season.id, subject, now, window)
                            .await
                    }
                    _ => self
                        .due_with_rehydration(user, &season.id, subject, now, window, None)
                        .await
                        .map(|(slice, rehydrated)| (slice, rehydrated, false)),
                };
                match read {
                    Ok((slice, rehydrated, rec)) => {
                        recorded = rec;
                        if served.is_none() {
                            self.shared.health.mark_ok();
                        }
                        let first = *served.get_or_insert((rehydrated, 0));
                        served = Some((first.0, slice.total_due));
                        let fetched = slice.items.len();
                        let fresh: Vec<QuestionId> =
                            slice.items.into_iter().skip(c.examined).collect();
                        self.collect_cards(&mut c, fresh).await?;
                        if c.is_full() || fetched < window || window >= MAX_SCANNED_DUE {
                            break;
                        }
                        window = next_window(window);
                    }
                    // The first read failing falls through to safe mode; a
                    // later, larger one still leaves the session collected.
                    Err(DueError::Cache) => {
                        self.shared.health.mark_failed(now);
                        break;
                    }
                    Err(DueError::Store(e)) => return Err(e.into()),
                }
            }
            if let Some((rehydrated, total_due)) = served {
                if rehydrated {
                    self.shared.health.record_miss();
                } else {
                    self.shared.health.record_hit();
                }
                return Ok((
                    ReviewSession {
                        total_due: total_due.saturating_sub(c.skipped),
                        questions: c.cards,
                        is_degraded: false,
                        season: Some(season.id.clone()),
                        mode: if rehydrated {
                            ReviewMode::Rehydrated
                        } else {
                            ReviewMode::Normal
                        },
                    },
                    recorded,
                ));
            }
        }
        if !season.enable_cache {
            // Cache disabled for this season: plain database mode, not degraded.
            return self
                .session_from_store(
                    &idx,
                    actor,
                    &season,
                    query.subject.as_ref(),
                    now,
                    limit,
                    &today,
                    false,
                )
                .await
                .map(|s| (s, false));
        }
        // Safe mode: database, rate limited, fewer items.
        self.admit_safe_mode(user, now).await?;
        self.shared.health.record_safe_mode();
        let limit = limit.min(self.shared.config.safe_mode.max_items);
        self.session_from_store(
            &idx,
            actor,
            &season,
            query.subject.as_ref(),
            now,
            limit,
            &today,
            true,
        )
        .await
        .map(|s| (s, false))
    }

    /// A session served from the database (cache disabled, or safe mode),
    /// filled like the cache path.
    #[allow(clippy::too_many_arguments)]
    async fn session_from_store(
        &self,
        idx: &ContentIndex,
        actor: &Actor,
        season: &Season,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        today: &str,
        degraded: bool,
    ) -> CoreResult<ReviewSession> {
        let user = &actor.user;
        let filter = DueFilter {
            subject: subject.cloned(),
            topic: None,
        };
        let memory = &self.trackers;
        let mut c = Collector::new(idx, actor, limit, today);
        let mut window = limit;
        loop {
            let rows = memory
                .due_trackers(user, &season.id, &filter, now, window)
                .await?;
            let fetched = rows.len();
            let fresh: Vec<QuestionId> = rows
                .into_iter()
                .skip(c.examined)
                .map(|r| r.key.question)
                .collect();
            self.collect_cards(&mut c, fresh).await?;
            if c.is_full() || fetched < window || window >= MAX_SCANNED_DUE {
                break;
            }
            window = next_window(window);
        }
        let total = memory.count_due(user, &season.id, &filter, now).await?;
        Ok(ReviewSession {
            total_due: total.saturating_sub(c.skipped),
            questions: c.cards,
            is_degraded: degraded,
            season: Some(season.id.clone()),
            mode: if degraded {
                ReviewMode::SafeMode
            } else {
                ReviewMode::Normal
            },
        })
    }

    /// Safe-mode admission, counted across every process through the
    /// store; if the store cannot count (it is then most likely down too,
    /// and the degraded read would fail anyway), this process's own
    /// limiter decides. Requests the budget is known to refuse (the window
    /// is full, or the learner was admitted or refused too recently) are
    /// refused here without asking it.
    async fn admit_safe_mode(&self, user: &UserId, now: DateTime<Utc>) -> CoreResult<()> {
        if let Some(retry_after) = self
            .safe_mode_blocks
            .lock()
            .ok()
            .and_then(|b| b.blocked(user, now))
        {
            return Err(CoreError::RateLimited { retry_after });
        }
        let limits = &self.shared.config.safe_mode;
        let admission = match self
            .shared
            .coordination
            .admit_safe_mode(user, now, limits)
            .await
        {
            Ok(a) => {
                if let Ok(mut b) = self.safe_mode_blocks.lock() {
                    b.remember(user, now, &a, limits.per_user_interval);
                }
                a
            }
            Err(_) => self.limiter.check(user.as_str(), now),
        };
        match admission {
            Admission::Allowed => Ok(()),
            Admission::Denied { retry_after, .. } => Err(CoreError::RateLimited { retry_after }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn topic_session(
        &self,
        idx: &ContentIndex,
        actor: &Actor,
        season: &Season,
        topic: &TopicId,
        now: DateTime<Utc>,
        day_start: DateTime<Utc>,
        today: &str,
    ) -> CoreResult<ReviewSession> {
        let user = &actor.user;
        let memory = &self.trackers;
        let total = memory.count_topic(user, &season.id, topic).await?;
        let filter = DueFilter {
            subject: None,
            topic: Some(topic.clone()),
        };
        let total_due = memory.count_due(user, &season.id, &filter, now).await?;
        let size = gamification::topic_session_size(usize::try_from(total).unwrap_or(usize::MAX));
        let mut c = Collector::new(idx, actor, size, today);
        let mut window = size;
        let mut candidates = 0usize;
        if total > 0 {
            loop {
                let rows = memory
                    .topic_candidates(user, &season.id, topic, now, day_start, window)
                    .await?;
                let fetched = rows.len();
                candidates = fetched;
                let fresh: Vec<QuestionId> = rows
                    .into_iter()
                    .skip(c.examined)
                    .map(|r| r.key.question)
                    .collect();
                self.collect_cards(&mut c, fresh).await?;
                if c.is_full() || fetched < window || window >= MAX_SCANNED_DUE {
                    break;
                }
                window = next_window(window);
            }
        }
        if candidates == 0 && total > 0 {
            let seed = stable_hash(&[user.as_str(), topic.as_str(), today], 1);
            let rows = memory
                .random_topic_items(user, &season.id, topic, 10, seed)
                .await?;
            self.collect_cards(&mut c, rows.into_iter().map(|r| r.key.question))
                .await?;
        }
        Ok(ReviewSession {
            questions: c.cards,
            total_due,
            is_degraded: self.shared.health.is_degraded(),
            season: Some(season.id.clone()),
            mode: ReviewMode::Topic,
        })
    }

    /// Due items from the cache, rehydrating an absent schedule once
    /// (single flight) from the store. `seen_absent`: the caller has just
    /// healed a stale schedule and read it as absent (the fast path), after
    /// taking this [`SingleFlight::epoch`](super::persistence::SingleFlight::epoch),
    /// so neither is done again. Inside the flight the cache is read again
    /// only if another flight may have loaded the schedule since: a cold
    /// read costs one cache round trip before the load instead of three.
    async fn due_with_rehydration(
        &self,
        user: &UserId,
        season: &SeasonId,
        subject: Option<&SubjectId>,
        now: DateTime<Utc>,
        limit: usize,
        seen_absent: Option<u64>,
    ) -> Result<(DueSlice, bool), DueError> {
        let cache = &self.cache;
        if seen_absent.is_none() {
            self.heal_stale_schedule(user, season)
                .await
                .map_err(|_| DueError::Cache)?;
            if let Some(slice) = cache
                .due(user, season, subject, now, limit)
                .await
                .map_err(|_| DueError::Cache)?
            {
                return Ok((slice, false));
            }
        }
        let key = format!("{user}\u{1f}{season}");
        self.rehydrations
            .run_since(&key, seen_absent, |maybe_done| async move {
                if maybe_done
                    && let Some(slice) = cache
                        .due(user, season, subject, now, limit)
                        .await
                        .map_err(|_| DueError::Cache)?
                {
                    return Ok((slice, false));
                }
                let rows = self
                    .trackers
                    .all_trackers(user, season)
                    .await
                    .map_err(DueError::Store)?;
                cache
                    .load(user, season, &rows)
                    .await
                    .map_err(|_| DueError::Cache)?;
                let mut due: Vec<&MemoryTracker> = rows
                    .iter()
                    .filter(|r| r.state.due <= now)
                    .filter(|r| subject.is_none_or(|s| r.subject.as_ref() == Some(s)))
                    .collect();
                due.sort_by(|a, b| {
                    (a.state.due, &a.key.question).cmp(&(b.state.due, &b.key.question))
                });
                let total_due = due.len() as u64;
                Ok((
                    DueSlice {
                        items: due
                            .into_iter()
                            .take(limit)
                            .map(|r| r.key.question.clone())
                            .collect(),
                        total_due,
                    },
                    true,
                ))
            })
            .await
    }

    /// Schedules answers in order (an item answered twice chains its states).
    /// Previous states come from the store and, when healthy, the cache —
    /// whichever was reviewed later — so answers given while earlier ones are
    /// still queued build on the newest state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_answers(
        &self,
        idx: &ContentIndex,
        user: &UserId,
        season: &Season,
        day: &DayBoundary,
        answers: &[AnswerInput],
        path: AnswerPath,
        source: ReviewSource,
        now: DateTime<Utc>,
    ) -> CoreResult<Applied> {
        let mut unique: Vec<QuestionId> = answers.iter().map(|a| a.question_id.clone()).collect();
        unique.sort();
        unique.dedup();
        let stored = self
            .trackers
            .get_trackers(user, &season.id, &unique)
            .await?;
        let mut current: Map<QuestionId, MemoryTracker> = stored
            .into_iter()
            .map(|t| (t.key.question.clone(), t))
            .collect();
        let stored_before: Map<QuestionId, Option<MemoryTracker>> = unique
            .iter()
            .map(|q| (q.clone(), current.get(q).cloned()))
            .collect();
        if season.enable_cache && self.shared.health.should_try(now) {
            match self.cache.states(user, &season.id, &unique).await {
                Ok(cached) => {
                    self.shared.health.mark_ok();
                    merge_newer(&mut current, cached.into_iter().flatten());
                }
                Err(_) => self.shared.health.mark_failed(now),
            }
        }
        self.schedule_answers(
            idx,
            user,
            season,
            day,
            answers,
            (path, source),
            now,
            current,
            stored_before,
        )
        .await
    }

    /// Schedules answers in order from the previous states in `current`.
    #[allow(clippy::too_many_arguments)]
    async fn schedule_answers(
        &self,
        idx: &ContentIndex,
        user: &UserId,
        season: &Season,
        day: &DayBoundary,
        answers: &[AnswerInput],
        (path, source): (AnswerPath, ReviewSource),
        now: DateTime<Utc>,
        mut current: Map<QuestionId, MemoryTracker>,
        stored_before: Map<QuestionId, Option<MemoryTracker>>,
    ) -> CoreResult<Applied> {
        let scheduler = self.scheduler_for(season, user).await?;
        let batch = self.shared.ids.next_id("rv");
        let mut records = Vec::with_capacity(answers.len());
        for (i, a) in answers.iter().enumerate() {
            let (subject, topic, _, _) =
                idx.question_placement(&a.question_id).ok_or_else(|| {
                    CoreError::invalid(format!("unknown question_id {}", a.question_id))
                })?;
            let prev = current.get(&a.question_id).map(|t| &t.state);
            let elapsed = prev
                .and_then(|p| p.last_review)
                .map(|last| day.elapsed_days(last, now))
                .unwrap_or(0);
            let reps = prev.map(|p| p.reps).unwrap_or(0);
            let ctx = ReviewContext {
                now,
                elapsed_days: elapsed,
                fuzz_seed: stable_hash(
                    &[user.as_str(), season.id.as_str(), a.question_id.as_str()],
                    u64::from(reps),
                ),
            };
            let mut out = scheduler.schedule(prev, &a.signals, path, &ctx);
            // Schedulers add whole days as 24 h; a learner counts days on
            // their wall clock (a card due "tomorrow" is due on the next
            // learner day, also across a daylight-saving change).
            let gap = out.state.due - now;
            let whole = gap.num_days();
            if whole > 0 {
                let rest = gap - chrono::Duration::days(whole);
                out.state.due =
                    day.add_local_days(now, u32::try_from(whole).unwrap_or(u32::MAX)) + rest;
            }
            let key = TrackerKey {
                user: user.clone(),
                season: season.id.clone(),
                question: a.question_id.clone(),
            };
            let tracker = MemoryTracker {
                key: key.clone(),
                subject: Some(subject),
                topic,
                state: out.state.clone(),
            };
            let review_id = match &a.review_id {
                Some(r) => r.clone(),
                None => ReviewId::new(format!("{batch}:{i}"))?,
            };
            records.push(ReviewRecord {
                log: ReviewLogEntry {
                    review_id,
                    key,
                    source,
                    grade: out.grade,
                    is_correct: a.signals.is_correct,
                    duration_ms: a.signals.duration_ms,
                    attempts: a.signals.attempts.max(1),
                    reviewed_at: now,
                    elapsed_days: elapsed,
                    scheduler: scheduler.kind(),
                    state_after: out.state,
                },
                tracker: tracker.clone(),
            });
            current.insert(a.question_id.clone(), tracker);
        }
        Ok(Applied {
            records,
            stored_before,
        })
    }

    /// Mastery counts after a batch: the store's counts, corrected by the
    /// batch when it is still queued (write-behind).
    pub(crate) async fn mastery_after(
        &self,
        user: &UserId,
        season: &SeasonId,
        applied: &Applied,
        status: &JobStatus,
    ) -> CoreResult<MasteryCounts> {
        let mut counts = self
            .trackers
            .mastery_counts(user, Some(season), None)
            .await?;
        if *status == JobStatus::Queued {
            let mut newest: Map<&QuestionId, &MemoryTracker> = Map::default();
            for r in &applied.records {
                newest.insert(&r.tracker.key.question, &r.tracker);
            }
            let adjust = |c: &mut MasteryCounts, b, delta: i64| {
                let slot = match b {
                    crate::srs::MasteryBucket::New => &mut c.new,
                    crate::srs::MasteryBucket::Learning => &mut c.learning,
                    crate::srs::MasteryBucket::Mature => &mut c.mature,
                };
                *slot = slot.saturating_add_signed(delta);
            };
            for (q, row) in newest {
                if let Some(Some(before)) = applied.stored_before.get(q) {
                    if let Some(b) = before.state.mastery() {
                        adjust(&mut counts, b, -1);
                    }
                }
                if let Some(b) = row.state.mastery() {
                    adjust(&mut counts, b, 1);
                }
            }
        }
        Ok(counts)
    }

    /// `submit_review_session`: the server decides what each answer is
    /// worth. Every answer must be for a card served to this learner (see
    /// `services::integrity`), not yet answered, and accessible now;
    /// otherwise the whole submission is rejected and nothing changes. A
    /// replayed review id returns the original outcome and changes nothing.
    /// XP: `10` per correct answer plus `2` per answer of the longest correct
    /// run, counted only for answers whose item has not earned XP earlier
    /// on the same learner day — at most `12 × answers` per submission.
    ///
    /// Cards served through the cache are answered on the fast path (two
    /// cache round trips and one store write, whatever the number of
    /// answers; see [`ReviewFastPath`]); anything else (safe mode, cards
    /// served while the cache was down, an absent schedule) takes the
    /// general path with the same rules.
    pub async fn submit_review_session(
        &self,
        actor: &Actor,
        submission: &ReviewSubmission,
    ) -> CoreResult<SubmitOutcome> {
        let n = submission.answers.len();
        if n == 0 {
            return Err(CoreError::invalid("no answers submitted"));
        }
        if n > self.shared.config.max_answers_per_submit {
            return Err(CoreError::invalid(format!(
                "at most {} answers per submission (got {n})",
                self.shared.config.max_answers_per_submit
            )));
        }
        let idx = self.shared.catalog().await?;
        Self::validate_filters(&idx, submission.subject.as_ref(), submission.topic.as_ref())?;
        let mut seen: HashSet<&QuestionId, foldhash::fast::RandomState> = HashSet::default();
        for a in &submission.answers {
            if idx.question_placement(&a.question_id).is_none() {
                return Err(CoreError::invalid(format!(
                    "unknown question_id {}",
                    a.question_id
                )));
            }
            if !seen.insert(&a.question_id) {
                return Err(CoreError::invalid(format!(
                    "question_id {} is answered twice in one submission (one answer per served card)",
                    a.question_id
                )));
            }
        }
        let user = &actor.user;
        let scoped: Vec<Option<ReviewId>> = submission
            .answers
            .iter()
            .map(|a| {
                a.review_id
                    .as_ref()
                    .map(|r| integrity::scoped_review_id(user, r))
                    .transpose()
            })
            .collect::<CoreResult<_>>()?;
        let season = self.shared.require_active_season().await?;
        let ids: Vec<&QuestionId> = submission.answers.iter().map(|a| &a.question_id).collect();
        let keys = self.keys_if_needed(&idx, actor, &ids).await?;
        if let Some(q) = ids
            .iter()
            .find(|q| !integrity::may_access(&idx, actor, keys.as_ref(), q))
        {
            return Err(CoreError::forbidden(format!(
                "question {q} is not accessible to you (unpublished, or needs a subscription)"
            )));
        }
        let clock = self.profiles.clock(user, true).await?;
        let items: Vec<String> = ids.iter().map(|q| integrity::question_key(q)).collect();
        let sub = Submitted {
            idx: &idx,
            user,
            season: &season,
            submission,
            scoped: &scoped,
            items: &items,
        };
        // Optimistic: look the servings up, decide, commit with
        // compare-and-set; a concurrent submission that won makes us look
        // again (and usually see our own answers as replays).
        for _attempt in 0..3 {
            let now = self.shared.now();
            let day = clock.day_boundary_at(now);
            if let Some(fast) = self.submit_fast_path(&season, now) {
                match self.submit_fast(fast, &sub, &day, now).await? {
                    FastTry::Done(outcome) => return Ok(*outcome),
                    FastTry::Lost => continue,
                    FastTry::General => {}
                }
            }
            let servings = self
                .ledger
                .lookup_served(user, &season.id, &items, now)
                .await?;
            let found: Vec<Option<&Serving>> = servings
                .iter()
                .map(|l| l.as_ref().map(|(s, _)| s))
                .collect();
            let (fresh, replays) = classify(&sub, &found, now)?;
            if fresh.is_empty() {
                return self
                    .replayed_outcome(user, &season, submission, &replays, now)
                    .await;
            }
            match self
                .apply_fresh_answers(&sub, &day, &servings, &fresh, replays.len(), now)
                .await?
            {
                Some(outcome) => return Ok(outcome),
                None => continue,
            }
        }
        Err(CoreError::conflict(
            "this submission raced with another submission of the same answers; retry it",
        ))
    }

    /// The fast path for a submission, when it may be taken now: the due
    /// cache and the queue are healthy (the general path writes to the
    /// store synchronously while the queue is not).
    fn submit_fast_path(
        &self,
        season: &Season,
        now: DateTime<Utc>,
    ) -> Option<&Arc<dyn ReviewFastPath>> {
        self.fast_path(season, now)
            .filter(|_| self.shared.queue_health.should_try(now))
    }

    /// One attempt of a submission on the fast path: `General` when it
    /// does not apply (the cache failed, the schedule is absent, a card was
    /// not served through the cache ledger) — nothing has changed then.
    async fn submit_fast(
        &self,
        fast: &Arc<dyn ReviewFastPath>,
        sub: &Submitted<'_>,
        day: &DayBoundary,
        now: DateTime<Utc>,
    ) -> CoreResult<FastTry> {
        let user = sub.user;
        let season = sub.season;
        let questions: Vec<QuestionId> = sub
            .submission
            .answers
            .iter()
            .map(|a| a.question_id.clone())
            .collect();
        let view = match fast
            .prepare_submit(user, &season.id, sub.items, &questions, now)
            .await
        {
            Ok(view) => {
                self.shared.health.mark_ok();
                view
            }
            Err(_) => {
                self.shared.health.mark_failed(now);
                return Ok(FastTry::General);
            }
        };
        let Some(states) = view.states else {
            return Ok(FastTry::General);
        };
        if view.servings.len() != sub.items.len()
            || states.len() != questions.len()
            || view.servings.iter().any(Option::is_none)
        {
            return Ok(FastTry::General);
        }
        let found: Vec<Option<&Serving>> = view.servings.iter().map(Option::as_ref).collect();
        let (fresh, replays) = classify(sub, &found, now)?;
        if fresh.is_empty() {
            return self
                .replayed_outcome(user, season, sub.submission, &replays, now)
                .await
                .map(|o| FastTry::Done(Box::new(o)));
        }
        // Previous states: the cached rows; the store only for rows a
        // horizon-mode schedule does not hold.
        let mut current: Map<QuestionId, MemoryTracker> = Map::default();
        merge_newer(&mut current, states.into_iter().flatten());
        let missing: Vec<QuestionId> = questions
            .iter()
            .filter(|q| !current.contains_key(*q))
            .cloned()
            .collect();
        if view.horizon.is_some() && !missing.is_empty() {
            let stored = self
                .trackers
                .get_trackers(user, &season.id, &missing)
                .await?;
            merge_newer(&mut current, stored);
        }
        // The store's rows before the batch, to correct the store's mastery
        // counts, only when the fast path does not keep them itself.
        let stored_before = if fast.keeps_mastery() {
            Map::default()
        } else {
            self.stored_rows(user, &season.id, &questions).await?
        };
        let servings: Vec<integrity::Located> = view
            .servings
            .into_iter()
            .map(|s| s.map(|s| (s, LedgerSource::Cache)))
            .collect();
        let fresh_set = self.fresh_answers(sub, day, &servings, &fresh, now)?;
        let applied = self
            .schedule_answers(
                sub.idx,
                user,
                season,
                day,
                &fresh_set.answers,
                (AnswerPath::Review, ReviewSource::Review),
                now,
                current,
                stored_before,
            )
            .await?;
        let board = (fresh_set.xp > 0
            && self.leaderboard.is_some()
            && self.shared.leaderboard_health.should_try(now))
        .then(|| BoardCredit {
            subject: sub.submission.subject.clone(),
            day: fresh_set.today,
            xp: fresh_set.xp,
        });
        let wants_board = board.is_some();
        let commit = FastCommit {
            claims: fresh_set.claims.iter().map(|(c, _)| c.clone()).collect(),
            rows: applied.records.iter().map(|r| r.tracker.clone()).collect(),
            job: PersistJob {
                id: fresh_set.job_id.clone(),
                records: applied.records.clone(),
            },
            board,
            count_due: sub
                .submission
                .topic
                .is_none()
                .then(|| sub.submission.subject.clone()),
            now,
        };
        let (status, total_due, mastery) = match fast.commit_submit(user, &season.id, &commit).await
        {
            Ok(FastCommitOutcome::Lost) => return Ok(FastTry::Lost),
            Ok(FastCommitOutcome::Committed {
                status,
                total_due,
                mastery,
                board_credited,
            }) => {
                self.shared.health.mark_ok();
                self.shared.queue_health.mark_ok();
                if wants_board {
                    if board_credited {
                        self.shared.leaderboard_health.mark_ok();
                    } else {
                        self.shared.leaderboard_health.mark_failed(now);
                    }
                }
                (status, total_due, mastery)
            }
            Err(e) => {
                // Unknown outcome (e.g. the reply was lost). If the job is in
                // the queue the commit happened: the answers are durable and
                // the submission is finished as accepted — releasing the
                // claims would let the same cards be answered (and earn XP)
                // twice. Otherwise undo the claims (best effort) so the
                // learner may answer again; nothing is acknowledged.
                match self.queue.status(&fresh_set.job_id).await {
                    Ok(Some(status @ (JobStatus::Queued | JobStatus::Done))) => {
                        (status, None, None)
                    }
                    _ => {
                        self.shared.health.mark_failed(now);
                        self.ledger
                            .release_claims(
                                user,
                                &season.id,
                                &fresh_set.claims,
                                &[LedgerSource::Cache],
                            )
                            .await;
                        return Err(CoreError::Unavailable(format!(
                            "answers could not be made durable: {e}"
                        )));
                    }
                }
            }
        };
        let mut applied = applied;
        if mastery.is_none() && fast.keeps_mastery() {
            // The schedule's counts were not exact (e.g. written by an older
            // version): the store's counts, corrected by this batch.
            applied.stored_before = self.stored_rows(user, &season.id, &questions).await?;
        }
        let outcome = self
            .finish_submission(
                sub,
                day,
                fresh_set,
                &applied,
                replays.len(),
                now,
                FinishWith {
                    status,
                    total_due,
                    mastery,
                },
            )
            .await?;
        Ok(FastTry::Done(Box::new(outcome)))
    }

    /// The store's row of each question (`None`: no row).
    async fn stored_rows(
        &self,
        user: &UserId,
        season: &SeasonId,
        questions: &[QuestionId],
    ) -> CoreResult<Map<QuestionId, Option<MemoryTracker>>> {
        let stored: Map<QuestionId, MemoryTracker> = self
            .trackers
            .get_trackers(user, season, questions)
            .await?
            .into_iter()
            .map(|t| (t.key.question.clone(), t))
            .collect();
        Ok(questions
            .iter()
            .map(|q| (q.clone(), stored.get(q).cloned()))
            .collect())
    }

    /// The answers, XP and ledger claims of the fresh answers of a
    /// submission (pure: nothing is read or written).
    fn fresh_answers(
        &self,
        sub: &Submitted<'_>,
        day: &DayBoundary,
        servings: &[integrity::Located],
        fresh: &[usize],
        now: DateTime<Utc>,
    ) -> CoreResult<FreshSet> {
        let today = day.local_day(now);
        let job_id = integrity::new_job_id(&self.shared, sub.user)?;
        let batch = self.shared.ids.next_id("rv");
        let answers: Vec<AnswerInput> = fresh
            .iter()
            .map(|&i| {
                let a = &sub.submission.answers[i];
                let review_id = match &sub.scoped[i] {
                    Some(r) => r.clone(),
                    None => ReviewId::new(format!("{batch}:{i}"))?,
                };
                Ok(AnswerInput {
                    question_id: a.question_id.clone(),
                    signals: a.signals,
                    review_id: Some(review_id),
                })
            })
            .collect::<CoreResult<_>>()?;
        // XP: only answers whose item has not earned XP today.
        let eligible: Vec<bool> = fresh
            .iter()
            .map(|&i| {
                servings[i]
                    .as_ref()
                    .is_none_or(|(s, _)| s.xp_day != Some(today))
            })
            .collect();
        let per_answer = per_answer_xp(&answers, &eligible);
        let xp: i64 = per_answer.iter().sum();
        let mut claims = Vec::with_capacity(fresh.len());
        for (k, &i) in fresh.iter().enumerate() {
            let Some((serving, source)) = &servings[i] else {
                continue;
            };
            claims.push((
                crate::ports::ServingClaim {
                    item: integrity::question_key(&answers[k].question_id),
                    served_at: serving.served_at,
                    receipt: crate::ports::AnswerReceipt {
                        review_id: answers[k]
                            .review_id
                            .clone()
                            .ok_or_else(|| CoreError::Internal("review id missing".into()))?,
                        job_id: job_id.clone(),
                        xp: per_answer[k],
                        answered_at: now,
                    },
                    xp_day: if eligible[k] {
                        Some(today)
                    } else {
                        serving.xp_day
                    },
                    prev_xp_day: serving.xp_day,
                },
                *source,
            ));
        }
        Ok(FreshSet {
            answers,
            xp,
            claims,
            job_id,
            today,
        })
    }

    /// Schedules, binds, persists and rewards the fresh answers of a
    /// submission on the general path. `None` if the ledger commit lost a
    /// race (nothing done).
    async fn apply_fresh_answers(
        &self,
        sub: &Submitted<'_>,
        day: &DayBoundary,
        servings: &[integrity::Located],
        fresh: &[usize],
        replayed: usize,
        now: DateTime<Utc>,
    ) -> CoreResult<Option<SubmitOutcome>> {
        let user = sub.user;
        let season = sub.season;
        let fresh_set = self.fresh_answers(sub, day, servings, fresh, now)?;
        let applied = self
            .apply_answers(
                sub.idx,
                user,
                season,
                day,
                &fresh_set.answers,
                AnswerPath::Review,
                ReviewSource::Review,
                now,
            )
            .await?;
        let claims = &fresh_set.claims;
        if !self.ledger.commit_claims(user, &season.id, claims).await? {
            return Ok(None);
        }
        let sources: Vec<LedgerSource> = {
            let mut s: Vec<LedgerSource> = claims.iter().map(|(_, s)| *s).collect();
            s.dedup();
            s
        };
        let (_, status) = match self
            .persist_records(fresh_set.job_id.clone(), applied.records.clone())
            .await
        {
            Ok(done) => done,
            Err(e) => {
                self.ledger
                    .release_claims(user, &season.id, claims, &sources)
                    .await;
                return Err(e);
            }
        };
        // The answers are durable: credit the boards (once, here; a replay
        // never credits them again).
        super::leaderboard::add_xp(
            &self.shared,
            self.leaderboard.as_ref(),
            user,
            sub.submission.subject.as_ref(),
            fresh_set.today,
            fresh_set.xp,
        )
        .await;
        let outcome = self
            .finish_submission(
                sub,
                day,
                fresh_set,
                &applied,
                replayed,
                now,
                FinishWith {
                    status,
                    total_due: None,
                    mastery: None,
                },
            )
            .await?;
        Ok(Some(outcome))
    }

    /// The end of an accepted submission on either path: the XP record in
    /// the store (the one store write of the fast path), then the mastery
    /// counts and the remaining due items (taken from the commit when it
    /// counted them).
    #[allow(clippy::too_many_arguments)]
    async fn finish_submission(
        &self,
        sub: &Submitted<'_>,
        day: &DayBoundary,
        fresh_set: FreshSet,
        applied: &Applied,
        replayed: usize,
        now: DateTime<Utc>,
        with: FinishWith,
    ) -> CoreResult<SubmitOutcome> {
        let correct = fresh_set
            .answers
            .iter()
            .filter(|a| a.signals.is_correct)
            .count();
        self.record_review_xp(
            sub.user,
            sub.submission.subject.as_ref(),
            sub.submission.topic.as_ref(),
            &fresh_set.job_id,
            fresh_set.xp,
            fresh_set.answers.len(),
            correct,
            day.local_day(now),
            now,
        )
        .await?;
        let mastery = match with.mastery {
            Some(m) => m,
            None => {
                self.mastery_after(sub.user, &sub.season.id, applied, &with.status)
                    .await?
            }
        };
        let remaining = match with.total_due {
            Some(t) => t,
            None => {
                self.remaining_due(
                    sub.user,
                    sub.season,
                    sub.submission.subject.as_ref(),
                    sub.submission.topic.as_ref(),
                    now,
                )
                .await?
            }
        };
        Ok(SubmitOutcome {
            processed: fresh_set.answers.len(),
            replayed,
            xp_earned: fresh_set.xp,
            remaining_items: remaining,
            mastery,
            job_id: fresh_set.job_id,
            job_status: with.status,
        })
    }

    /// Records the XP of a review submission as a gameplay session whose id
    /// is derived from the job, so recording it twice (a replay healing a
    /// failed first attempt) changes nothing. The leaderboards are credited
    /// with the answers' acceptance, not here.
    #[allow(clippy::too_many_arguments)]
    async fn record_review_xp(
        &self,
        user: &UserId,
        subject: Option<&SubjectId>,
        topic: Option<&TopicId>,
        job: &JobId,
        xp: i64,
        answers: usize,
        correct: usize,
        local_day: chrono::NaiveDate,
        at: DateTime<Utc>,
    ) -> CoreResult<()> {
        let session = GameplaySession {
            id: SessionId::new(format!("gs-{job}"))?,
            user: user.clone(),
            kind: SessionKind::Review,
            lesson: None,
            subject: subject.cloned(),
            topic: topic.cloned(),
            xp_earned: xp,
            score: i64::try_from(correct * 100 / answers.max(1)).unwrap_or(0),
            completed: true,
            created_at: at,
            local_day,
            raw_data: serde_json::json!({ "answers": answers, "correct": correct }),
        };
        match self.activity.record_session(&session).await {
            Ok(()) | Err(crate::error::PortError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The outcome of a submission made only of replayed review ids: the
    /// original job and XP, nothing changed (except healing an XP record
    /// that failed the first time).
    async fn replayed_outcome(
        &self,
        user: &UserId,
        season: &Season,
        submission: &ReviewSubmission,
        receipts: &[crate::ports::AnswerReceipt],
        now: DateTime<Utc>,
    ) -> CoreResult<SubmitOutcome> {
        let first = receipts
            .first()
            .ok_or_else(|| CoreError::Internal("replay without receipts".into()))?;
        let job_id = first.job_id.clone();
        let same_job: Vec<&crate::ports::AnswerReceipt> =
            receipts.iter().filter(|r| r.job_id == job_id).collect();
        let xp: i64 = same_job.iter().map(|r| r.xp).sum();
        let profile = self.profiles.or_default(user).await?;
        let day = Shared::day_boundary_at(&profile, first.answered_at);
        self.record_review_xp(
            user,
            submission.subject.as_ref(),
            submission.topic.as_ref(),
            &job_id,
            xp,
            same_job.len(),
            same_job.iter().filter(|r| r.xp > 0).count(),
            day.local_day(first.answered_at),
            first.answered_at,
        )
        .await?;
        let job_status = self
            .queue
            .status(&job_id)
            .await
            .ok()
            .flatten()
            .unwrap_or(JobStatus::Done);
        let mastery = self
            .trackers
            .mastery_counts(user, Some(&season.id), None)
            .await?;
        let remaining = self
            .remaining_due(
                user,
                season,
                submission.subject.as_ref(),
                submission.topic.as_ref(),
                now,
            )
            .await?;
        Ok(SubmitOutcome {
            processed: 0,
            replayed: receipts.len(),
            xp_earned: xp,
            remaining_items: remaining,
            mastery,
            job_id,
            job_status,
        })
    }

    async fn remaining_due(
        &self,
        user: &UserId,
        season: &Season,
        subject: Option<&SubjectId>,
        topic: Option<&TopicId>,
        now: DateTime<Utc>,
    ) -> CoreResult<u64> {
        if topic.is_none() && season.enable_cache && self.shared.health.should_try(now) {
            if let Ok(Some(slice)) = self.cache.due(user, &season.id, subject, now, 0).await {
                return Ok(slice.total_due);
            }
        }
        let filter = DueFilter {
            subject: subject.cloned(),
            topic: topic.cloned(),
        };
        Ok(self
            .trackers
            .count_due(user, &season.id, &filter, now)
            .await?)
    }

    /// `get_persistence_status`: only the job's owner and System Managers
    /// see it (anyone else gets "not found", revealing nothing).
    pub async fn get_persistence_status(
        &self,
        actor: &Actor,
        job: &JobId,
    ) -> CoreResult<JobStatus> {
        if !actor.is_admin() && !integrity::owns_job(&actor.user, job) {
            return Err(CoreError::not_found(format!(
                "persistence job {job} not found"
            )));
        }
        self.queue
            .status(job)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("persistence job {job} not found")))
    }
}

/// XP of each answer: 10 per correct answer, plus 2 for each answer of the
/// longest run of correct answers (the combo) — only for `eligible`
/// answers, whose item has not earned XP earlier the same learner day.
/// Sums to [`gamification::review_xp`] over the eligible answers.
fn per_answer_xp(answers: &[AnswerInput], eligible: &[bool]) -> Vec<i64> {
    let flags: Vec<bool> = answers
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .map(|(a, _)| a.signals.is_correct)
        .collect();
    let combo = gamification::max_combo(&flags) as usize;
    // The first run of `combo` correct answers gets the bonus.
    let mut run_end = None;
    let mut run = 0usize;
    for (i, ok) in flags.iter().enumerate() {
        run = if *ok { run + 1 } else { 0 };
        if combo > 0 && run == combo && run_end.is_none() {
            run_end = Some(i);
        }
    }
    let bonus_range = run_end.map(|end| (end + 1 - combo)..=end);
    let mut k = 0usize;
    answers
        .iter()
        .zip(eligible)
        .map(|(a, e)| {
            if !*e {
                return 0;
            }
            let mut xp = if a.signals.is_correct { 10 } else { 0 };
            if bonus_range.as_ref().is_some_and(|r| r.contains(&k)) {
                xp += 2;
            }
            k += 1;
            xp
        })
        .collect()
}

#[cfg(test)]
mod xp_tests {
    use super::*;

    fn ans(ok: bool) -> AnswerInput {
        AnswerInput {
            question_id: QuestionId::parse("s:0").unwrap(),
            signals: AnswerSignals::review(ok, 1000),
            review_id: None,
        }
    }

    #[test]
    fn per_answer_xp_sums_to_review_xp_and_skips_ineligible() {
        let flags = [true, true, false, true, true, true, false];
        let answers: Vec<AnswerInput> = flags.iter().map(|f| ans(*f)).collect();
        let all = vec![true; flags.len()];
        let xp = per_answer_xp(&answers, &all);
        let correct = flags.iter().filter(|f| **f).count() as u32;
        assert_eq!(
            xp.iter().sum::<i64>(),
            gamification::review_xp(correct, flags.len() as u32, gamification::max_combo(&flags))
        );
        assert_eq!(xp, vec![10, 10, 0, 12, 12, 12, 0]);
        let some = vec![true, false, true, true, false, true, true];
        let xp = per_answer_xp(&answers, &some);
        assert_eq!(xp[1], 0);
        assert_eq!(xp[4], 0);
        assert!(xp.iter().sum::<i64>() <= 12 * 5);
    }
}

/// What the shared safe-mode budget decided, remembered by one process.
#[derive(Default)]
struct SafeModeBlocks {
    global_until: Option<DateTime<Utc>>,
    learners: HashMap<UserId, DateTime<Utc>>,
}

impl SafeModeBlocks {
    /// Most learners remembered (older entries are pruned first).
    const MAX: usize = 100_000;

    fn blocked(&self, user: &UserId, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let until = [self.global_until, self.learners.get(user).copied()]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()?;
        Some(
            (until - now)
                .to_std()
                .unwrap_or_default()
                .max(std::time::Duration::from_secs(1)),
        )
    }

    fn remember(
        &mut self,
        user: &UserId,
        now: DateTime<Utc>,
        admission: &Admission,
        interval: std::time::Duration,
    ) {
        let after =
            |d: std::time::Duration| now + chrono::Duration::from_std(d).unwrap_or_default();
        match admission {
            Admission::Allowed => {
                if self.learners.len() >= Self::MAX {
                    self.learners.retain(|_, until| *until > now);
                    if self.learners.len() >= Self::MAX {
                        self.learners.clear();
                    }
                }
                self.learners.insert(user.clone(), after(interval));
            }
            Admission::Denied {
                retry_after,
                reason: crate::safe_mode::DenyReason::Global,
            } => self.global_until = Some(after(*retry_after)),
            Admission::Denied {
                retry_after,
                reason: crate::safe_mode::DenyReason::PerUser,
            } => {
                self.learners.insert(user.clone(), after(*retry_after));
            }
        }
    }
}
