//! End-to-end use-case tests on the in-memory backend with a manual clock.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::gamification::LeaderboardPeriod;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::{JobRuntime, JobStatus};
use memora_core::services::Config;
use memora_core::services::admin::SeasonInput;
use memora_core::services::reviews::{AnswerInput, ReviewMode, ReviewQuery, ReviewSubmission};
use memora_core::services::sessions::{Interaction, LessonSubmission};
use memora_core::services::store::{PurchaseDecision, PurchaseOutcome};
use memora_core::srs::{AnswerSignals, SchedulerKind};
use memora_core::{CoreError, Memora};

const PASSWORD: &str = "demo-password";

struct H {
    app: Memora,
    backend: InMemoryBackend,
    clock: Arc<ManualClock>,
    info: DemoInfo,
    student: Actor,
    admin: Actor,
}

async fn harness() -> H {
    harness_with(Config::default()).await
}

async fn harness_with(config: Config) -> H {
    harness_wired(config, |_| {}).await
}

/// The harness with `wire` applied to its ports (after the clock).
async fn harness_wired(config: Config, wire: impl FnOnce(&mut memora_core::ports::Ports)) -> H {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    wire(&mut ports);
    let app = Memora::new(ports, config);
    let info = seed_demo(&app, PASSWORD).await.unwrap();
    H {
        student: Actor::student(info.student.clone()),
        admin: Actor::admin(info.admin.clone()),
        app,
        backend,
        clock,
        info,
    }
}

fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).unwrap()
}

