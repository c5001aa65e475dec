//! The store adapters' harness ([`Stores`], fixtures), the checks of the
//! smaller store ports ([`ContentStore`], [`SeasonStore`], [`CommerceStore`],
//! [`QuestStore`], [`AuthStore`], [`AuditStore`], [`JobLock`],
//! [`Coordination`]) and
//! [`store_conformance!`](crate::store_conformance), which runs every store
//! suite — these and one module per split memory / player port
//! ([`super::tracker`], [`super::review_log`], [`super::season_scan`],
//! [`super::archive`], [`super::profile`], [`super::activity`],
//! [`super::fsrs_params`], [`super::job_progress`]) — against one adapter,
//! pinned once and run against the in-memory reference and PostgreSQL.
//!
//! Each check takes fresh, empty [`Stores`] and panics on a violation.
//! Times are whole seconds (PostgreSQL keeps microseconds, Rust
//! nanoseconds).

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use memora_core::domain::*;
use memora_core::ids::*;
use memora_core::ports::*;
use memora_core::srs::{CardState, Grade as SrsGrade, Phase, SchedulerKind};

/// The store ports of one adapter instance.
#[derive(Clone)]
pub struct Stores {
    /// Content.
    pub content: Arc<dyn ContentStore>,
    /// Seasons.
    pub seasons: Arc<dyn SeasonStore>,
    /// Learner memory on the request path.
    pub trackers: Arc<dyn TrackerStore>,
    /// Review-log reads.
    pub revlog: Arc<dyn ReviewLogStore>,
    /// Whole-season scans and samples.
    pub scans: Arc<dyn SeasonScanStore>,
    /// Archival and retention.
    pub archive: Arc<dyn ArchiveStore>,
    /// Profiles.
    pub profiles: Arc<dyn ProfileStore>,
    /// Activity ledger and leaderboard sources.
    pub activity: Arc<dyn ActivityStore>,
    /// FSRS parameters.
    pub fsrs: Arc<dyn FsrsParamStore>,
    /// Commerce.
    pub commerce: Arc<dyn CommerceStore>,
    /// Quests.
    pub quests: Arc<dyn QuestStore>,
    /// Auth.
    pub auth: Arc<dyn AuthStore>,
    /// Audit.
    pub audit: Arc<dyn AuditStore>,
    /// Shared progress of background jobs.
    pub job_progress: Arc<dyn JobProgressStore>,
    /// Job lock of this "process".
    pub locks: Arc<dyn JobLock>,
    /// Job lock of a second "process" sharing the same data.
    pub other_locks: Arc<dyn JobLock>,
    /// State shared by every process.
    pub coordination: Arc<dyn Coordination>,
    /// Players' devices.
    pub devices: Arc<dyn DeviceStore>,
    /// Permanent question numbers.
    pub numbers: Arc<dyn CatalogNumbers>,
}

impl Stores {
    /// Every store port from one object implementing them all.
    pub fn from_backend<B>(b: Arc<B>, other_locks: Arc<dyn JobLock>) -> Self
    where
        B: ContentStore
            + SeasonStore
            + TrackerStore
            + ReviewLogStore
            + SeasonScanStore
            + ArchiveStore
            + ProfileStore
            + ActivityStore
            + FsrsParamStore
            + CommerceStore
            + QuestStore
            + AuthStore
            + AuditStore
            + JobProgressStore
            + JobLock
            + Coordination
            + DeviceStore
            + CatalogNumbers
            + 'static,
    {
        Stores {
            content: b.clone(),
            seasons: b.clone(),
            trackers: b.clone(),
            revlog: b.clone(),
            scans: b.clone(),
            archive: b.clone(),
            profiles: b.clone(),
            activity: b.clone(),
            fsrs: b.clone(),
            commerce: b.clone(),
            quests: b.clone(),
            auth: b.clone(),
            audit: b.clone(),
            job_progress: b.clone(),
            coordination: b.clone(),
            devices: b.clone(),
            numbers: b.clone(),
            locks: b,
            other_locks,
        }
    }
}

// ───────────────────────── fixtures ─────────────────────────

/// Reference "now" of the checks.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}
/// `t0 + h` hours.
pub fn at(hours: i64) -> DateTime<Utc> {
    t0() + Duration::hours(hours)
}
/// A user id.
pub fn user(s: &str) -> UserId {
    UserId::new(s).expect("user id")
}
/// A season id `SEASON-<year>`.
pub fn season(year: u32) -> SeasonId {
    SeasonId::new(format!("SEASON-{year}")).expect("season id")
}
/// A question id.
pub fn q(s: &str) -> QuestionId {
    QuestionId::parse(s).expect("question id")
}
pub(crate) fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).expect("subject")
}
pub(crate) fn topic(s: &str) -> TopicId {
    TopicId::new(s).expect("topic")
}
pub(crate) fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("day")
}

/// Creates seasons `SEASON-<year>` (inactive, defaults).
pub async fn make_seasons(s: &Stores, years: &[u32]) {
    for (i, y) in years.iter().enumerate() {
        let start = NaiveDate::from_ymd_opt(*y as i32, 1, 1).expect("date");
        let mut se = Season::new(
            season(*y),
            format!("Season {y}"),
            start,
            start + Duration::days(300),
        )
        .expect("season");
        se.desired_retention = 0.9 - (i as f64) * 0.01;
        s.seasons.create_season(&se).await.expect("create season");
    }
}

/// A ladder tracker at `level` (0 = never scheduled).
#[allow(clippy::too_many_arguments)]
pub fn tracker(
    u: &str,
    y: u32,
    question: &str,
    level: u8,
    due: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    subj: Option<&str>,
    top: Option<&str>,
) -> MemoryTracker {
    MemoryTracker {
        key: TrackerKey {
            user: user(u),
            season: season(y),
            question: q(question),
        },
        subject: subj.map(subject),
        topic: top.map(topic),
        state: CardState {
            kind: SchedulerKind::Ladder,
            phase: if level == 0 {
                Phase::New
            } else {
                Phase::Review
            },
            step: 0,
            stability: f64::from(level),
            difficulty: 0.0,
            reps: u32::from(level),
            lapses: 0,
            last_review: last,
            due,
            scheduled_days: u32::from(level) * 2,
        },
    }
}

