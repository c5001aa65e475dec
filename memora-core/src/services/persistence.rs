//! The write path shared by review and lesson submissions, the persistence
//! worker step, and the single-flight guard behind cache rehydration.
//!
//! Invariant: **an answer is acknowledged only once it is durable** — either
//! in the persistence queue (`enqueue` returned `Ok`) or, when the queue is
//! unavailable, committed to the store synchronously. If both fail the
//! submission fails with 503 and nothing is acknowledged. A failing
//! enqueue opens the queue breaker (`Shared::queue_health`): until it
//! closes, answers go straight to the store (one submit per retry interval
//! tries the queue again), and if the store fails then the queue is tried
//! after all. The queue breaker never drives safe mode. The cache is
//! updated after the answer is durable and is never the only copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::domain::{MemoryTracker, ReviewRecord};
use crate::error::{CoreError, CoreResult};
use crate::ids::{JobId, SeasonId, UserId};
use crate::ports::{JobStatus, PersistJob, PersistOutcome};

use super::ReviewService;

/// Collapses concurrent identical work (e.g. 100 simultaneous cache misses
/// of one schedule) into one execution: callers with the same key run one
/// after another, and the work itself re-checks whether it is still needed.
#[derive(Default)]
pub struct SingleFlight {
    locks: Mutex<HashMap<String, Arc<futures::lock::Mutex<()>>>>,
    /// Flights finished so far (every key): [`SingleFlight::epoch`].
    finished: std::sync::atomic::AtomicU64,
}

impl SingleFlight {
    /// Runs `work` while holding the lock for `key`.
    pub async fn run<F, Fut, T>(&self, key: &str, work: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.run_since(key, None, |_| work()).await
    }

