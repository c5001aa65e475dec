//! Store and subscription administration: a suspended, expired or ended
//! subscription stops opening premium content on the next request — lesson
//! details, lesson plays and answers to premium cards served before.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use memora_core::demo::{DemoInfo, seed_demo};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::memory::{InMemoryBackend, ManualClock};
use memora_core::ports::{AuditQuery, Clock, SubscriptionQuery};
use memora_core::services::Config;
use memora_core::services::reviews::{AnswerInput, ReviewQuery, ReviewSubmission};
use memora_core::services::sessions::{Interaction, LessonSubmission};
use memora_core::services::store_admin::{
    GrantScope, SalesItemInput, StatusChange, SubscriptionGrant,
};
use memora_core::srs::AnswerSignals;
use memora_core::{CoreError, Memora};

struct H {
    app: Memora,
    clock: Arc<ManualClock>,
    info: DemoInfo,
    student: Actor,
    admin: Actor,
}

async fn harness() -> H {
    let backend = InMemoryBackend::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
    let mut ports = backend.ports();
    ports.clock = clock.clone();
    let app = Memora::new(ports, Config::default());
    let info = seed_demo(&app, "demo-password").await.unwrap();
    H {
        student: Actor::student(info.student.clone()),
        admin: Actor::admin(info.admin.clone()),
        app,
        clock,
        info,
    }
}

fn premium() -> LessonId {
    LessonId::new("sci-l5").unwrap()
}

impl H {
    async fn grant(&self, ends_on: Option<chrono::NaiveDate>) -> SubscriptionId {
        self.app
            .commerce()
            .grant_subscription(
                &self.admin,
                &SubscriptionGrant {
                    user: self.info.student.clone(),
                    scope: GrantScope::Item(SalesItemId::new("item-science").unwrap()),
                    ends_on,
                },
            )
            .await
            .unwrap()
            .subscription
            .id
    }

    async fn change(&self, id: &SubscriptionId, c: StatusChange) -> Result<(), CoreError> {
        self.app
            .commerce()
            .change_subscription_status(&self.admin, id, c, Some("test"))
            .await
            .map(|_| ())
    }

    async fn open_premium(&self) -> Result<(), CoreError> {
        self.app
            .learning()
            .get_lesson_details(&self.student, &premium())
            .await
            .map(|_| ())
    }
}