/// The record persisting `t` under review id `rid`.
pub fn record(t: &MemoryTracker, rid: &str) -> ReviewRecord {
    ReviewRecord {
        tracker: t.clone(),
        log: ReviewLogEntry {
            review_id: ReviewId::new(rid).expect("review id"),
            key: t.key.clone(),
            source: ReviewSource::Review,
            grade: SrsGrade::Good,
            is_correct: true,
            duration_ms: 1500,
            attempts: 1,
            reviewed_at: t.state.last_review.unwrap_or_else(t0),
            elapsed_days: 1,
            scheduler: SchedulerKind::Ladder,
            state_after: t.state.clone(),
        },
    }
}

pub(crate) async fn persist(s: &Stores, ts: &[MemoryTracker]) -> PersistOutcome {
    let recs: Vec<ReviewRecord> = ts
        .iter()
        .map(|t| {
            record(
                t,
                &format!("r-{}-{}-{}", t.key.user, t.key.question, t.state.reps),
            )
        })
        .collect();
    s.trackers.persist_batch(&recs).await.expect("persist")
}

pub(crate) fn qids(v: &[MemoryTracker]) -> Vec<String> {
    v.iter().map(|t| t.key.question.to_string()).collect()
}

/// A gameplay session of `xp` XP on learner day `d`, created at [`t0`].
#[allow(clippy::too_many_arguments)]
pub fn session(
    id: &str,
    u: &str,
    kind: SessionKind,
    lesson: Option<&str>,
    subj: Option<&str>,
    xp: i64,
    completed: bool,
    d: NaiveDate,
) -> GameplaySession {
    GameplaySession {
        id: SessionId::new(id).expect("session id"),
        user: user(u),
        kind,
        lesson: lesson.map(|l| LessonId::new(l).expect("lesson")),
        subject: subj.map(subject),
        topic: None,
        xp_earned: xp,
        score: 80,
        completed,
        created_at: t0(),
        local_day: d,
        raw_data: serde_json::json!({"k": 1}),
    }
}

// ───────────────────────── seasons ─────────────────────────

