//! Conformance suite of [`PersistenceQueue`]: what the core relies on from
//! any queue (durable Redis streams, the in-memory write-through queue).

use std::sync::Arc;

use memora_core::domain::{MemoryTracker, ReviewLogEntry, ReviewRecord, ReviewSource};
use memora_core::ids::{JobId, ReviewId, SeasonId, UserId};
use memora_core::ports::{JobStatus, PersistJob, PersistenceQueue};
use memora_core::srs::Grade;

use super::cache::{row, t0};

/// A review record for `question` answered at `t0 + minute` minutes.
pub fn record(
    u: &UserId,
    s: &SeasonId,
    question: &str,
    minute: i64,
    review_id: &str,
) -> ReviewRecord {
    let tracker: MemoryTracker = row(u, s, question, Some("math"), minute + 1440, Some(minute));
    ReviewRecord {
        log: ReviewLogEntry {
            review_id: ReviewId::new(review_id).expect("review id"),
            key: tracker.key.clone(),
            source: ReviewSource::Review,
            grade: Grade::Good,
            is_correct: true,
            duration_ms: 1200,
            attempts: 1,
            reviewed_at: t0() + chrono::Duration::minutes(minute),
            elapsed_days: 2,
            scheduler: tracker.state.kind,
            state_after: tracker.state.clone(),
        },
        tracker,
    }
}

/// A job of `n` records with unique review ids.
pub fn job(id: &str, u: &UserId, s: &SeasonId, n: usize) -> PersistJob {
    PersistJob {
        id: JobId::new(id).expect("job id"),
        records: (0..n)
            .map(|i| record(u, s, &format!("{id}-q{i}"), i as i64, &format!("{id}-r{i}")))
            .collect(),
    }
}

/// `enqueue` answers `Queued` (durable, pending) or `Done` (write-through);
/// `status` agrees; `depth` counts queued jobs only.
pub async fn enqueue_status_depth(qu: Arc<dyn PersistenceQueue>, s: &SeasonId) {
    let u = super::cache::user("alice");
    let before = qu.depth().await.expect("depth");
    let j = job("job-1", &u, s, 3);
    let st = qu.enqueue(&j).await.expect("enqueue");
    assert!(matches!(st, JobStatus::Queued | JobStatus::Done), "{st:?}");
    assert_eq!(qu.status(&j.id).await.expect("status"), Some(st.clone()));
    let after = qu.depth().await.expect("depth");
    match st {
        JobStatus::Queued => assert_eq!(after, before + 1),
        _ => assert_eq!(after, before),
    }
}

/// Unknown jobs have no status; `record_status` is readable back.
pub async fn record_and_read_status(qu: Arc<dyn PersistenceQueue>) {
    let id = JobId::new("job-unknown").expect("id");
    assert_eq!(qu.status(&id).await.expect("status"), None);
    qu.record_status(&id, &JobStatus::Done)
        .await
        .expect("record");
    assert_eq!(qu.status(&id).await.expect("status"), Some(JobStatus::Done));
    qu.record_status(&id, &JobStatus::Failed("boom".into()))
        .await
        .expect("record");
    assert!(matches!(
        qu.status(&id).await.expect("status"),
        Some(JobStatus::Failed(_))
    ));
}