fn answers(ids: &[QuestionId], correct: bool, ms: u32) -> ReviewSubmission {
    ReviewSubmission {
        answers: ids
            .iter()
            .map(|id| AnswerInput {
                question_id: id.clone(),
                signals: AnswerSignals::review(correct, ms),
                review_id: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn query(limit: usize) -> ReviewQuery {
    ReviewQuery {
        limit: Some(limit),
        ..Default::default()
    }
}

#[tokio::test]
async fn demo_student_has_due_reviews_and_the_cache_rehydrates_once() {
    let h = harness().await;
    assert!(h.info.due_now >= 20, "demo leaves {} due", h.info.due_now);
    let first = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    assert_eq!(first.mode, ReviewMode::Rehydrated);
    assert!(!first.is_degraded);
    assert_eq!(first.total_due, h.info.due_now as u64);
    assert_eq!(first.questions.len(), h.info.due_now.min(50));
    let second = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(15))
        .await
        .unwrap();
    assert_eq!(second.mode, ReviewMode::Normal);
    assert_eq!(second.questions.len(), 15);
    assert_eq!(h.backend.cache().load_count(), 1);
    let counters = h.app.cache_health().counters();
    assert_eq!((counters.hits, counters.misses), (1, 1));
    for card in &second.questions {
        assert!(card.options.contains(&card.correct_answer) || card.options.is_empty());
        assert!(card.options.len() <= 4);
    }
}

#[tokio::test]
async fn subject_filter_returns_that_subjects_items() {
    let h = harness().await;
    for subject in ["history", "science"] {
        let s = h
            .app
            .reviews()
            .get_review_session(
                &h.student,
                &ReviewQuery {
                    subject: Some(SubjectId::new(subject).unwrap()),
                    limit: Some(5),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(!s.questions.is_empty(), "{subject} has due items");
        assert!(s.questions.iter().all(|c| c.subject.as_str() == subject));
    }
}

#[tokio::test]
async fn submitting_answers_schedules_awards_xp_and_persists() {
    let h = harness().await;
    let session = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    let before_total = session.total_due;
    let ids: Vec<QuestionId> = session
        .questions
        .iter()
        .take(3)
        .map(|c| c.id.clone())
        .collect();
    let xp_before = h
        .app
        .gamification()
        .get_player_profile(&h.student)
        .await
        .unwrap()
        .total_xp;
    let logs_before = h.backend.review_log_len();
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 1500))
        .await
        .unwrap();
    assert_eq!(out.processed, 3);
    assert_eq!(out.xp_earned, 10 * 3 + 2 * 3);
    assert_eq!(out.job_status, JobStatus::Done);
    assert_eq!(out.remaining_items, before_total - 3);
    assert_eq!(h.backend.review_log_len(), logs_before + 3);
    let xp_after = h
        .app
        .gamification()
        .get_player_profile(&h.student)
        .await
        .unwrap()
        .total_xp;
    assert_eq!(xp_after, xp_before + out.xp_earned);
    let after = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    assert!(after.questions.iter().all(|c| !ids.contains(&c.id)));
    assert_eq!(
        h.app
            .reviews()
            .get_persistence_status(&h.student, &out.job_id)
            .await
            .unwrap(),
        JobStatus::Done
    );
    // Level 1 + fast correct → level 3 (mature) for the three items.
    assert!(out.mastery.mature >= 3);
}

#[tokio::test]
async fn claimed_combo_cannot_exceed_the_server_combo() {
    let h = harness().await;
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(4))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    let mut sub = answers(&ids, true, 3000);
    sub.answers[1].signals.is_correct = false;
    sub.claimed_combo = Some(1000);
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &sub)
        .await
        .unwrap();
    // 3 correct, longest run 2 → 30 + 4.
    assert_eq!(out.xp_earned, 34);
}

#[tokio::test]
async fn bad_submissions_are_rejected_and_change_nothing() {
    let h = harness().await;
    let logs = h.backend.review_log_len();
    let xp = h
        .app
        .gamification()
        .get_player_profile(&h.student)
        .await
        .unwrap()
        .total_xp;
    let unknown = answers(&[q("no-such-stage:0")], true, 1000);
    assert!(matches!(
        h.app
            .reviews()
            .submit_review_session(&h.student, &unknown)
            .await,
        Err(CoreError::Invalid(_))
    ));
    let out_of_range = answers(&[q("hist-l1-rv:99")], true, 1000);
    assert!(matches!(
        h.app
            .reviews()
            .submit_review_session(&h.student, &out_of_range)
            .await,
        Err(CoreError::Invalid(_))
    ));
    let empty = ReviewSubmission::default();
    assert!(matches!(
        h.app
            .reviews()
            .submit_review_session(&h.student, &empty)
            .await,
        Err(CoreError::Invalid(_))
    ));
    let too_many = answers(&vec![q("hist-l1-rv:0"); 51], true, 1000);
    assert!(matches!(
        h.app
            .reviews()
            .submit_review_session(&h.student, &too_many)
            .await,
        Err(CoreError::Invalid(_))
    ));
    assert!(matches!(
        h.app
            .reviews()
            .get_review_session(&h.student, &query(51))
            .await,
        Err(CoreError::Invalid(_))
    ));
    assert!(matches!(
        h.app
            .reviews()
            .get_review_session(&h.student, &query(0))
            .await,
        Err(CoreError::Invalid(_))
    ));
    assert_eq!(h.backend.review_log_len(), logs);
    assert_eq!(
        h.app
            .gamification()
            .get_player_profile(&h.student)
            .await
            .unwrap()
            .total_xp,
        xp
    );
}

#[tokio::test]
async fn cache_outage_switches_to_rate_limited_safe_mode_and_back() {
    let h = harness().await;
    // Load the schedule into the cache first, so it exists during the outage.
    let warm = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(1))
        .await
        .unwrap();
    assert_eq!(warm.mode, ReviewMode::Rehydrated);
    h.backend.cache().set_available(false);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    assert!(s.is_degraded);
    assert_eq!(s.mode, ReviewMode::SafeMode);
    assert!(!s.questions.is_empty());
    assert!(s.questions.len() <= 15, "safe mode caps items");
    let again = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(10))
        .await;
    match again {
        Err(CoreError::RateLimited { retry_after }) => {
            assert!(retry_after.as_secs() >= 1 && retry_after.as_secs() <= 30)
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // Answers are still accepted and durable while the cache is down.
    let ids = vec![s.questions[0].id.clone()];
    let logs = h.backend.review_log_len();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 2500))
        .await
        .unwrap();
    assert_eq!(h.backend.review_log_len(), logs + 1);
    // Cache back: within the retry interval the next request returns to normal,
    // and the schedule that missed the write above is rehydrated, not stale.
    h.backend.cache().set_available(true);
    h.clock.advance(Duration::seconds(31));
    let back = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(50))
        .await
        .unwrap();
    assert!(!back.is_degraded);
    assert_eq!(back.mode, ReviewMode::Rehydrated);
    assert!(
        back.questions.iter().all(|c| c.id != ids[0]),
        "answered during the outage"
    );
    assert!(!h.app.cache_health().is_degraded());
}

#[tokio::test]
async fn queue_outage_falls_back_to_synchronous_persistence() {
    let h = harness().await;
    h.backend.set_queue_available(false);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(2))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    let logs = h.backend.review_log_len();
    let out = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, false, 3000))
        .await
        .unwrap();
    assert_eq!(out.job_status, JobStatus::Done);
    assert_eq!(h.backend.review_log_len(), logs + 2);
    // Queue and store both down: the submission fails loudly.
    h.backend.set_store_available(false);
    let err = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 3000))
        .await;
    assert!(matches!(err, Err(CoreError::Unavailable(_))), "{err:?}");
    h.backend.set_store_available(true);
    assert_eq!(h.backend.review_log_len(), logs + 2);
}