    /// How many flights have finished: taken before looking for the result
    /// of a flight, and given to [`SingleFlight::run_since`].
    pub fn epoch(&self) -> u64 {
        self.finished.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// [`SingleFlight::run`], telling `work` whether another flight may
    /// have done the work since the caller last looked (`true` unless
    /// `since` is the [`SingleFlight::epoch`] taken before it looked, no
    /// flight of any key finished since, and nobody held `key`).
    pub async fn run_since<F, Fut, T>(&self, key: &str, since: Option<u64>, work: F) -> T
    where
        F: FnOnce(bool) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let (guard, waited) = match Arc::clone(&lock).try_lock_owned() {
            Some(guard) => (guard, false),
            None => (Arc::clone(&lock).lock_owned().await, true),
        };
        let maybe_done = waited || since.is_none_or(|e| e != self.epoch());
        let out = work(maybe_done).await;
        // Counted before the lock is released: whoever takes it next, or
        // looks for the result after this, sees a new epoch.
        self.finished
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        drop(guard);
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Our clone goes while the map is locked, as every holder's does
        // (clones are taken under it too): so the last holder to get here
        // sees only the map's and forgets the key. (Checking the count with
        // our clone still alive missed that when two holders met here.)
        drop(lock);
        if map.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(key);
        }
        out
    }

    /// Keys currently held or awaited (tests, metrics).
    pub fn in_flight(&self) -> usize {
        self.locks.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The newest row per (user, season, question) of a set of records.
pub(crate) fn latest_rows(
    records: &[ReviewRecord],
) -> BTreeMap<(UserId, SeasonId), Vec<MemoryTracker>> {
    let mut latest: BTreeMap<_, MemoryTracker> = BTreeMap::new();
    for r in records {
        let key = r.tracker.key.clone();
        match latest.get(&key) {
            Some(existing) if existing.state.last_review > r.tracker.state.last_review => {}
            _ => {
                latest.insert(key, r.tracker.clone());
            }
        }
    }
    let mut grouped: BTreeMap<(UserId, SeasonId), Vec<MemoryTracker>> = BTreeMap::new();
    for (k, row) in latest {
        grouped.entry((k.user, k.season)).or_default().push(row);
    }
    grouped
}

impl ReviewService {
    /// Makes a batch of answers durable (queue, or store when the queue is
    /// down), then refreshes the cache. Returns the job id and status.
    pub(crate) async fn persist_records(
        &self,
        id: JobId,
        records: Vec<ReviewRecord>,
    ) -> CoreResult<(JobId, JobStatus)> {
        let job = PersistJob { id, records };
        let breaker = &self.shared.queue_health;
        let now = self.shared.now();
        // The queue breaker: while open (and between its retries) the queue
        // is skipped and the answers go to the store synchronously.
        let queue_err = if breaker.should_try(now) {
            match self.queue.enqueue(&job).await {
                Ok(status) => {
                    breaker.mark_ok();
                    self.refresh_cache(&job.id, &job.records).await;
                    return Ok((job.id, status));
                }
                Err(e) => {
                    breaker.mark_failed(now);
                    Some(e)
                }
            }
        } else {
            None
        };
        let status = match self.trackers.persist_batch(&job.records).await {
            Ok(_) => {
                let _ = self.queue.record_status(&job.id, &JobStatus::Done).await;
                JobStatus::Done
            }
            Err(store_err) => match queue_err {
                Some(queue_err) => {
                    // The enqueue may have happened with only its reply
                    // lost: then the job is durable and the answers must be
                    // accepted (refusing them would give the cards back
                    // for a second answer while the worker persists the
                    // first).
                    if let Ok(Some(status @ (JobStatus::Queued | JobStatus::Done))) =
                        self.queue.status(&job.id).await
                    {
                        breaker.mark_ok();
                        self.refresh_cache(&job.id, &job.records).await;
                        return Ok((job.id, status));
                    }
                    return Err(CoreError::Unavailable(format!(
                        "answers could not be made durable (queue: {queue_err}; store: {store_err})"
                    )));
                }
                // The breaker skipped the queue and the store failed: try
                // the queue after all before refusing the answers.
                None => match self.queue.enqueue(&job).await {
                    Ok(status) => {
                        breaker.mark_ok();
                        status
                    }
                    Err(queue_err) => {
                        return Err(CoreError::Unavailable(format!(
                            "answers could not be made durable (queue: {queue_err}; store: {store_err})"
                        )));
                    }
                },
            },
        };
        self.refresh_cache(&job.id, &job.records).await;
        Ok((job.id, status))
    }

    /// Hands a recorded play's pending tracker batch (see
    /// [`ActivityStore::record_session_with_batch`](crate::ports::ActivityStore::record_session_with_batch))
    /// to the durable write path, then forgets it. Handing a batch over
    /// twice is harmless (persistence is idempotent per review id and never
    /// regresses a card), so a failure to forget it only costs a repeat.
    pub(crate) async fn hand_over_batch(
        &self,
        batch: PersistJob,
    ) -> CoreResult<(JobId, JobStatus)> {
        let out = self.persist_records(batch.id, batch.records).await?;
        if let Err(e) = self.activity.clear_pending_batch(&out.0).await {
            self.shared
                .audit(
                    &crate::domain::Actor::system(),
                    "lesson.batch_clear_failed",
                    serde_json::json!({"job": out.0.as_str(), "error": e.to_string()}),
                )
                .await;
        }
        Ok(out)
    }

    /// Recovery job: hands over every tracker batch recorded with its play
    /// at least `older_than` ago and still pending (the play's request was
    /// interrupted between recording the play and queueing its batch, and
    /// nobody retried). Returns how many batches were handed over; stops at
    /// the first failure (the queue and the store are then both down).
    pub async fn resume_pending_batches(
        &self,
        older_than: chrono::Duration,
        limit: usize,
    ) -> CoreResult<u64> {
        let before = self.shared.now() - older_than;
        let batches = self.activity.pending_batches(before, limit).await?;
        let mut n = 0;
        for batch in batches {
            self.hand_over_batch(batch).await?;
            n += 1;
        }
        if n > 0 {
            self.shared
                .audit(
                    &crate::domain::Actor::system(),
                    "lesson.batches_resumed",
                    serde_json::json!({"batches": n}),
                )
                .await;
        }
        Ok(n)
    }

    /// Writes the newest state of each record into the cache (best effort;
    /// a failure switches to safe mode, the data is already durable).
    pub(crate) async fn refresh_cache(&self, job: &JobId, records: &[ReviewRecord]) {
        let now = self.shared.now();
        let groups = latest_rows(records);
        if !self.shared.health.should_try(now) {
            self.mark_stale(groups.into_keys()).await;
            return;
        }
        let mut failed = Vec::new();
        for ((user, season), rows) in groups {
            if !failed.is_empty() {
                failed.push((user, season));
                continue;
            }
            match self.cache.refresh(&user, &season, &rows, job).await {
                Ok(()) => self.shared.health.mark_ok(),
                Err(_) => {
                    self.shared.health.mark_failed(now);
                    failed.push((user, season));
                }
            }
        }
        self.mark_stale(failed).await;
    }

    /// Remembers schedules that missed a write while the cache was down;
    /// they are dropped (and so rehydrated from the store) on next use in
    /// this process, and by every process before it leaves safe mode (the
    /// store keeps them: [`crate::ports::Coordination::mark_stale`]).
    async fn mark_stale(&self, keys: impl IntoIterator<Item = (UserId, SeasonId)>) {
        let keys: Vec<(UserId, SeasonId)> = keys.into_iter().collect();
        if keys.is_empty() {
            return;
        }
        if let Ok(mut set) = self.stale_schedules.lock() {
            set.extend(keys.iter().cloned());
        }
        // Best effort: if the store cannot take them, this process's set
        // still heals them here.
        let _ = self.shared.coordination.mark_stale(&keys).await;
    }

    /// Drops from the cache every schedule that missed writes while the
    /// cache was unreachable — those remembered by the store (marked by
    /// any process, before or after a restart) and by this process — and
    /// forgets them. Run before leaving safe mode and at start-up; until it
    /// succeeds the cache must not be trusted. Returns how many were
    /// dropped.
    pub async fn drain_stale_schedules(&self) -> CoreResult<usize> {
        const PAGE: usize = 500;
        let mut dropped = 0;
        loop {
            let marks = self.shared.coordination.stale_schedules(PAGE).await?;
            if marks.is_empty() {
                break;
            }
            for m in &marks {
                self.cache
                    .clear_user(&m.user, &m.season)
                    .await
                    .map_err(|e| CoreError::Unavailable(format!("cache: {e}")))?;
            }
            // A schedule marked again meanwhile keeps its mark (and is
            // dropped again by the next page or drain).
            self.shared.coordination.clear_stale(&marks).await?;
            if let Ok(mut set) = self.stale_schedules.lock() {
                for m in &marks {
                    set.remove(&(m.user.clone(), m.season.clone()));
                }
            }
            dropped += marks.len();
        }
        let local: Vec<(UserId, SeasonId)> = self
            .stale_schedules
            .lock()
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        for key in &local {
            self.cache
                .clear_user(&key.0, &key.1)
                .await
                .map_err(|e| CoreError::Unavailable(format!("cache: {e}")))?;
            if let Ok(mut set) = self.stale_schedules.lock() {
                set.remove(key);
            }
        }
        Ok(dropped + local.len())
    }

    /// Drops the cached schedule of (user, season) if it missed writes
    /// while the cache was down. Returns an error only if the cache fails.
    pub(crate) async fn heal_stale_schedule(
        &self,
        user: &UserId,
        season: &SeasonId,
    ) -> crate::error::PortResult<()> {
        let key = (user.clone(), season.clone());
        let stale = self
            .stale_schedules
            .lock()
            .map(|set| set.contains(&key))
            .unwrap_or(false);
        if stale {
            self.cache.clear_user(user, season).await?;
            if let Ok(mut set) = self.stale_schedules.lock() {
                set.remove(&key);
            }
        }
        Ok(())
    }

    /// The worker step: persists one queued job idempotently, then makes the
    /// cache converge on what was persisted (never overwriting newer cache
    /// entries). Errors are returned for the queue's retry policy.
    pub async fn process_persist_job(&self, job: &PersistJob) -> CoreResult<PersistOutcome> {
        let outcome = self.trackers.persist_batch(&job.records).await?;
        self.refresh_cache(&job.id, &job.records).await;
        Ok(outcome)
    }

    /// [`Self::process_persist_job`] for several jobs at once: one store
    /// batch for all their records, then each job's own cache refresh
    /// ([`crate::ports::DueCache::refresh`] knows what a job's commit wrote,
    /// not what a batch of jobs did). Takes the jobs by value: their records
    /// move into the one batch instead of being copied.
    pub async fn process_persist_jobs(&self, jobs: Vec<PersistJob>) -> CoreResult<PersistOutcome> {
        if let [one] = jobs.as_slice() {
            return self.process_persist_job(one).await;
        }
        let mut records = Vec::with_capacity(jobs.iter().map(|j| j.records.len()).sum());
        let mut bounds = Vec::with_capacity(jobs.len());
        for job in jobs {
            let start = records.len();
            records.extend(job.records);
            bounds.push((job.id, start..records.len()));
        }
        let outcome = self.trackers.persist_batch(&records).await?;
        for (id, range) in bounds {
            self.refresh_cache(&id, &records[range]).await;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_flight_says_whether_another_may_have_done_the_work() {
        let sf = SingleFlight::default();
        let e = sf.epoch();
        assert!(
            !sf.run_since("k", Some(e), |m| async move { m }).await,
            "nothing ran since"
        );
        assert!(
            sf.run_since("k", Some(e), |m| async move { m }).await,
            "a flight finished since"
        );
        assert!(
            sf.run_since("k", None, |m| async move { m }).await,
            "no epoch: always"
        );
        let e = sf.epoch();
        sf.run("other", || async {}).await;
        assert!(
            sf.run_since("k", Some(e), |m| async move { m }).await,
            "a flight of any key counts"
        );
        // A holder of the key: the next one waits, and is told so.
        let sf = Arc::new(sf);
        let e = sf.epoch();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let sf = sf.clone();
            tokio::spawn(async move {
                sf.run("k", || async move {
                    let _ = held_tx.send(());
                    let _ = rx.await;
                })
                .await
            })
        };
        held_rx.await.unwrap();
        let waiter = {
            let sf = sf.clone();
            tokio::spawn(async move { sf.run_since("k", Some(e), |m| async move { m }).await })
        };
        tokio::task::yield_now().await;
        tx.send(()).unwrap();
        holder.await.unwrap();
        assert!(waiter.await.unwrap(), "it waited for the holder");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn single_flight_serialises_same_key() {
        let sf = Arc::new(SingleFlight::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let cached = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut handles = Vec::new();
        for _ in 0..50 {
            let (sf, loads, cached) = (sf.clone(), loads.clone(), cached.clone());
            handles.push(tokio::spawn(async move {
                sf.run("k", || async {
                    if !cached.load(Ordering::SeqCst) {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        cached.store(true, Ordering::SeqCst);
                    }
                })
                .await
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(sf.in_flight(), 0, "keys are forgotten when idle");
    }
}