/// Seasons: create (conflict on duplicates), list newest first, update,
/// exclusive activation; unknown seasons are rejected.
pub async fn seasons_lifecycle(s: &Stores) {
    make_seasons(s, &[2025, 2026]).await;
    let list = s.seasons.list_seasons().await.expect("list");
    assert_eq!(
        list.iter().map(|x| x.id.to_string()).collect::<Vec<_>>(),
        vec!["SEASON-2026", "SEASON-2025"]
    );
    let mut dup = list[0].clone();
    dup.title = "again".into();
    assert!(matches!(
        s.seasons.create_season(&dup).await,
        Err(PortError::Conflict(_))
    ));
    let mut upd = list[1].clone();
    upd.title = "renamed".into();
    upd.scheduler = SchedulerKind::Fsrs6;
    s.seasons.update_season(&upd).await.expect("update");
    assert_eq!(
        s.seasons.get_season(&season(2025)).await.expect("get"),
        Some(upd)
    );
    let mut ghost = list[0].clone();
    ghost.id = season(2030);
    assert!(matches!(
        s.seasons.update_season(&ghost).await,
        Err(PortError::Rejected(_))
    ));
    s.seasons
        .activate_season(&season(2025))
        .await
        .expect("activate");
    s.seasons
        .activate_season(&season(2026))
        .await
        .expect("activate");
    let active: Vec<String> = s
        .seasons
        .list_seasons()
        .await
        .expect("list")
        .into_iter()
        .filter(|x| x.is_active)
        .map(|x| x.id.to_string())
        .collect();
    assert_eq!(active, vec!["SEASON-2026"]);
    assert!(matches!(
        s.seasons.activate_season(&season(2030)).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        s.seasons.get_season(&season(2030)).await.expect("get"),
        None
    );
}

// ───────────────────────── commerce ─────────────────────────

fn item(id: &str, price: i64) -> SalesItem {
    SalesItem {
        id: SalesItemId::new(id).expect("item"),
        name: format!("Item {id}"),
        description: Some("desc".into()),
        price,
        discounted_price: None,
        image: None,
        sku: Some(format!("SKU-{id}")),
        season: season(2026),
        target_grade: Some(GradeId::new("g12").expect("grade")),
        target_streams: vec![StreamId::new("sci").expect("stream")],
        contents: vec![
            AccessGrant::Subject(subject("math")),
            AccessGrant::Track(TrackId::new("tr-1").expect("track")),
        ],
        is_active: true,
    }
}

fn request(id: &str, u: &str, it: &str, h: i64) -> PurchaseRequest {
    PurchaseRequest {
        id: PurchaseRequestId::new(id).expect("req"),
        user: user(u),
        item: SalesItemId::new(it).expect("item"),
        status: PurchaseStatus::Pending,
        price: 100,
        payment_method: Some("cash".into()),
        transaction_id: None,
        created_at: at(h),
        decided_at: None,
        decided_by: None,
    }
}

fn subscription(id: &str, u: &str, req: Option<&str>) -> Subscription {
    Subscription {
        id: SubscriptionId::new(id).expect("sub"),
        user: user(u),
        season: season(2026),
        kind: SubscriptionKind::Specific,
        status: SubscriptionStatus::Active,
        grants: vec![AccessGrant::Subject(subject("math"))],
        source_request: req.map(|r| PurchaseRequestId::new(r).expect("req")),
        created_at: t0(),
        ends_on: None,
    }
}

/// Items by price; one pending request per (user, item); a request is
/// decided once, granting its subscription atomically.
pub async fn commerce_rules(s: &Stores) {
    let c = &s.commerce;
    c.upsert_sales_item(&item("i-2", 300)).await.expect("item");
    c.upsert_sales_item(&item("i-1", 100)).await.expect("item");
    let mut changed = item("i-2", 50);
    changed.contents = vec![AccessGrant::Track(TrackId::new("tr-9").expect("track"))];
    changed.discounted_price = Some(40);
    c.upsert_sales_item(&changed).await.expect("item");
    let items = c.list_sales_items().await.expect("items");
    assert_eq!(items, vec![changed.clone(), item("i-1", 100)]);
    assert_eq!(
        c.get_sales_item(&SalesItemId::new("i-1").expect("id"))
            .await
            .expect("get"),
        Some(item("i-1", 100))
    );
    assert_eq!(
        c.get_sales_item(&SalesItemId::new("nope").expect("id"))
            .await
            .expect("get"),
        None
    );

    c.create_purchase_request(&request("r1", "u1", "i-1", 1))
        .await
        .expect("r1");
    assert!(matches!(
        c.create_purchase_request(&request("r2", "u1", "i-1", 2))
            .await,
        Err(PortError::Conflict(_))
    ));
    c.create_purchase_request(&request("r3", "u1", "i-2", 3))
        .await
        .expect("other item");
    c.create_purchase_request(&request("r4", "u2", "i-1", 4))
        .await
        .expect("other user");
    assert!(matches!(
        c.create_purchase_request(&request("r1", "u9", "i-9", 5))
            .await,
        Err(PortError::Conflict(_))
    ));
    let mut approved = request("r1", "u1", "i-1", 1);
    approved.status = PurchaseStatus::Approved;
    approved.decided_at = Some(at(10));
    approved.decided_by = Some(user("admin"));
    let grant = subscription("sub-1", "u1", Some("r1"));
    c.decide_purchase(&approved, Some(&grant))
        .await
        .expect("approve");
    let mut again = approved.clone();
    again.status = PurchaseStatus::Rejected;
    assert!(matches!(
        c.decide_purchase(&again, None).await,
        Err(PortError::Conflict(_))
    ));
    let ghost = request("r-ghost", "u1", "i-1", 1);
    assert!(matches!(
        c.decide_purchase(&ghost, None).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        c.get_purchase_request(&approved.id).await.expect("get"),
        Some(approved.clone())
    );
    // The pending slot is free again once decided.
    c.create_purchase_request(&request("r5", "u1", "i-1", 6))
        .await
        .expect("new pending");
    let ids = |v: Vec<PurchaseRequest>| v.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(c.list_purchase_requests(None, None).await.expect("list")),
        vec!["r5", "r4", "r3", "r1"]
    );
    assert_eq!(
        ids(c
            .list_purchase_requests(Some(&user("u1")), Some(PurchaseStatus::Pending))
            .await
            .expect("list")),
        vec!["r5", "r3"]
    );
    assert_eq!(
        ids(c
            .list_purchase_requests(None, Some(PurchaseStatus::Approved))
            .await
            .expect("list")),
        vec!["r1"]
    );
    assert_eq!(
        c.subscriptions_of(&user("u1")).await.expect("subs"),
        vec![grant.clone()]
    );
    let mut global = subscription("sub-2", "u2", None);
    global.kind = SubscriptionKind::Global;
    global.grants.clear();
    c.create_subscription(&global).await.expect("admin grant");
    assert!(matches!(
        c.create_subscription(&global).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        c.subscriptions_of(&user("u2")).await.expect("subs"),
        vec![global]
    );
    assert!(
        c.subscriptions_of(&user("u3"))
            .await
            .expect("subs")
            .is_empty()
    );
}

/// Administration: items are created once (then replaced by upsert,
/// `is_active` included); subscriptions round trip with their end date, are
/// listed by user / status in keyset pages, and change status only by
/// compare-and-set.
pub async fn commerce_admin(s: &Stores) {
    let c = &s.commerce;
    let mut it = item("i-1", 100);
    c.create_sales_item(&it).await.expect("create");
    assert!(matches!(
        c.create_sales_item(&item("i-1", 5)).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        c.get_sales_item(&it.id).await.expect("get"),
        Some(it.clone()),
        "a refused create changes nothing"
    );
    it.is_active = false;
    c.upsert_sales_item(&it).await.expect("unpublish");
    assert_eq!(c.list_sales_items().await.expect("list"), vec![it.clone()]);

    let mut subs = Vec::new();
    for (i, (u, status)) in [
        ("u1", SubscriptionStatus::Active),
        ("u2", SubscriptionStatus::Suspended),
        ("u1", SubscriptionStatus::Expired),
        ("u1", SubscriptionStatus::Active),
    ]
    .into_iter()
    .enumerate()
    {
        let mut sub = subscription(&format!("sub-{i}"), u, None);
        sub.status = status;
        sub.ends_on = (i == 3).then(|| day(20));
        c.create_subscription(&sub).await.expect("grant");
        subs.push(sub);
    }
    let get = |id: &str| SubscriptionId::new(id).expect("sub");
    assert_eq!(
        c.get_subscription(&get("sub-3")).await.expect("get"),
        Some(subs[3].clone())
    );
    assert_eq!(c.get_subscription(&get("sub-9")).await.expect("get"), None);
    let page = |who: Option<&str>, status, after: Option<&str>, limit| SubscriptionQuery {
        user: who.map(user),
        status,
        after: after.map(get),
        limit,
    };
    let ids = |v: Vec<Subscription>| v.into_iter().map(|x| x.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(c
            .list_subscriptions(&page(None, None, None, 10))
            .await
            .expect("list")),
        vec!["sub-0", "sub-1", "sub-2", "sub-3"]
    );
    assert_eq!(
        ids(c
            .list_subscriptions(&page(None, None, None, 2))
            .await
            .expect("list")),
        vec!["sub-0", "sub-1"]
    );
    assert_eq!(
        ids(c
            .list_subscriptions(&page(None, None, Some("sub-1"), 2))
            .await
            .expect("list")),
        vec!["sub-2", "sub-3"]
    );
    assert_eq!(
        ids(c
            .list_subscriptions(&page(
                Some("u1"),
                Some(SubscriptionStatus::Active),
                None,
                10
            ))
            .await
            .expect("list")),
        vec!["sub-0", "sub-3"]
    );
    assert_eq!(
        ids(c
            .list_subscriptions(&page(None, Some(SubscriptionStatus::Suspended), None, 10))
            .await
            .expect("list")),
        vec!["sub-1"]
    );
    // Compare-and-set.
    assert!(
        c.set_subscription_status(
            &get("sub-0"),
            SubscriptionStatus::Active,
            SubscriptionStatus::Suspended
        )
        .await
        .expect("suspend")
    );
    assert!(
        !c.set_subscription_status(
            &get("sub-0"),
            SubscriptionStatus::Active,
            SubscriptionStatus::Expired
        )
        .await
        .expect("stale"),
        "a stale expected status changes nothing"
    );
    assert_eq!(
        c.get_subscription(&get("sub-0"))
            .await
            .expect("get")
            .map(|x| x.status),
        Some(SubscriptionStatus::Suspended)
    );
    assert!(matches!(
        c.set_subscription_status(
            &get("sub-9"),
            SubscriptionStatus::Active,
            SubscriptionStatus::Expired
        )
        .await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        c.subscriptions_of(&user("u1"))
            .await
            .expect("subs")
            .iter()
            .map(|x| (x.id.to_string(), x.status, x.ends_on))
            .collect::<Vec<_>>(),
        vec![
            ("sub-0".to_owned(), SubscriptionStatus::Suspended, None),
            ("sub-2".to_owned(), SubscriptionStatus::Expired, None),
            (
                "sub-3".to_owned(),
                SubscriptionStatus::Active,
                Some(day(20))
            ),
        ]
    );
}

/// A quest is claimed once per day; the reward XP is added exactly once.
pub async fn quest_claim_once(s: &Stores) {
    let u = user("u1");
    let reward = session(
        "qr-1",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        25,
        false,
        day(2),
    );
    assert!(
        s.quests
            .claim(&u, day(2), "quest_xp", &reward)
            .await
            .expect("claim")
    );
    let reward2 = session(
        "qr-2",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        25,
        false,
        day(2),
    );
    assert!(
        !s.quests
            .claim(&u, day(2), "quest_xp", &reward2)
            .await
            .expect("claim")
    );
    let reward3 = session(
        "qr-3",
        "u1",
        SessionKind::QuestReward,
        None,
        None,
        10,
        false,
        day(2),
    );
    assert!(
        s.quests
            .claim(&u, day(2), "quest_streak", &reward3)
            .await
            .expect("claim")
    );
    assert_eq!(
        s.quests.claimed(&u, day(2)).await.expect("claimed"),
        vec!["quest_streak", "quest_xp"]
    );
    assert!(
        s.quests
            .claimed(&u, day(3))
            .await
            .expect("claimed")
            .is_empty()
    );
    assert_eq!(
        s.profiles
            .get_profile(&u)
            .await
            .expect("p")
            .expect("profile")
            .total_xp,
        35
    );
    // Rewards are not activity.
    assert!(
        s.activity
            .active_days(&u, day(1))
            .await
            .expect("days")
            .is_empty()
    );
}

// ───────────────────────── auth, audit, locks ─────────────────────────

/// Users, password hashes, login sessions and API keys.
pub async fn auth_records(s: &Stores) {
    let a = &s.auth;
    let admin = User {
        id: user("admin@x.io"),
        full_name: "Admin".into(),
        roles: vec![Role::SystemManager, Role::Student],
        enabled: true,
    };
    let stu = User {
        id: user("a-student@x.io"),
        full_name: "Stu".into(),
        roles: vec![Role::Student],
        enabled: false,
    };
    a.create_user(&admin, Some("hash-1")).await.expect("admin");
    a.create_user(&stu, None).await.expect("student");
    assert!(matches!(
        a.create_user(&admin, None).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        a.get_user(&admin.id).await.expect("get"),
        Some(admin.clone())
    );
    assert_eq!(a.get_user(&user("ghost")).await.expect("get"), None);
    assert_eq!(
        a.list_users().await.expect("list"),
        vec![stu.clone(), admin.clone()]
    );
    // Pages of ids, in byte order, from any key (present or not).
    let page = |after: Option<&str>, n: usize| {
        let after = after.map(user);
        async move { a.user_ids_after(after.as_ref(), n).await.expect("page") }
    };
    assert_eq!(page(None, 10).await, vec![stu.id.clone(), admin.id.clone()]);
    assert_eq!(page(None, 1).await, vec![stu.id.clone()]);
    assert_eq!(
        page(Some("a-student@x.io"), 1).await,
        vec![admin.id.clone()]
    );
    assert_eq!(
        page(Some("a-s"), 10).await,
        vec![stu.id.clone(), admin.id.clone()]
    );
    assert_eq!(page(Some("admin@x.io"), 10).await, Vec::<UserId>::new());
    assert_eq!(
        page(Some("A-UPPER"), 10).await.len(),
        2,
        "byte order: upper case first"
    );
    assert_eq!(page(None, 0).await, Vec::<UserId>::new());
    assert_eq!(
        a.password_hash(&admin.id).await.expect("hash"),
        Some("hash-1".into())
    );
    assert_eq!(a.password_hash(&stu.id).await.expect("hash"), None);
    a.set_password_hash(&stu.id, "hash-2").await.expect("set");
    a.set_password_hash(&admin.id, "hash-3").await.expect("set");
    assert_eq!(
        a.password_hash(&stu.id).await.expect("hash"),
        Some("hash-2".into())
    );
    assert_eq!(
        a.password_hash(&admin.id).await.expect("hash"),
        Some("hash-3".into())
    );
    a.create_login_session("sid-h", &admin.id, at(24))
        .await
        .expect("session");
    assert_eq!(
        a.get_login_session("sid-h").await.expect("get"),
        Some((admin.id.clone(), at(24)))
    );
    a.delete_login_session("sid-h").await.expect("delete");
    a.delete_login_session("sid-h").await.expect("delete twice");
    assert_eq!(a.get_login_session("sid-h").await.expect("get"), None);
    let key = ApiKeyRecord {
        key: "k-1".into(),
        user: admin.id.clone(),
        secret_hash: "sh".into(),
    };
    a.create_api_key(&key).await.expect("key");
    assert!(matches!(
        a.create_api_key(&key).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(a.get_api_key("k-1").await.expect("get"), Some(key));
    assert_eq!(a.get_api_key("k-2").await.expect("get"), None);
}

/// The audit log returns the newest events first.
pub async fn audit_recent(s: &Stores) {
    for i in 0..3 {
        s.audit
            .record(&AuditEvent {
                at: at(i),
                actor: (i == 1).then(|| user("admin")),
                action: format!("action.{i}"),
                detail: serde_json::json!({"n": i}),
            })
            .await
            .expect("record");
    }
    let r = s.audit.recent(2).await.expect("recent");
    assert_eq!(
        r.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["action.2", "action.1"]
    );
    assert_eq!(r[1].actor, Some(user("admin")));
    assert_eq!(r[1].detail, serde_json::json!({"n": 1}));
}

/// The audit log reader: newest first with increasing `seq`, filters by
/// action prefix, actor and time window, keyset pages.
pub async fn audit_query(s: &Stores) {
    let actions = [
        "season.create",
        "subscription.grant",
        "subscription.suspend",
        "season.archive",
        "subscription.expire",
        "content.import",
    ];
    for (i, a) in actions.iter().enumerate() {
        s.audit
            .record(&AuditEvent {
                at: at(i as i64),
                actor: Some(user(if i % 2 == 0 { "admin" } else { "<system>" })),
                action: (*a).to_owned(),
                detail: serde_json::json!({"i": i}),
            })
            .await
            .expect("record");
    }
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = s.audit.query(&q(&|_| {})).await.expect("all");
    assert_eq!(
        all.iter()
            .map(|r| r.event.action.as_str())
            .collect::<Vec<_>>(),
        actions.iter().rev().copied().collect::<Vec<_>>()
    );
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "seq decreases");
    assert_eq!(all[5].event.detail, serde_json::json!({"i": 0}));
    let names = |v: Vec<AuditRecord>| v.into_iter().map(|r| r.event.action).collect::<Vec<_>>();
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| q.action = Some("subscription.".into())))
                .await
                .expect("prefix")
        ),
        vec![
            "subscription.expire",
            "subscription.suspend",
            "subscription.grant"
        ]
    );
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| q.action = Some("season.archive".into())))
                .await
                .expect("exact")
        ),
        vec!["season.archive"]
    );
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| q.actor = Some(user("admin"))))
                .await
                .expect("actor")
        ),
        vec![
            "subscription.expire",
            "subscription.suspend",
            "season.create"
        ]
    );
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| {
                    q.since = Some(at(1));
                    q.until = Some(at(3));
                }))
                .await
                .expect("window")
        ),
        vec!["subscription.suspend", "subscription.grant"],
        "since inclusive, until exclusive"
    );
    let first = s.audit.query(&q(&|q| q.limit = 4)).await.expect("page 1");
    assert_eq!(first.len(), 4);
    let cursor = first[3].seq;
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| q.before = Some(cursor)))
                .await
                .expect("page 2")
        ),
        vec!["subscription.grant", "season.create"]
    );
    assert_eq!(
        names(
            s.audit
                .query(&q(&|q| {
                    q.before = Some(cursor);
                    q.action = Some("season".into());
                }))
                .await
                .expect("page 2 filtered")
        ),
        vec!["season.create"]
    );
}