#[tokio::test]
async fn lesson_xp_is_capped_and_reduced_on_same_day_replays() {
    let h = harness().await;
    let play = |xp: i64| LessonSubmission {
        lesson: LessonId::new("hist-l3").unwrap(),
        claimed_xp: Some(xp),
        score: Some(90),
        interactions: vec![
            Interaction {
                question_id: q("hist-l3-rv:0"),
                duration_ms: Some(1500),
                attempts: Some(1),
                is_correct: None,
            },
            Interaction {
                question_id: q("hist-l3-mt:1"),
                duration_ms: Some(6400),
                attempts: Some(1),
                is_correct: None,
            },
            // Every stage played: the full reward (before the cap and replays).
            Interaction {
                question_id: q("hist-l3-x"),
                duration_ms: Some(2500),
                attempts: Some(1),
                is_correct: None,
            },
        ],
        raw: serde_json::json!({}),
    };
    let lesson = LessonId::new("hist-l3").unwrap();
    // Each play is of an opening of the lesson (served-set binding).
    h.app
        .learning()
        .get_lesson_details(&h.student, &lesson)
        .await
        .unwrap();
    let first = h
        .app
        .learning()
        .submit_session(&h.student, &play(10_000))
        .await
        .unwrap();
    assert_eq!(first.xp_earned, 40, "capped at the lesson's xp_reward");
    assert!(first.completed);
    assert!(
        matches!(
            h.app.learning().submit_session(&h.student, &play(40)).await,
            Err(CoreError::NotServed(_))
        ),
        "one play per opening"
    );
    h.app
        .learning()
        .get_lesson_details(&h.student, &lesson)
        .await
        .unwrap();
    let second = h
        .app
        .learning()
        .submit_session(&h.student, &play(40))
        .await
        .unwrap();
    assert_eq!(second.xp_earned, 20);
    h.app
        .learning()
        .get_lesson_details(&h.student, &lesson)
        .await
        .unwrap();
    let third = h
        .app
        .learning()
        .submit_session(&h.student, &play(40))
        .await
        .unwrap();
    assert_eq!(third.xp_earned, 4);
    // New atoms were created in the active season (the original failed here).
    let rows = h
        .app
        .ports()
        .trackers
        .get_trackers(&h.info.student, &h.info.season, &[q("hist-l3-rv:0")])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state.ladder_level(), 4);
    let mut foreign = play(10);
    foreign.interactions[0].question_id = q("sci-l1-rv:0");
    assert!(matches!(
        h.app.learning().submit_session(&h.student, &foreign).await,
        Err(CoreError::Invalid(_))
    ));
    let mut negative = play(10);
    negative.claimed_xp = Some(-5);
    assert!(matches!(
        h.app.learning().submit_session(&h.student, &negative).await,
        Err(CoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn premium_lessons_need_a_subscription_granted_by_approval() {
    let h = harness().await;
    let premium = LessonId::new("sci-l5").unwrap();
    assert!(matches!(
        h.app
            .learning()
            .get_lesson_details(&h.student, &premium)
            .await,
        Err(CoreError::Forbidden(_))
    ));
    assert!(
        h.app
            .learning()
            .get_lesson_details(&h.student, &LessonId::new("sci-l1").unwrap())
            .await
            .is_ok(),
        "free preview unit"
    );
    let items = h.app.commerce().get_store_items(&h.student).await.unwrap();
    assert_eq!(items.len(), 2);
    let item = SalesItemId::new("item-science").unwrap();
    let req = match h
        .app
        .commerce()
        .request_purchase(&h.student, &item, Some("cash".into()), None)
        .await
        .unwrap()
    {
        PurchaseOutcome::Created(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        h.app
            .commerce()
            .request_purchase(&h.student, &item, None, None)
            .await
            .unwrap(),
        PurchaseOutcome::AlreadyPending(_)
    ));
    assert_eq!(
        h.app
            .commerce()
            .get_store_items(&h.student)
            .await
            .unwrap()
            .len(),
        1,
        "pending item hidden"
    );
    assert!(matches!(
        h.app
            .commerce()
            .decide_purchase(&h.student, &req.id, PurchaseDecision::Approve)
            .await,
        Err(CoreError::Forbidden(_))
    ));
    h.app
        .commerce()
        .decide_purchase(&h.admin, &req.id, PurchaseDecision::Approve)
        .await
        .unwrap();
    assert!(matches!(
        h.app
            .commerce()
            .decide_purchase(&h.admin, &req.id, PurchaseDecision::Approve)
            .await,
        Err(CoreError::Conflict(_))
    ));
    assert!(
        h.app
            .learning()
            .get_lesson_details(&h.student, &premium)
            .await
            .is_ok()
    );
    let (keys, _) = h
        .app
        .commerce()
        .get_user_access_keys(&h.student)
        .await
        .unwrap();
    assert_eq!(keys.subjects, vec![SubjectId::new("science").unwrap()]);
}

#[tokio::test]
async fn quests_are_granted_once() {
    let h = harness().await;
    let quests = h
        .app
        .gamification()
        .get_daily_quests(&h.student, None)
        .await
        .unwrap();
    let streak = quests.iter().find(|q| q.id == "quest_streak").unwrap();
    assert_eq!(streak.status, QuestStatus::Active);
    assert!(matches!(
        h.app
            .gamification()
            .claim_quest_reward(&h.student, "quest_streak")
            .await,
        Err(CoreError::InvalidState(_))
    ));
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(1))
        .await
        .unwrap();
    h.app
        .reviews()
        .submit_review_session(
            &h.student,
            &answers(&[s.questions[0].id.clone()], true, 3000),
        )
        .await
        .unwrap();
    let xp = h
        .app
        .gamification()
        .get_player_profile(&h.student)
        .await
        .unwrap()
        .total_xp;
    let claim = h
        .app
        .gamification()
        .claim_quest_reward(&h.student, "quest_streak")
        .await
        .unwrap();
    assert_eq!(claim.xp_awarded, 100);
    assert_eq!(
        h.app
            .gamification()
            .get_player_profile(&h.student)
            .await
            .unwrap()
            .total_xp,
        xp + 100
    );
    assert!(matches!(
        h.app
            .gamification()
            .claim_quest_reward(&h.student, "quest_streak")
            .await,
        Err(CoreError::Conflict(_))
    ));
    let quests = h
        .app
        .gamification()
        .get_daily_quests(&h.student, None)
        .await
        .unwrap();
    assert_eq!(
        quests
            .iter()
            .find(|q| q.id == "quest_streak")
            .unwrap()
            .status,
        QuestStatus::Claimed
    );
    // The reward is not "activity": the XP quest progress excludes it.
    let xp_quest = quests.iter().find(|q| q.id == "quest_xp").unwrap();
    assert!(xp_quest.progress < 100);
}

#[tokio::test]
async fn streak_and_profile_stats() {
    let h = harness().await;
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 3, "three consecutive days ending yesterday");
    assert_eq!(stats.weekly.len(), 7);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(1))
        .await
        .unwrap();
    h.app
        .reviews()
        .submit_review_session(
            &h.student,
            &answers(&[s.questions[0].id.clone()], true, 3000),
        )
        .await
        .unwrap();
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 4);
    assert!(stats.weekly.last().unwrap().xp > 0);
    assert!(stats.mastery.total() >= 20);
    h.clock.advance(Duration::days(2));
    let stats = h
        .app
        .gamification()
        .get_full_profile_stats(&h.student, None)
        .await
        .unwrap();
    assert_eq!(stats.streak, 0, "a missed day breaks the streak");
}

