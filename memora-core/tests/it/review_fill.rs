//! Review sessions are full whenever enough servable items are due, even
//! when items that can no longer be served (unpublished lessons, deleted
//! stages, premium content) occupy the earliest due slots; `total_due`
//! counts only what can be served.

use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::services::reviews::{ReviewMode, ReviewQuery};

use crate::support::*;

/// Unpublishes hist-l4 and sci-l3 (the earliest due items of the demo) and
/// deletes the matching stage of hist-l2: 15 of the 36 due items can no
/// longer be served, 21 can.
async fn break_content(h: &H) -> usize {
    let idx = h.app.learning().catalog().await.unwrap();
    let mut lessons = Vec::new();
    for id in ["hist-l4", "sci-l3"] {
        let mut l = idx.lesson(&LessonId::new(id).unwrap()).unwrap().clone();
        l.is_published = false;
        lessons.push(l);
    }
    let mut l2 = idx
        .lesson(&LessonId::new("hist-l2").unwrap())
        .unwrap()
        .clone();
    l2.stages.retain(|s| s.id.as_str() != "hist-l2-mt");
    lessons.push(l2);
    let bundle = Catalog {
        lessons,
        ..Default::default()
    };
    h.app.ports().content.import_catalog(&bundle).await.unwrap();
    h.app.learning().reload_catalog().await.unwrap();
    assert_eq!(h.info.due_now, 36);
    21
}

fn ids(s: &memora_core::services::reviews::ReviewSession) -> Vec<String> {
    s.questions.iter().map(|c| c.id.to_string()).collect()
}

#[tokio::test]
async fn sessions_are_full_when_dead_items_hold_the_earliest_slots() {
    let h = harness().await;
    let servable = break_content(&h).await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(20))
        .await
        .unwrap();
    assert_eq!(s.mode, ReviewMode::Rehydrated);
    assert_eq!(s.questions.len(), 20, "{:?}", ids(&s));
    assert_eq!(s.total_due, servable as u64);
    assert!(
        s.questions.iter().all(|c| {
            let l = c.lesson.as_str();
            l != "hist-l4" && l != "sci-l3" && !c.id.as_str().starts_with("hist-l2-mt")
        }),
        "{:?}",
        ids(&s)
    );
    // From the warm cache as well, and asking for more than exists.
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    assert_eq!(s.mode, ReviewMode::Normal);
    assert_eq!(s.questions.len(), servable);
    assert_eq!(s.total_due, servable as u64);
    // A subject filter too: history keeps hist-l1 (6) and hist-l2's reveal (3).
    let s = h
        .app
        .reviews()
        .get_review_session(
            &h.student,
            &ReviewQuery {
                subject: Some(SubjectId::new("history").unwrap()),
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.questions.len(), 5);
    assert_eq!(s.total_due, 9);
}

#[tokio::test]
async fn sessions_from_the_database_are_full_too() {
    let h = harness().await;
    let servable = break_content(&h).await;
    // Warm the cache, then take it down: safe mode reads the database.
    h.app
        .reviews()
        .get_review_session(&h.student, &query(1))
        .await
        .unwrap();
    h.backend.cache().set_available(false);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(15))
        .await
        .unwrap();
    assert_eq!(s.mode, ReviewMode::SafeMode);
    assert_eq!(s.questions.len(), 15, "{:?}", ids(&s));
    assert_eq!(s.total_due, servable as u64);
}

#[tokio::test]
async fn premium_items_a_learner_cannot_open_do_not_shorten_the_session() {
    let h = harness().await;
    // Science is paid; the demo's science items come from the free preview
    // unit. Make sci-u1 premium: its 18 items become inaccessible to the
    // student (no subscription), leaving history's 18.
    let idx = h.app.learning().catalog().await.unwrap();
    let mut unit = idx.unit(&UnitId::new("sci-u1").unwrap()).unwrap().clone();
    unit.is_free_preview = false;
    let bundle = Catalog {
        units: vec![unit],
        ..Default::default()
    };
    h.app.ports().content.import_catalog(&bundle).await.unwrap();
    h.app.learning().reload_catalog().await.unwrap();
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(18))
        .await
        .unwrap();
    assert_eq!(s.questions.len(), 18, "{:?}", ids(&s));
    assert!(s.questions.iter().all(|c| c.subject.as_str() == "history"));
    assert_eq!(s.total_due, 18);
}