/// A job lease: one holder at a time, renewable, fenced by a growing
/// token, lapsing when not renewed, taken at most once per interval, and
/// every run recorded.
pub async fn job_lock_exclusive(s: &Stores) {
    use std::time::Duration as Std;
    let min = Std::from_secs(60);
    let zero = Std::ZERO;
    let a = s
        .locks
        .try_acquire("nightly", "proc-a", t0(), min, zero)
        .await
        .expect("acquire")
        .expect("free job");
    assert_eq!((a.job.as_str(), a.holder.as_str()), ("nightly", "proc-a"));
    assert_eq!(a.expires_at, t0() + Duration::seconds(60));
    for at in [t0(), t0() + Duration::seconds(30)] {
        let other = s
            .other_locks
            .try_acquire("nightly", "proc-b", at, min, zero);
        assert_eq!(other.await.expect("other"), None, "held until it lapses");
    }
    let hourly = s
        .other_locks
        .try_acquire("hourly", "proc-b", t0(), min, zero);
    assert!(
        hourly.await.expect("other job").is_some(),
        "jobs are independent"
    );
    // Renewed before it lapses: still held after the first expiry.
    let a = s
        .locks
        .renew(&a, t0() + Duration::seconds(50), min)
        .await
        .expect("renew")
        .expect("still held");
    assert_eq!(a.expires_at, t0() + Duration::seconds(110));
    let at100 = t0() + Duration::seconds(100);
    let other = s
        .other_locks
        .try_acquire("nightly", "proc-b", at100, min, zero);
    assert_eq!(other.await.expect("other"), None);
    // Released: the next holder gets a larger token; the old lease is dead.
    let at105 = t0() + Duration::seconds(105);
    assert!(s.locks.release(&a, at105, "ok").await.expect("release"));
    let b = s
        .other_locks
        .try_acquire("nightly", "proc-b", at105, min, zero)
        .await
        .expect("acquire b")
        .expect("released job");
    assert!(
        b.token > a.token,
        "fencing tokens grow: {} then {}",
        a.token,
        b.token
    );
    assert_eq!(
        s.locks.renew(&a, at105, min).await.expect("renew old"),
        None
    );
    assert!(
        !s.locks
            .release(&a, at105, "late")
            .await
            .expect("release old")
    );
    // Not renewed: it lapses, another holder takes it, and the lapsed
    // holder can neither renew nor record an outcome.
    let lapsed = at105 + Duration::seconds(61);
    let c = s
        .locks
        .try_acquire("nightly", "proc-c", lapsed, min, zero)
        .await
        .expect("acquire c")
        .expect("lapsed lease");
    assert!(c.token > b.token);
    assert_eq!(
        s.other_locks.renew(&b, lapsed, min).await.expect("renew"),
        None
    );
    assert!(
        !s.other_locks
            .release(&b, lapsed, "late")
            .await
            .expect("release")
    );
    assert!(
        s.locks
            .release(&c, lapsed, "done")
            .await
            .expect("release c")
    );
    // Once per interval, whoever asks.
    let day = Std::from_secs(3600);
    let d = s.locks.try_acquire("daily", "proc-a", t0(), min, day).await;
    let d = d.expect("acquire").expect("first run");
    assert!(
        s.locks
            .release(&d, t0() + Duration::seconds(10), "ok")
            .await
            .expect("release")
    );
    for (who, secs) in [("proc-a", 20), ("proc-b", 3599)] {
        let again = s
            .other_locks
            .try_acquire("daily", who, t0() + Duration::seconds(secs), min, day)
            .await
            .expect("acquire");
        assert_eq!(again, None, "{who} at +{secs}s: within the interval");
    }
    let next = s
        .other_locks
        .try_acquire("daily", "proc-b", t0() + Duration::seconds(3600), min, day)
        .await
        .expect("acquire");
    assert!(next.is_some(), "the next interval");
    // A run whose holder died is retried once its lease lapses, not a
    // period later; once a run finishes, the period applies again.
    let week = Std::from_secs(7 * 24 * 3600);
    let dead = s
        .locks
        .try_acquire("weekly", "proc-a", t0(), min, week)
        .await;
    assert!(dead.expect("acquire").is_some());
    let held = s
        .other_locks
        .try_acquire("weekly", "proc-b", t0() + Duration::seconds(30), min, week)
        .await
        .expect("acquire");
    assert_eq!(held, None, "still held");
    let retry = s
        .other_locks
        .try_acquire("weekly", "proc-b", t0() + Duration::seconds(61), min, week)
        .await
        .expect("acquire")
        .expect("the dead holder's run is retried");
    let end = t0() + Duration::seconds(70);
    assert!(
        s.other_locks
            .release(&retry, end, "ok")
            .await
            .expect("release")
    );
    let next = s
        .locks
        .try_acquire("weekly", "proc-a", end + Duration::seconds(120), min, week)
        .await
        .expect("acquire");
    assert_eq!(next, None, "finished: the period applies");
    // Every run is recorded, newest first, with its outcome.
    let runs = s.locks.runs("nightly", 10).await.expect("runs");
    let seen: Vec<(u64, &str, Option<&str>)> = runs
        .iter()
        .map(|r| (r.token, r.holder.as_str(), r.outcome.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (c.token, "proc-c", Some("done")),
            (b.token, "proc-b", None),
            (a.token, "proc-a", Some("ok")),
        ]
    );
    assert_eq!(runs[2].started_at, t0());
    assert_eq!(runs[2].finished_at, Some(at105));
    assert_eq!(s.locks.runs("nightly", 1).await.expect("runs").len(), 1);
    assert!(
        s.locks
            .runs("never-ran", 10)
            .await
            .expect("runs")
            .is_empty()
    );
}