#[tokio::test]
async fn leaderboard_ranks_are_numbers() {
    let h = harness().await;
    let board = h
        .app
        .gamification()
        .get_leaderboard(&h.admin, None, LeaderboardPeriod::AllTime)
        .await
        .unwrap();
    assert_eq!(
        board.rows[0].player_id,
        memora_core::services::integrity::learner_tag(&h.info.student)
    );
    assert!(
        board.rows.iter().all(|r| !r.name.contains('@')),
        "no e-mail on boards"
    );
    assert_eq!(board.me.rank, None, "admin has no XP");
    let mine = h
        .app
        .gamification()
        .get_leaderboard(&h.student, None, LeaderboardPeriod::Weekly)
        .await
        .unwrap();
    assert_eq!(mine.me.rank, Some(1));
    assert!(mine.rows[0].is_current_user);
}

#[tokio::test]
async fn onboarding_validates_grade_stream_and_season() {
    let h = harness().await;
    let g12 = GradeId::new("G12").unwrap();
    let g10 = GradeId::new("G10").unwrap();
    let sci = StreamId::new("SCI").unwrap();
    let bad = |r: Result<PlayerProfile, CoreError>| {
        assert!(matches!(r, Err(CoreError::Invalid(_))), "{r:?}")
    };
    bad(h
        .app
        .gamification()
        .set_academic_profile(&h.student, &GradeId::new("G99").unwrap(), None, None)
        .await);
    bad(h
        .app
        .gamification()
        .set_academic_profile(&h.student, &g12, None, None)
        .await);
    bad(h
        .app
        .gamification()
        .set_academic_profile(&h.student, &g10, Some(&sci), None)
        .await);
    bad(h
        .app
        .gamification()
        .set_academic_profile(
            &h.student,
            &g12,
            Some(&sci),
            Some(&SeasonId::new("SEASON-1999").unwrap()),
        )
        .await);
    let p = h
        .app
        .gamification()
        .set_academic_profile(&h.student, &g10, None, None)
        .await
        .unwrap();
    assert_eq!(p.season.as_ref(), Some(&h.info.season));
    let subjects = h.app.learning().get_subjects(&h.student).await.unwrap();
    assert_eq!(subjects.len(), 1, "G10 plan has only history");
}