#[tokio::test]
async fn a_suspended_subscription_stops_premium_lessons_and_cards_at_once() {
    let h = harness().await;
    assert!(matches!(
        h.open_premium().await,
        Err(CoreError::Forbidden(_))
    ));
    let sub = h.grant(None).await;
    // Subscribed: play the premium lesson, its questions become trackers.
    h.open_premium().await.unwrap();
    let play = LessonSubmission {
        lesson: premium(),
        claimed_xp: Some(10),
        score: Some(100),
        interactions: ["sci-l5-rv:0", "sci-l5-mt:0"]
            .iter()
            .map(|q| Interaction {
                question_id: QuestionId::parse(q).unwrap(),
                duration_ms: Some(2000),
                attempts: Some(1),
                is_correct: Some(true),
            })
            .collect(),
        raw: serde_json::json!({}),
    };
    h.app
        .learning()
        .submit_session(&h.student, &play)
        .await
        .unwrap();
    // Days later the premium cards are due and served.
    h.clock.advance(Duration::days(20));
    let query = ReviewQuery {
        subject: Some(SubjectId::new("science").unwrap()),
        limit: Some(50),
        ..Default::default()
    };
    let served = h
        .app
        .reviews()
        .get_review_session(&h.student, &query)
        .await
        .unwrap();
    let premium_cards: Vec<QuestionId> = served
        .questions
        .iter()
        .filter(|c| c.lesson == premium())
        .map(|c| c.id.clone())
        .collect();
    assert!(!premium_cards.is_empty(), "premium cards are served");
    let answer = |ids: &[QuestionId]| ReviewSubmission {
        answers: ids
            .iter()
            .map(|id| AnswerInput {
                question_id: id.clone(),
                signals: AnswerSignals::review(true, 1500),
                review_id: None,
            })
            .collect(),
        ..Default::default()
    };

    h.change(&sub, StatusChange::Suspend).await.unwrap();
    assert!(matches!(
        h.open_premium().await,
        Err(CoreError::Forbidden(_))
    ));
    let refused = h
        .app
        .reviews()
        .submit_review_session(&h.student, &answer(&premium_cards[..1]))
        .await;
    assert!(
        matches!(refused, Err(CoreError::Forbidden(_))),
        "a premium card served before the suspension is refused: {refused:?}"
    );
    let again = h
        .app
        .reviews()
        .get_review_session(&h.student, &query)
        .await
        .unwrap();
    assert!(
        again.questions.iter().all(|c| c.lesson != premium()),
        "no premium card is served while suspended"
    );
    assert!(matches!(
        h.change(&sub, StatusChange::Suspend).await,
        Err(CoreError::InvalidState(_))
    ));

    h.change(&sub, StatusChange::Resume).await.unwrap();
    h.open_premium().await.unwrap();
    h.app
        .reviews()
        .submit_review_session(&h.student, &answer(&premium_cards[..1]))
        .await
        .expect("resumed: the served card may be answered");

    h.change(&sub, StatusChange::Expire).await.unwrap();
    assert!(matches!(
        h.open_premium().await,
        Err(CoreError::Forbidden(_))
    ));
    assert!(matches!(
        h.change(&sub, StatusChange::Resume).await,
        Err(CoreError::InvalidState(_))
    ));
    let (keys, _) = h
        .app
        .commerce()
        .get_user_access_keys(&h.student)
        .await
        .unwrap();
    assert!(keys.subjects.is_empty());

    // Every change is in the audit log, by the admin.
    let events = h
        .app
        .admin()
        .get_audit_log(
            &h.admin,
            &AuditQuery {
                action: Some("subscription.".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|r| r.event.action.as_str())
            .collect::<Vec<_>>(),
        vec![
            "subscription.expire",
            "subscription.resume",
            "subscription.suspend",
            "subscription.grant"
        ]
    );
    assert!(
        events
            .iter()
            .all(|r| r.event.actor.as_ref() == Some(&h.info.admin))
    );
    assert!(matches!(
        h.app
            .admin()
            .get_audit_log(
                &h.student,
                &AuditQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await,
        Err(CoreError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_grant_ends_after_its_end_date() {
    let h = harness().await;
    let today = h.clock.now().date_naive();
    let sub = h.grant(Some(today + Duration::days(1))).await;
    h.open_premium().await.unwrap();
    h.clock.advance(Duration::days(1));
    h.open_premium().await.expect("the last day is included");
    h.clock.advance(Duration::days(1));
    assert!(matches!(
        h.open_premium().await,
        Err(CoreError::Forbidden(_))
    ));
    let listed = h
        .app
        .commerce()
        .list_subscriptions(
            &h.admin,
            &SubscriptionQuery {
                user: Some(h.info.student.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].subscription.id, sub);
    assert_eq!(listed[0].subscription.status, SubscriptionStatus::Active);
    assert!(!listed[0].in_force, "active but past its end date");
    // Grants that cannot hold are refused.
    for ends_on in [today - Duration::days(1), today + Duration::days(3650)] {
        assert!(matches!(
            h.app
                .commerce()
                .grant_subscription(
                    &h.admin,
                    &SubscriptionGrant {
                        user: h.info.student.clone(),
                        scope: GrantScope::Item(SalesItemId::new("item-science").unwrap()),
                        ends_on: Some(ends_on),
                    },
                )
                .await,
            Err(CoreError::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn store_items_are_validated_and_unpublished_items_are_not_sold() {
    let h = harness().await;
    let input = |id: &str, price: i64, contents: Vec<AccessGrant>| SalesItemInput {
        id: Some(SalesItemId::new(id).unwrap()),
        name: "Science extras".into(),
        description: None,
        price,
        discounted_price: None,
        image: None,
        sku: None,
        season: h.info.season.clone(),
        target_grade: None,
        target_streams: Vec::new(),
        contents,
        is_active: true,
    };
    let science = || vec![AccessGrant::Subject(SubjectId::new("science").unwrap())];
    for bad in [
        input("bad-1", -1, science()),
        input("bad-2", 10, vec![]),
        input(
            "bad-3",
            10,
            vec![AccessGrant::Track(TrackId::new("nope").unwrap())],
        ),
    ] {
        assert!(matches!(
            h.app.commerce().create_sales_item(&h.admin, bad).await,
            Err(CoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        h.app
            .commerce()
            .create_sales_item(&h.student, input("x", 10, science()))
            .await,
        Err(CoreError::Forbidden(_))
    ));
    let item = h
        .app
        .commerce()
        .create_sales_item(&h.admin, input("item-x", 10, science()))
        .await
        .unwrap();
    assert!(matches!(
        h.app
            .commerce()
            .create_sales_item(&h.admin, input("item-x", 10, science()))
            .await,
        Err(CoreError::Conflict(_))
    ));
    let sold = |items: Vec<SalesItem>| items.iter().any(|i| i.id == item.id);
    assert!(sold(
        h.app.commerce().get_store_items(&h.student).await.unwrap()
    ));
    h.app
        .commerce()
        .unpublish_sales_item(&h.admin, &item.id)
        .await
        .unwrap();
    assert!(!sold(
        h.app.commerce().get_store_items(&h.student).await.unwrap()
    ));
    assert!(matches!(
        h.app
            .commerce()
            .request_purchase(&h.student, &item.id, None, None)
            .await,
        Err(CoreError::InvalidState(_))
    ));
    assert!(sold(
        h.app.commerce().list_sales_items(&h.admin).await.unwrap()
    ));
}