/// The invalidation log: read from the end, every entry after the cursor
/// delivered in order, nothing new on the next read, pruned by age.
pub async fn invalidation_log(s: &Stores) {
    let c = &s.coordination;
    let start = c.invalidations_since(None).await.expect("start");
    assert!(start.entries.is_empty(), "a first read starts at the end");
    c.publish(&Invalidation::Catalog).await.expect("publish");
    c.publish(&Invalidation::Session("ab12".into()))
        .await
        .expect("publish");
    c.publish(&Invalidation::User(user("ann")))
        .await
        .expect("publish");
    let batch = c
        .invalidations_since(Some(start.cursor))
        .await
        .expect("read");
    let what: Vec<&Invalidation> = batch.entries.iter().map(|(_, w)| w).collect();
    assert_eq!(
        what,
        vec![
            &Invalidation::Catalog,
            &Invalidation::Session("ab12".into()),
            &Invalidation::User(user("ann")),
        ]
    );
    let seqs: Vec<u64> = batch.entries.iter().map(|(q, _)| *q).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ascending: {seqs:?}");
    assert!(
        seqs.iter()
            .all(|q| *q > start.cursor.seq && *q <= batch.cursor.seq)
    );
    // Nothing new: recent entries may come again, never unseen ones.
    let again = c
        .invalidations_since(Some(batch.cursor))
        .await
        .expect("read again");
    assert!(
        again.entries.iter().all(|(q, _)| seqs.contains(q)),
        "{again:?}"
    );
    assert_eq!(again.cursor.seq, batch.cursor.seq);
    c.publish(&Invalidation::Seasons).await.expect("publish");
    let next = c
        .invalidations_since(Some(batch.cursor))
        .await
        .expect("read");
    let fresh: Vec<&Invalidation> = next
        .entries
        .iter()
        .filter(|(q, _)| !seqs.contains(q))
        .map(|(_, w)| w)
        .collect();
    assert_eq!(fresh, vec![&Invalidation::Seasons]);
    let far = Utc::now() + Duration::days(1);
    assert_eq!(c.prune_invalidations(far).await.expect("prune"), 4);
    let left = c
        .invalidations_since(Some(InvalidationCursor::default()))
        .await
        .expect("read");
    assert!(left.entries.is_empty());
}