#[tokio::test]
async fn season_lifecycle_archive_retention_and_deletion() {
    let h = harness().await;
    assert!(matches!(
        h.app
            .admin()
            .archive_season(&h.admin, &h.info.season, true)
            .await,
        Err(CoreError::InvalidState(_))
    ));
    let next = SeasonId::new("SEASON-2027").unwrap();
    h.app
        .admin()
        .create_season(
            &h.admin,
            &SeasonInput {
                id: next.clone(),
                title: None,
                start_date: chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
                end_date: chrono::NaiveDate::from_ymd_opt(2027, 12, 31).unwrap(),
                scheduler: None,
                desired_retention: None,
                auto_archive: false,
            },
        )
        .await
        .unwrap();
    h.app
        .admin()
        .activate_season(&h.admin, &next)
        .await
        .unwrap();
    assert!(matches!(
        h.app
            .admin()
            .archive_season(&h.admin, &h.info.season, false)
            .await,
        Err(CoreError::Invalid(_))
    ));
    assert!(matches!(
        h.app
            .admin()
            .archive_season(&h.student, &h.info.season, true)
            .await,
        Err(CoreError::Forbidden(_))
    ));
    let out = h
        .app
        .admin()
        .archive_season(&h.admin, &h.info.season, true)
        .await
        .unwrap();
    assert!(out.records_archived >= 20);
    let status = h
        .app
        .admin()
        .get_archive_status(&h.admin, &h.info.season)
        .await
        .unwrap();
    assert_eq!(status.counts.active_records, 0);
    assert_eq!(status.counts.archived_records, out.records_archived);
    assert_eq!(h.app.admin().run_retention_flagging().await.unwrap(), 0);
    h.clock.advance(Duration::days(1096));
    assert_eq!(
        h.app.admin().run_retention_flagging().await.unwrap(),
        out.records_archived
    );
    assert!(matches!(
        h.app
            .admin()
            .delete_eligible_archived_records(&h.admin, None, false)
            .await,
        Err(CoreError::Invalid(_))
    ));
    let deleted = h
        .app
        .admin()
        .delete_eligible_archived_records(&h.admin, Some(&h.info.season), true)
        .await
        .unwrap();
    assert_eq!(deleted, out.records_archived);
}

#[tokio::test]
async fn cache_rebuild_and_reconciliation() {
    // A small page size so the rebuild crosses page boundaries.
    let h = harness_with(Config {
        rebuild_batch_size: 7,
        ..Config::default()
    })
    .await;
    let job = h
        .app
        .admin()
        .start_season_rebuild(&h.admin, &h.info.season)
        .await
        .unwrap();
    assert!(job.estimated >= 20);
    let done = h.app.admin().run_season_rebuild(&job.id).await.unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.processed, job.estimated);
    assert_eq!(done.users, 1);
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(5))
        .await
        .unwrap();
    assert_eq!(
        s.mode,
        ReviewMode::Normal,
        "rebuilt schedule is used without rehydration"
    );
    let report = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(100), None)
        .await
        .unwrap();
    assert_eq!(report.discrepancies_found, 0);
    assert!(report.sample_size >= 20);
    assert!(!report.alert_triggered);
    assert!(matches!(
        h.app
            .admin()
            .trigger_reconciliation(&h.admin, Some(50), None)
            .await,
        Err(CoreError::Invalid(_))
    ));
    // Without a sample size the configured default (10 000) is used.
    let report = h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, None, None)
        .await
        .unwrap();
    assert_eq!(report.discrepancies_found, 0);
    assert!(report.sample_size >= 20);
    match h
        .app
        .admin()
        .trigger_reconciliation(&h.admin, Some(1_000_001), None)
        .await
    {
        Err(CoreError::Invalid(m)) => {
            assert!(m.contains("sample_size"), "{m}");
            assert!(m.contains("between 100 and 1000000"), "{m}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        h.app
            .admin()
            .trigger_reconciliation(&h.student, None, None)
            .await,
        Err(CoreError::Forbidden(_))
    ));
}

