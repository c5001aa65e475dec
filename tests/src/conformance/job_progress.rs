//! Conformance suite of [`JobProgressStore`](memora_core::ports::JobProgressStore): the shared progress of
//! background jobs (season cache rebuilds) every process reads.

use chrono::Duration;
use memora_core::domain::TrackerKey;
use memora_core::ids::JobId;
use memora_core::ports::JobProgress;

use super::store::{Stores, at, q, season, t0, user};

fn progress(id: &str, owner: &str) -> JobProgress {
    JobProgress {
        id: JobId::new(id).expect("job id"),
        season: season(2026),
        estimated: 1_000_000,
        processed: 0,
        users: 0,
        status: "running".to_owned(),
        resume_after: None,
        owner: owner.to_owned(),
        started_at: t0(),
        updated_at: t0(),
    }
}

/// Records round-trip exactly (the resume key included); the owner may
/// update its record, another process may not; a takeover succeeds once,
/// only against the `updated_at` it saw, and makes the taker the owner.
pub async fn progress_round_trip_owner_and_takeover(s: &Stores) {
    let p = &s.job_progress;
    let id = JobId::new("rebuild-1").expect("id");
    assert_eq!(p.get_progress(&id).await.expect("get"), None);
    let mut mine = progress("rebuild-1", "proc-a");
    assert!(p.save_progress(&mine).await.expect("save"));
    assert_eq!(p.get_progress(&id).await.expect("get"), Some(mine.clone()));

    mine.processed = 1000;
    mine.users = 3;
    mine.resume_after = Some(TrackerKey {
        user: user("u-003"),
        season: season(2026),
        question: q("stage-9:4"),
    });
    mine.updated_at = at(1);
    assert!(p.save_progress(&mine).await.expect("save"));
    assert_eq!(p.get_progress(&id).await.expect("get"), Some(mine.clone()));

    // Another process cannot write over it, nor create it anew.
    let mut theirs = mine.clone();
    theirs.owner = "proc-b".to_owned();
    theirs.status = "completed".to_owned();
    assert!(!p.save_progress(&theirs).await.expect("save"));
    assert_eq!(p.get_progress(&id).await.expect("get"), Some(mine.clone()));

    // Takeover: only against the heartbeat it saw, once.
    let later = at(2);
    assert_eq!(
        p.claim_progress(&id, at(0), "proc-b", later)
            .await
            .expect("claim"),
        None
    );
    let claimed = p
        .claim_progress(&id, mine.updated_at, "proc-b", later)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claimed.owner, "proc-b");
    assert_eq!(claimed.status, "running");
    assert_eq!(claimed.updated_at, later);
    assert_eq!(claimed.processed, 1000);
    assert_eq!(claimed.resume_after, mine.resume_after);
    assert_eq!(
        p.claim_progress(&id, mine.updated_at, "proc-c", later + Duration::hours(1))
            .await
            .expect("claim"),
        None,
        "a second taker loses"
    );
    // The old owner is fenced off; the new one writes.
    assert!(!p.save_progress(&mine).await.expect("save"));
    let mut done = claimed.clone();
    done.status = "failed: cache: down".to_owned();
    assert!(p.save_progress(&done).await.expect("save"));
    assert_eq!(p.get_progress(&id).await.expect("get"), Some(done));
    assert_eq!(
        p.claim_progress(&JobId::new("nope").expect("id"), t0(), "x", t0())
            .await
            .expect("claim"),
        None
    );
    // Other jobs are independent.
    assert!(
        p.save_progress(&progress("rebuild-2", "proc-c"))
            .await
            .expect("save")
    );
    assert_eq!(
        p.get_progress(&JobId::new("rebuild-2").expect("id"))
            .await
            .expect("get")
            .map(|x| x.owner),
        Some("proc-c".to_owned())
    );
}