/// The safe-mode budget: a sliding global window and a per-learner
/// interval, with the time to wait when denied.
pub async fn safe_mode_budget(s: &Stores) {
    use memora_core::safe_mode::{Admission, DenyReason, SafeModeLimits};
    let limits = SafeModeLimits {
        global_per_window: 3,
        global_window: std::time::Duration::from_secs(60),
        per_user_interval: std::time::Duration::from_secs(30),
        max_items: 5,
    };
    let c = &s.coordination;
    let admit = |u: &'static str, secs: i64| {
        let limits = limits.clone();
        async move {
            c.admit_safe_mode(&user(u), t0() + Duration::seconds(secs), &limits)
                .await
                .expect("admit")
        }
    };
    assert_eq!(admit("ann", 0).await, Admission::Allowed);
    match admit("ann", 1).await {
        Admission::Denied {
            retry_after,
            reason,
        } => {
            assert_eq!(reason, DenyReason::PerUser);
            assert_eq!(retry_after, std::time::Duration::from_secs(29));
        }
        other => panic!("the learner's interval: {other:?}"),
    }
    assert_eq!(admit("bob", 10).await, Admission::Allowed);
    assert_eq!(admit("cid", 20).await, Admission::Allowed);
    match admit("dan", 25).await {
        Admission::Denied {
            retry_after,
            reason,
        } => {
            assert_eq!(reason, DenyReason::Global);
            assert_eq!(retry_after, std::time::Duration::from_secs(35));
        }
        other => panic!("the global window: {other:?}"),
    }
    // Ann's admission left the window: one place is free again.
    assert_eq!(admit("dan", 60).await, Admission::Allowed);
    assert!(!admit("eve", 61).await.is_allowed());
    assert_eq!(admit("ann", 71).await, Admission::Allowed);
}