#[tokio::test]
async fn fsrs_season_schedules_with_fsrs_and_refits() {
    let h = harness().await;
    h.app
        .admin()
        .update_season_settings(
            &h.admin,
            &h.info.season,
            Some(SchedulerKind::Fsrs6),
            Some(0.85),
            None,
            None,
        )
        .await
        .unwrap();
    let ids = answer_a_session(&h).await;
    let rows = h
        .app
        .ports()
        .trackers
        .get_trackers(&h.info.student, &h.info.season, &ids)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.state.kind == SchedulerKind::Fsrs6));
    let fit = h
        .app
        .admin()
        .refit_fsrs_params(&h.admin, &h.info.student)
        .await
        .unwrap();
    assert!(fit.fell_back, "a handful of reviews is too little to fit");
    assert_eq!(fit.params.len(), 21);
    assert!(matches!(
        h.app
            .admin()
            .refit_fsrs_params(&h.student, &h.info.student)
            .await,
        Err(CoreError::Forbidden(_))
    ));
}

/// A [`JobRuntime`] that records what jobs hand it: each piece of CPU work
/// takes at least `work_ms` (slept before running it), and pauses are
/// recorded, not taken.
#[derive(Default)]
struct RecordingRuntime {
    work_ms: u64,
    cpu_calls: std::sync::atomic::AtomicUsize,
    pauses: std::sync::Mutex<Vec<std::time::Duration>>,
}

#[async_trait::async_trait]
impl JobRuntime for RecordingRuntime {
    async fn run_cpu(
        &self,
        work: Box<dyn FnOnce() + Send + 'static>,
    ) -> memora_core::PortResult<()> {
        self.cpu_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(self.work_ms));
        work();
        Ok(())
    }
    async fn pause(&self, pause: std::time::Duration) {
        self.pauses.lock().unwrap().push(pause);
    }
}

/// The demo, on an app whose job runtime is `rt` and that fits from one
/// review on, after the student answered a session.
async fn refit_harness(rt: Arc<RecordingRuntime>, share: f64) -> H {
    let config = Config {
        fsrs_min_reviews_to_fit: 1,
        fsrs_refit_share: share,
        ..Config::default()
    };
    let h = harness_wired(config, |ports| ports.job_runtime = rt).await;
    answer_a_session(&h).await;
    h
}

/// The student reads a session of 3 and answers it correctly; returns the
/// questions answered.
async fn answer_a_session(h: &H) -> Vec<QuestionId> {
    let s = h
        .app
        .reviews()
        .get_review_session(&h.student, &query(3))
        .await
        .unwrap();
    let ids: Vec<QuestionId> = s.questions.iter().map(|c| c.id.clone()).collect();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answers(&ids, true, 3000))
        .await
        .unwrap();
    ids
}

#[tokio::test]
async fn refits_run_their_fit_on_the_job_runtime_and_the_job_pauses_for_them() {
    let rt = Arc::new(RecordingRuntime {
        work_ms: 4,
        ..Default::default()
    });
    let h = refit_harness(Arc::clone(&rt), 0.25).await;
    // The admin call hands its fit over too (no pacing: one learner, asked for).
    h.app
        .admin()
        .refit_fsrs_params(&h.admin, &h.info.student)
        .await
        .unwrap();
    assert_eq!(rt.cpu_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        rt.pauses.lock().unwrap().is_empty(),
        "an asked-for fit is not paced"
    );
    // Forget the fit, so that the job finds the learner due again.
    h.app
        .ports()
        .fsrs
        .set_fsrs_params(&h.info.student, &[], 0)
        .await
        .unwrap();
    let fitted = h.app.admin().run_fsrs_refit_job(1).await.unwrap();
    assert!(fitted >= 1, "the student has new reviews");
    let calls = rt.cpu_calls.load(std::sync::atomic::Ordering::SeqCst) - 1;
    assert_eq!(calls as u64, fitted, "every fit ran on the job runtime");
    // Each fitted learner took at least 4 ms, so a quarter share owes at
    // least 12 ms of pauses for each.
    let paused: std::time::Duration = rt.pauses.lock().unwrap().iter().sum();
    assert!(
        paused >= std::time::Duration::from_millis(12) * fitted as u32,
        "paused {paused:?} for {fitted} fits of at least 4 ms"
    );
}

