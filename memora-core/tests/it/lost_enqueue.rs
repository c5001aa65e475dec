//! The general path when an enqueue's reply is lost: the job reached the
//! queue, the client was told nothing, and the store cannot take the
//! synchronous fallback write. The submission must be accepted (the job is
//! durable), not refused with its cards given back for a second answer
//! while the worker persists the first.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{TimeZone, Utc};
use memora_core::CoreError;
use memora_core::ids::*;

use crate::faults::{FlakyQueue, WritesDown};
use crate::support::*;

fn tagged(ids: &[QuestionId], tag: &str) -> memora_core::services::reviews::ReviewSubmission {
    let mut sub = answers(ids, true, 2500);
    for (n, a) in sub.answers.iter_mut().enumerate() {
        a.review_id = Some(ReviewId::new(format!("{tag}-{n}")).unwrap());
    }
    sub
}

#[tokio::test]
async fn answers_whose_enqueue_reply_was_lost_are_accepted_once_when_the_store_is_down() {
    let lose = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Mutex::new(Vec::new()));
    let (l, d, k) = (lose.clone(), down.clone(), held.clone());
    let h = harness_with(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        move |mut p| {
            p.queue = Arc::new(FlakyQueue {
                inner: p.queue.clone(),
                fail: l,
                held: Some(k),
            });
            p.trackers = Arc::new(WritesDown {
                inner: p.trackers.clone(),
                down: d,
            });
            p
        },
    )
    .await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    assert!(!ids.is_empty());
    let logged = h.backend.review_log_len();
    lose.store(true, Ordering::SeqCst);
    down.store(true, Ordering::SeqCst);
    let sub = tagged(&ids, "lost");
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .expect("the job is in the queue: accepted");
    assert_eq!(out.processed, ids.len());
    // The cards were not given back: other review ids are refused, the
    // same ones are a replay.
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "second"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::NotServed(_)), "{err}");
    let again = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    assert_eq!((again.processed, again.replayed), (0, ids.len()));
    // The worker persists the held job once the store is back: one log
    // entry per answer, no more.
    down.store(false, Ordering::SeqCst);
    let jobs = held.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    h.app.reviews().process_persist_job(&jobs[0]).await.unwrap();
    assert_eq!(h.backend.review_log_len(), logged + ids.len());
}

#[tokio::test]
async fn answers_that_reached_neither_queue_nor_store_are_refused_and_given_back() {
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let h = harness_with(
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        move |mut p| {
            p.trackers = Arc::new(WritesDown {
                inner: p.trackers.clone(),
                down: d,
            });
            p
        },
    )
    .await;
    h.backend.set_queue_available(false);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    down.store(true, Ordering::SeqCst);
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "first"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Unavailable(_)), "{err}");
    // Nothing is durable anywhere, so the cards are answerable again.
    down.store(false, Ordering::SeqCst);
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &tagged(&ids, "retry"))
        .await
        .unwrap();
    assert_eq!(out.processed, ids.len());
}