/// Devices: registered once (later registrations update kind and name,
/// never `registered_at`, never move `last_active` back), listed most
/// recently active first, and deleted together with the sessions bound to
/// them.
pub async fn devices_and_their_sessions(s: &Stores) {
    let (ann, bob) = (user("ann"), user("bob"));
    let dev = |u: &UserId, id: &str, kind: DeviceKind, h: i64| Device {
        user: u.clone(),
        device_id: id.to_owned(),
        kind,
        name: Some(format!("{id} name")),
        registered_at: at(h),
        last_active: at(h),
    };
    let d = &s.devices;
    assert!(
        d.upsert_device(&dev(&ann, "phone-1", DeviceKind::Mobile, 1))
            .await
            .expect("new")
    );
    assert!(
        d.upsert_device(&dev(&ann, "laptop", DeviceKind::Desktop, 2))
            .await
            .expect("new")
    );
    assert!(
        d.upsert_device(&dev(&bob, "phone-1", DeviceKind::Mobile, 3))
            .await
            .expect("other user")
    );
    let mut again = dev(&ann, "phone-1", DeviceKind::Tablet, 5);
    again.name = None;
    assert!(!d.upsert_device(&again).await.expect("known"));
    let list = d.list_devices(&ann).await.expect("list");
    let ids: Vec<&str> = list.iter().map(|x| x.device_id.as_str()).collect();
    assert_eq!(ids, vec!["phone-1", "laptop"], "most recently active first");
    assert_eq!(list[0].kind, DeviceKind::Tablet);
    assert_eq!(list[0].name, None);
    assert_eq!(list[0].registered_at, at(1), "registration time kept");
    assert_eq!(list[0].last_active, at(5));
    d.touch_device(&ann, "phone-1", at(4))
        .await
        .expect("touch back");
    d.touch_device(&ann, "laptop", at(6)).await.expect("touch");
    d.touch_device(&ann, "unknown", at(6))
        .await
        .expect("touch unknown");
    let list = d.list_devices(&ann).await.expect("list");
    assert_eq!(list[0].device_id, "laptop");
    assert_eq!(list[1].last_active, at(5), "never moved back");
    // Sessions bound to a device end with it; others stay.
    let exp = at(100);
    for h in [
        "h-ann-phone-a",
        "h-ann-phone-b",
        "h-ann-laptop",
        "h-ann-none",
        "h-bob-phone",
    ] {
        let u = if h.starts_with("h-bob") { &bob } else { &ann };
        s.auth
            .create_login_session(h, u, exp)
            .await
            .expect("session");
    }
    d.bind_session("h-ann-phone-a", &ann, "phone-1")
        .await
        .expect("bind");
    d.bind_session("h-ann-phone-b", &ann, "phone-1")
        .await
        .expect("bind");
    d.bind_session("h-ann-laptop", &ann, "laptop")
        .await
        .expect("bind");
    d.bind_session("h-bob-phone", &bob, "phone-1")
        .await
        .expect("bind");
    // Not ann's session: not bound.
    d.bind_session("h-bob-phone", &ann, "laptop")
        .await
        .expect("bind foreign");
    assert_eq!(
        d.session_device("h-ann-phone-a").await.expect("device"),
        Some("phone-1".to_owned())
    );
    assert_eq!(
        d.session_device("h-bob-phone").await.expect("device"),
        Some("phone-1".to_owned())
    );
    assert_eq!(d.session_device("h-ann-none").await.expect("device"), None);
    assert_eq!(d.session_device("no-such").await.expect("device"), None);
    let mut ended = d
        .delete_device(&ann, "phone-1")
        .await
        .expect("delete")
        .expect("known device");
    ended.sort();
    assert_eq!(ended, vec!["h-ann-phone-a", "h-ann-phone-b"]);
    for (h, alive) in [
        ("h-ann-phone-a", false),
        ("h-ann-phone-b", false),
        ("h-ann-laptop", true),
        ("h-ann-none", true),
        ("h-bob-phone", true),
    ] {
        let got = s.auth.get_login_session(h).await.expect("session");
        assert_eq!(got.is_some(), alive, "{h}");
    }
    assert_eq!(d.delete_device(&ann, "phone-1").await.expect("again"), None);
    assert_eq!(
        d.delete_device(&ann, "laptop").await.expect("laptop"),
        Some(vec!["h-ann-laptop".to_owned()])
    );
    assert!(d.list_devices(&ann).await.expect("list").is_empty());
    assert_eq!(d.list_devices(&bob).await.expect("list").len(), 1);
}

/// Stale schedules: marked idempotently, listed up to a limit, cleared —
/// only if not marked again since they were read.
pub async fn stale_schedule_set(s: &Stores) {
    let c = &s.coordination;
    assert!(c.stale_schedules(10).await.expect("list").is_empty());
    let (a, b) = ((user("ann"), season(2026)), (user("bob"), season(2026)));
    c.mark_stale(&[a.clone(), b.clone()]).await.expect("mark");
    c.mark_stale(std::slice::from_ref(&a))
        .await
        .expect("mark again");
    let mut all = c.stale_schedules(10).await.expect("list");
    all.sort();
    let keys: Vec<(UserId, SeasonId)> = all
        .iter()
        .map(|m| (m.user.clone(), m.season.clone()))
        .collect();
    assert_eq!(keys, vec![a.clone(), b.clone()]);
    assert!(all[0].mark > all[1].mark, "ann was marked twice: {all:?}");
    assert_eq!(c.stale_schedules(1).await.expect("list").len(), 1);
    // Bob is marked again after the read: clearing what was read keeps him.
    c.mark_stale(std::slice::from_ref(&b))
        .await
        .expect("mark during drain");
    c.clear_stale(&all).await.expect("clear");
    let left = c.stale_schedules(10).await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].user.clone(), left[0].season.clone()), b);
    c.clear_stale(&left).await.expect("clear");
    assert!(c.stale_schedules(10).await.expect("list").is_empty());
    c.mark_stale(&[]).await.expect("mark nothing");
    c.clear_stale(&[]).await.expect("clear nothing");
}

// ───────────────────────── content ─────────────────────────