#[tokio::test]
async fn a_full_share_runs_the_refit_job_without_pauses() {
    let rt = Arc::new(RecordingRuntime {
        work_ms: 4,
        ..Default::default()
    });
    let h = refit_harness(Arc::clone(&rt), 1.0).await;
    let fitted = h.app.admin().run_fsrs_refit_job(1).await.unwrap();
    assert!(fitted >= 1);
    assert_eq!(
        rt.cpu_calls.load(std::sync::atomic::Ordering::SeqCst) as u64,
        fitted
    );
    assert!(rt.pauses.lock().unwrap().is_empty());
}

/// The re-fit job reads the users a page at a time: a learner whose id
/// sorts after a whole page of other users is still re-fitted.
#[tokio::test]
async fn the_refit_job_reads_every_page_of_users() {
    let rt = Arc::new(RecordingRuntime::default());
    let h = refit_harness(Arc::clone(&rt), 1.0).await;
    use memora_core::ports::AuthStore;
    use memora_core::services::fsrs_fit::REFIT_PAGE;
    for i in 0..REFIT_PAGE {
        let u = User {
            id: UserId::new(format!("0-filler-{i:05}")).unwrap(),
            full_name: "Filler".into(),
            roles: vec![Role::Student],
            enabled: true,
        };
        h.backend.create_user(&u, None).await.unwrap();
    }
    let first = h.backend.user_ids_after(None, REFIT_PAGE).await.unwrap();
    assert_eq!(first.len(), REFIT_PAGE);
    assert!(
        !first.contains(&h.info.student),
        "the learner is past the first page"
    );
    let fitted = h.app.admin().run_fsrs_refit_job(1).await.unwrap();
    assert!(fitted >= 1, "the learner on a later page was not re-fitted");
    let (_, fitted_on) = h
        .app
        .ports()
        .fsrs
        .fsrs_params(&h.info.student)
        .await
        .unwrap()
        .expect("the learner's parameters are stored");
    assert!(fitted_on >= 1);
}