fn catalog(title: &str) -> Catalog {
    let subj = subject("math");
    let track = TrackId::new("tr-1").expect("track");
    let unit = UnitId::new("un-1").expect("unit");
    let top = topic("tp-1");
    Catalog {
        subjects: vec![Subject {
            id: subj.clone(),
            title: title.into(),
            icon: Some("🧮".into()),
            is_published: true,
            is_paid: true,
        }],
        tracks: vec![Track {
            id: track.clone(),
            subject: subj.clone(),
            name: "Main".into(),
            is_default: true,
            unlock_level: 3,
            icon: None,
            description: Some("d".into()),
            is_linear: true,
            is_published: true,
            is_paid: false,
            is_sold_separately: true,
        }],
        units: vec![Unit {
            id: unit.clone(),
            subject: subj.clone(),
            track,
            title: "Unit 1".into(),
            order: 2,
            structure: UnitStructure::TopicBased,
            is_linear_topics: false,
            is_free_preview: true,
            is_published: true,
        }],
        topics: vec![Topic {
            id: top.clone(),
            unit: unit.clone(),
            title: "Topic".into(),
            description: None,
            order: 1,
            is_linear: true,
            is_free_preview: false,
            is_published: true,
        }],
        lessons: vec![Lesson {
            id: LessonId::new("ls-1").expect("lesson"),
            title: "Lesson".into(),
            unit,
            topic: Some(top),
            xp_reward: 20,
            order: 1,
            is_published: true,
            stages: vec![
                Stage {
                    id: StageId::new("st-2").expect("stage"),
                    title: "Reveal".into(),
                    config: StageConfig::Reveal {
                        image: None,
                        sentence: "The cat sat".into(),
                        highlights: vec![Highlight {
                            word: "cat".into(),
                            explanation: Some("animal".into()),
                            id: None,
                        }],
                    },
                },
                Stage {
                    id: StageId::new("st-1").expect("stage"),
                    title: "Quiz".into(),
                    config: StageConfig::Quiz(serde_json::json!({"q": "2+2", "a": 4})),
                },
            ],
        }],
        grades: vec![Grade {
            id: GradeId::new("g12").expect("g"),
            name: "Grade 12".into(),
            valid_streams: vec![StreamId::new("sci").expect("s")],
        }],
        streams: vec![Stream {
            id: StreamId::new("sci").expect("s"),
            name: "Scientific".into(),
        }],
        plans: vec![AcademicPlan {
            id: PlanId::new("plan-1").expect("plan"),
            title: "Plan".into(),
            grade: GradeId::new("g12").expect("g"),
            stream: Some(StreamId::new("sci").expect("s")),
            season: season(2026),
            subjects: vec![PlanSubject {
                subject: subj,
                display_name: Some("Maths".into()),
                is_mandatory: true,
                selection: UnitSelection::SpecificUnits(vec![UnitId::new("un-1").expect("u")]),
            }],
            version: 0,
        }],
    }
}

/// Import then load returns the same catalog; re-import replaces by id and
/// bumps plan versions; every import makes the next catalog version.
pub async fn content_round_trip(s: &Stores) {
    assert_eq!(
        s.content.load_catalog().await.expect("empty"),
        Catalog::default()
    );
    assert_eq!(s.content.catalog_version().await.expect("version"), 0);
    let c1 = catalog("Mathematics");
    assert_eq!(s.content.import_catalog(&c1).await.expect("import"), 1);
    assert_eq!(s.content.catalog_version().await.expect("version"), 1);
    let mut expected = c1.clone();
    expected.plans[0].version = 1;
    assert_eq!(s.content.load_catalog().await.expect("load"), expected);
    let mut c2 = catalog("Maths v2");
    c2.lessons[0].stages.remove(0);
    c2.plans[0].subjects[0].selection = UnitSelection::AllUnits;
    assert_eq!(s.content.import_catalog(&c2).await.expect("re-import"), 2);
    assert_eq!(s.content.catalog_version().await.expect("version"), 2);
    let loaded = s.content.load_catalog().await.expect("load");
    assert_eq!(loaded.subjects[0].title, "Maths v2");
    assert_eq!(loaded.lessons[0].stages.len(), 1);
    assert_eq!(loaded.plans[0].version, 2);
    assert_eq!(
        loaded.plans[0].subjects[0].selection,
        UnitSelection::AllUnits
    );
    assert_eq!(loaded.subjects.len(), 1);
}

/// Generates one `#[tokio::test]` per store check, grouped in one module
/// per port suite (`tracker_store::persist_is_idempotent`, …). `$setup` is
/// an async expression yielding `Option<H>` (None = skipped) where `H` has
/// `fn stores(&self) -> Stores` and `async fn teardown(self)`; it is
/// evaluated inside the generated modules, which glob-import their parent.
#[macro_export]
macro_rules! store_conformance {
    ($setup:expr) => {
        $crate::store_conformance!(@suite $setup; tracker_store, tracker;
            persist_is_idempotent, persist_newer_wins, persist_collapses_duplicates,
            persist_unknown_season_rejected, due_queries, topic_candidate_order,
            mastery_counts);
        $crate::store_conformance!(@suite $setup; review_log_store, review_log;
            review_log_reads, reviewed_since_lists_review_answers);
        $crate::store_conformance!(@suite $setup; season_scan_store, season_scan;
            scan_season_keyset, sample_is_deterministic, season_aggregates);
        $crate::store_conformance!(@suite $setup; archive_store, archive;
            archive_lifecycle);
        $crate::store_conformance!(@suite $setup; profile_store, profile;
            profiles_round_trip);
        $crate::store_conformance!(@suite $setup; activity_store, activity;
            sessions_and_activity, leaderboards, sessions_with_pending_batches);
        $crate::store_conformance!(@suite $setup; fsrs_param_store, fsrs_params;
            fsrs_params_round_trip, fit_quality_is_recorded_and_summarised);
        $crate::store_conformance!(@suite $setup; job_progress_store, job_progress;
            progress_round_trip_owner_and_takeover);
        $crate::store_conformance!(@suite $setup; other_stores, store;
            seasons_lifecycle, commerce_rules, commerce_admin, quest_claim_once, auth_records,
            audit_recent, audit_query, job_lock_exclusive, invalidation_log, safe_mode_budget,
            stale_schedule_set, devices_and_their_sessions, content_round_trip);
        $crate::store_conformance!(@suite $setup; question_numbers, numbers;
            numbers_are_permanent_and_consecutive, find_numbers_assigns_nothing,
            numbers_map_back, concurrent_assignment_agrees,
            numbered_after_pages_in_number_order, labels_have_their_own_numbers);
    };
    (@suite $setup:expr; $module:ident, $suite:ident; $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = $setup.await else { return };
                    let stores = h.stores();
                    let run = tokio::spawn(async move {
                        $crate::conformance::$suite::$name(&stores).await
                    })
                    .await;
                    h.teardown().await;
                    if let Err(e) = run {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}