#[tokio::test]
async fn topic_focus_mode_sizes_the_session() {
    let h = harness().await;
    let s = h
        .app
        .reviews()
        .get_review_session(
            &h.student,
            &ReviewQuery {
                topic: Some(TopicId::new("sci-t1").unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.mode, ReviewMode::Topic);
    assert_eq!(s.questions.len(), 10, "12 items → min session size 10");
    assert!(
        s.questions
            .iter()
            .all(|c| c.topic.as_ref().map(|t| t.as_str()) == Some("sci-t1"))
    );
    assert!(matches!(
        h.app
            .reviews()
            .get_review_session(
                &h.student,
                &ReviewQuery {
                    topic: Some(TopicId::new("nope").unwrap()),
                    ..Default::default()
                }
            )
            .await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn login_sessions_and_api_keys() {
    let h = harness().await;
    let login = h
        .app
        .auth()
        .login("student@demo.memora", PASSWORD, None)
        .await
        .unwrap();
    let actor = h.app.auth().authenticate_session(&login.sid).await.unwrap();
    assert_eq!(actor.user, h.info.student);
    assert!(matches!(
        h.app
            .auth()
            .login("student@demo.memora", "wrong-password", None)
            .await,
        Err(CoreError::Unauthenticated)
    ));
    assert!(matches!(
        h.app.auth().login("nobody@x", PASSWORD, None).await,
        Err(CoreError::Unauthenticated)
    ));
    h.app.auth().logout(&login.sid).await.unwrap();
    assert!(h.app.auth().authenticate_session(&login.sid).await.is_err());
    let key = h
        .app
        .auth()
        .create_api_key(&h.admin, &h.info.student)
        .await
        .unwrap();
    let actor = h
        .app
        .auth()
        .authenticate_api_key(&key.key, &key.secret)
        .await
        .unwrap();
    assert_eq!(actor.user, h.info.student);
    assert!(
        h.app
            .auth()
            .authenticate_api_key(&key.key, "bad")
            .await
            .is_err()
    );
    // Sessions expire.
    let login = h
        .app
        .auth()
        .login("student@demo.memora", PASSWORD, None)
        .await
        .unwrap();
    h.clock.advance(Duration::days(8));
    assert!(h.app.auth().authenticate_session(&login.sid).await.is_err());
}

#[tokio::test]
async fn map_endpoints_report_statuses() {
    let h = harness().await;
    let map = h
        .app
        .learning()
        .get_map_data(&h.student, None, None)
        .await
        .unwrap();
    assert_eq!(map.len(), 2);
    let science = map
        .iter()
        .find(|m| m.subject.id.as_str() == "science")
        .unwrap();
    let matter = science
        .units
        .iter()
        .find(|u| u.id.as_str() == "sci-u2")
        .unwrap();
    assert_eq!(matter.status.as_str(false), "locked_premium");
    let topic = h
        .app
        .learning()
        .get_topic_details(&h.student, "hist-u1-default")
        .await
        .unwrap();
    assert_eq!(topic.lessons.len(), 3);
    // Lessons played in the demo history count as completed.
    assert!(
        topic
            .lessons
            .iter()
            .any(|l| l.status.as_str(false) == "completed")
    );
    let track = h
        .app
        .learning()
        .get_track_details(
            &h.student,
            None,
            Some(&TrackId::new("hist-main").unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(track.units.len(), 2);
    let topics = h
        .app
        .learning()
        .get_unit_topics(&h.student, &UnitId::new("hist-u2").unwrap())
        .await
        .unwrap();
    assert_eq!(topics.topics.len(), 2);
    assert!(matches!(
        h.app
            .learning()
            .get_topic_details(&h.student, "missing")
            .await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_system_caller_passes_admin_checks_and_is_audited_distinctly() {
    let h = harness().await;
    let system = Actor::system();
    let new_user = UserId::new("made-by-cli@x").unwrap();
    h.app
        .auth()
        .create_user(&system, &new_user, "Made By CLI", vec![], None)
        .await
        .unwrap();
    // Admin checks are performed for every caller: a student is refused.
    assert!(matches!(
        h.app
            .auth()
            .create_user(
                &h.student,
                &UserId::new("other@x").unwrap(),
                "Other",
                vec![],
                None
            )
            .await,
        Err(CoreError::Forbidden(_))
    ));
    assert!(matches!(
        h.app.auth().create_api_key(&h.student, &new_user).await,
        Err(CoreError::Forbidden(_))
    ));
    // Nobody can take the system caller's reserved id.
    assert!(matches!(
        h.app
            .auth()
            .create_user(&system, &UserId::system(), "Impostor", vec![], None)
            .await,
        Err(CoreError::Invalid(_))
    ));
    h.app
        .auth()
        .create_api_key(&system, &new_user)
        .await
        .unwrap();
    let recent = h.app.ports().audit.recent(10).await.unwrap();
    let by_system: Vec<&str> = recent
        .iter()
        .filter(|e| e.actor.as_ref().is_some_and(|a| a.is_system()))
        .map(|e| e.action.as_str())
        .collect();
    assert!(by_system.contains(&"user.create"), "{recent:?}");
    assert!(by_system.contains(&"user.api_key"), "{recent:?}");
    assert!(
        recent.iter().all(|e| e
            .actor
            .as_ref()
            .is_some_and(|a| a.is_system() || a == &h.info.admin)),
        "every record names its caller: {recent:?}"
    );
}

#[tokio::test]
async fn scheduled_jobs_run_as_the_system_caller() {
    let h = harness().await;
    h.app.admin().run_retention_flagging().await.unwrap();
    let recent = h.app.ports().audit.recent(1).await.unwrap();
    assert_eq!(recent[0].action, "archive.flag");
    assert_eq!(recent[0].actor, Some(UserId::system()));
}

#[tokio::test]
async fn set_time_zone_defaults_the_rollover_hour_from_config() {
    let h = harness_with(Config {
        default_rollover_hour: 6,
        ..Config::default()
    })
    .await;
    let fresh = Actor::student(UserId::new("tz-learner@x").unwrap());
    let p = h
        .app
        .gamification()
        .set_time_zone(&fresh, "Asia/Amman", None)
        .await
        .unwrap();
    assert_eq!((p.time_zone.as_str(), p.rollover_hour), ("Asia/Amman", 6));
    let p = h
        .app
        .gamification()
        .set_time_zone(&fresh, "Asia/Amman", Some(2))
        .await
        .unwrap();
    assert_eq!(p.rollover_hour, 2);
    assert!(matches!(
        h.app
            .gamification()
            .set_time_zone(&fresh, "Asia/Amman", Some(24))
            .await,
        Err(CoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn review_limit_outside_the_allowed_range_is_refused() {
    let h = harness().await;
    for limit in [0, 51] {
        match h
            .app
            .reviews()
            .get_review_session(&h.student, &query(limit))
            .await
        {
            Err(CoreError::Invalid(m)) => {
                assert_eq!(m, "limit must be between 1 and 50", "limit {limit}")
            }
            other => panic!("limit {limit}: expected Invalid, got {other:?}"),
        }
    }
    assert!(
        h.app
            .reviews()
            .get_review_session(&h.student, &query(50))
            .await
            .is_ok()
    );
}
