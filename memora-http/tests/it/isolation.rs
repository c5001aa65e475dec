//! The institution isolation suite (issue 15).
//!
//! Two institutions, `alpha` (A) and `beta` (B), are created by the platform
//! operator and filled with data: B gets the demo dataset plus content,
//! names and records of its own, every display text carrying [`MARKER`].
//! Then a learner and a manager of A call **every** method of the registry
//! with B's identifiers (learners, lessons, questions, seasons, store items,
//! purchase requests, subscriptions, jobs, devices, API keys, quests):
//!
//! * no response contains B's data: no text carrying [`MARKER`], and no id
//!   B generated (request, subscription, job, API key, user) that the request
//!   itself did not name (an error message may echo its own argument);
//! * no call answers with a 5xx;
//! * B's stored state is byte-for-byte what it was (its entries in the
//!   platform directory, and the in-memory backend's fingerprint; on
//!   PostgreSQL + Redis, every row of B's schema and every key of B's
//!   namespace).
//!
//! [`CASES`] has one entry per registered method; a method added to the
//! registry without an entry fails [`every_registered_method_has_an_attack`].
//! The suite runs on the in-memory backend and on PostgreSQL + Redis (which
//! skips with a notice when they are unreachable, and fails under `CI`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::http::StatusCode;
use memora_core::domain::{Actor, Institution, InstitutionId, Role};
use memora_core::ids::UserId;
use memora_core::memory::{InMemoryBackend, InMemoryDirectory, Sha256Hasher, SystemClock};
use memora_core::services::{Config, Platform, TenantFactory, TenantScope};
use memora_core::{CoreResult, Memora};
use memora_http::api::METHODS;
use memora_http::{AppState, router};
use serde_json::{Value, json};

use crate::endpoints::call;
use crate::hostile_devices::login_as;

/// Carried by every display text of B (names, titles, texts).
const MARKER: &str = "BETA-SECRET";
/// The password of every account of the suite.
pub(crate) const PWD: &str = "Isolation-Suite-Pass-1";
pub(crate) const OPERATOR: &str = "operator@platform.test";
const A_LEARNER: &str = "learner@alpha.test";
const A_MANAGER: &str = "manager@alpha.test";
const B_LEARNER: &str = "learner@beta.test";
const B_MANAGER: &str = "manager@beta.test";
const B_SEASON: &str = "SEASON-2031-BETA";
const B_ITEM: &str = "beta-item";
const B_DEVICE: &str = "beta-phone-1";

// ───────────────────────────── the platform ─────────────────────────────

/// Reads the stored state of one institution.
#[async_trait]
pub(crate) trait StateProbe: Send + Sync {
    async fn state(&self, institution: &InstitutionId) -> String;
}

/// A platform behind the real router, and how to read an institution's
/// stored state.
pub(crate) struct Stack {
    pub(crate) app: Router,
    pub(crate) platform: Arc<Platform>,
    pub(crate) probe: Arc<dyn StateProbe>,
    _stop: tokio::sync::watch::Sender<bool>,
    cleanup: Option<PgRedisCleanup>,
}

impl Stack {
    async fn teardown(self) {
        let _ = self._stop.send(true);
        if let Some(c) = self.cleanup {
            c.run().await;
        }
    }
}

/// The in-memory institutions: each a fresh [`InMemoryBackend`] (kept so
/// its state can be fingerprinted).
/// As the server does, every institution shares the home institution's
/// failed-login counters.
struct MemTenants {
    backends: Mutex<HashMap<InstitutionId, InMemoryBackend>>,
    attempts: Arc<dyn memora_core::ports::AttemptCounter>,
}

fn memory_ports(backend: &InMemoryBackend) -> memora_core::ports::Ports {
    let mut ports = backend.ports();
    ports.clock = Arc::new(SystemClock);
    // Random ids: sequential ones would repeat across institutions and
    // read as leaks.
    ports.ids = Arc::new(memora_http::security::RandomIds);
    ports.hasher = Arc::new(Sha256Hasher);
    ports
}

#[async_trait]
impl TenantFactory for MemTenants {
    async fn open(&self, inst: &Institution, scope: TenantScope) -> CoreResult<Arc<Memora>> {
        let backend = InMemoryBackend::new();
        let mut ports = memory_ports(&backend);
        ports.attempts = Some(Arc::clone(&self.attempts));
        let app = Arc::new(Memora::in_institution(ports, Config::default(), scope));
        self.backends
            .lock()
            .unwrap()
            .insert(inst.id.clone(), backend);
        Ok(app)
    }
}

#[async_trait]
impl StateProbe for MemTenants {
    async fn state(&self, institution: &InstitutionId) -> String {
        self.backends.lock().unwrap()[institution].fingerprint()
    }
}

/// The platform on the in-memory backend.
pub(crate) async fn memory_stack() -> Stack {
    let directory = Arc::new(InMemoryDirectory::new());
    let home_backend = InMemoryBackend::new();
    let attempts: Arc<dyn memora_core::ports::AttemptCounter> =
        Arc::new(memora_core::memory::LocalAttempts::default());
    let mut home_ports = memory_ports(&home_backend);
    home_ports.attempts = Some(Arc::clone(&attempts));
    let home = Arc::new(Memora::in_institution(
        home_ports,
        Config::default(),
        TenantScope {
            institution: InstitutionId::home(),
            directory: Some(directory.clone()),
        },
    ));
    let tenants = Arc::new(MemTenants {
        backends: Mutex::default(),
        attempts,
    });
    let platform = Arc::new(Platform::new(home, directory, tenants.clone()));
    let (stop, _) = tokio::sync::watch::channel(false);
    finish(platform, tenants, stop, None).await
}

async fn finish(
    platform: Arc<Platform>,
    probe: Arc<dyn StateProbe>,
    stop: tokio::sync::watch::Sender<bool>,
    cleanup: Option<PgRedisCleanup>,
) -> Stack {
    platform
        .home()
        .auth()
        .create_user(
            &Actor::system(),
            &UserId::new(OPERATOR).unwrap(),
            "Platform Operator",
            vec![Role::SystemManager],
            Some(PWD),
        )
        .await
        .unwrap();
    let app = router(Arc::new(AppState {
        memora: Arc::clone(platform.home()),
        platform: Some(Arc::clone(&platform)),
        metrics: None,
        secure_cookies: false,
        metrics_token: None,
    }));
    Stack {
        app,
        platform,
        probe,
        _stop: stop,
        cleanup,
    }
}

/// What to remove after a PostgreSQL + Redis run.
struct PgRedisCleanup {
    pg_url: String,
    home_schema: String,
    redis: memora_cache_redis::RedisConfig,
}

impl PgRedisCleanup {
    async fn run(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.pg_url).await {
            let schemas: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '\\_\\_%'",
            )
            .bind(&self.home_schema)
            .fetch_all(&mut c)
            .await
            .unwrap_or_default();
            for s in schemas {
                let _ = sqlx::query(&format!("DROP SCHEMA \"{s}\" CASCADE"))
                    .execute(&mut c)
                    .await;
            }
        }
        memora_tests::redis_delete_namespace(&self.redis).await;
    }
}

/// Reads an institution's schema and Redis namespace.
struct PgRedisProbe {
    pool: sqlx::PgPool,
    home_schema: String,
    redis: redis::aio::MultiplexedConnection,
    namespace: String,
}

#[async_trait]
impl StateProbe for PgRedisProbe {
    async fn state(&self, institution: &InstitutionId) -> String {
        let schema = memora_store_postgres::institution_schema(&self.home_schema, institution)
            .expect("a plain schema name");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
        )
        .bind(&schema)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        assert!(tables.len() > 10, "{schema} has its tables: {tables:?}");
        let mut out = Vec::new();
        for t in tables {
            let digest: Option<String> = sqlx::query_scalar(&format!(
                "SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM \"{schema}\".\"{t}\" x"
            ))
            .fetch_one(&self.pool)
            .await
            .unwrap();
            out.push(format!("pg {t}: {}", digest.unwrap_or_default()));
        }
        let ns = format!("{}i:{}:", self.namespace, institution.as_str());
        let mut con = self.redis.clone();
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{ns}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .unwrap();
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        keys.sort();
        for k in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut con)
                .await
                .unwrap();
            let value = match kind.as_str() {
                "string" => format!(
                    "{:?}",
                    redis::cmd("GET")
                        .arg(&k)
                        .query_async::<Option<Vec<u8>>>(&mut con)
                        .await
                        .unwrap()
                ),
                "hash" => {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
                        .arg(&k)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "zset" => format!(
                    "{:?}",
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async::<Vec<Vec<u8>>>(&mut con)
                        .await
                        .unwrap()
                ),
                "set" => {
                    let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                        .arg(&k)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "list" => format!(
                    "{:?}",
                    redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query_async::<Vec<Vec<u8>>>(&mut con)
                        .await
                        .unwrap()
                ),
                // A stream's entries (its consumer group's bookkeeping
                // changes whenever the worker polls).
                "stream" => format!(
                    "{:?}",
                    redis::cmd("XRANGE")
                        .arg(&k)
                        .arg("-")
                        .arg("+")
                        .query_async::<redis::Value>(&mut con)
                        .await
                        .unwrap()
                ),
                "none" => continue,
                other => format!("<{other}>"),
            };
            out.push(format!("redis {k}: {value}"));
        }
        out.join("\n")
    }
}

/// The platform on PostgreSQL + Redis, wired as the server wires it.
pub(crate) async fn pg_redis_stack() -> Option<Stack> {
    let pg_url = memora_tests::pg_url_or_skip().await?;
    let redis_url = memora_tests::redis_url_or_skip().await?;
    let tag = memora_tests::random_namespace()
        .trim_end_matches(':')
        .replace('-', "_");
    let home_schema = format!("iso_{tag}");
    let namespace = format!("iso-{tag}:");
    let cfg = memora_http::backend::BackendConfig {
        database_url: Some(pg_url.clone()),
        redis_url: Some(redis_url.clone()),
        redis_namespace: Some(namespace.clone()),
        schema: Some(home_schema.clone()),
        db_pool_size: 4,
        queue_reclaim_idle: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let built = memora_http::backend::build(&cfg).await.unwrap();
    let home = Arc::new(Memora::in_institution(
        built.ports.clone(),
        Config::default(),
        TenantScope {
            institution: InstitutionId::home(),
            directory: Some(Arc::clone(&built.directory)),
        },
    ));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (platform, _handles) = memora_http::tenancy::start_platform(
        Arc::clone(&home),
        &built,
        &cfg,
        2,
        memora_http::jobs::Schedule::default(),
        stop_rx,
        memora_http::tenancy::Start::Server,
    )
    .await
    .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg_url)
        .await
        .unwrap();
    let redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let probe = Arc::new(PgRedisProbe {
        pool,
        home_schema: home_schema.clone(),
        redis,
        namespace: namespace.clone(),
    });
    let cleanup = PgRedisCleanup {
        pg_url,
        home_schema,
        redis: memora_cache_redis::RedisConfig::single(redis_url).namespace(namespace),
    };
    Some(finish(platform, probe, stop, Some(cleanup)).await)
}

// ──────────────────────────── B's data ────────────────────────────

/// What B holds, as A could name it.
#[derive(Debug, Default)]
struct BIds {
    season: String,
    subject: String,
    track: String,
    unit: String,
    topic: String,
    lesson: String,
    question: String,
    request: String,
    subscription: String,
    rebuild_job: String,
    persistence_job: String,
    api_key: String,
    quest: String,
    grade: String,
}

impl BIds {
    /// Ids only B generated or holds (A cannot create them: the cases
    /// never create content, and account names are platform-unique): none
    /// may appear in a response to A unless A's own request named it.
    fn generated(&self) -> Vec<&str> {
        vec![
            &self.request,
            &self.subscription,
            &self.rebuild_job,
            &self.persistence_job,
            &self.api_key,
            &self.subject,
            &self.track,
            &self.unit,
            &self.topic,
            &self.lesson,
            &self.question,
            B_LEARNER,
            B_MANAGER,
        ]
    }
}

/// The demo catalog's subjects, tracks, units, topics and lessons with
/// every id prefixed `beta-` and every display text marked: content only B
/// has.
fn beta_bundle(season: &str) -> Value {
    let season = memora_core::ids::SeasonId::new(season).unwrap();
    let catalog = memora_core::demo::demo_catalog(&season).unwrap();
    let mut v = serde_json::to_value(&catalog).unwrap();
    let mut ids = BTreeSet::new();
    collect_ids(&v, &mut ids);
    rewrite(&mut v, &ids, None);
    let keep = ["subjects", "tracks", "units", "topics", "lessons"];
    let obj = v.as_object_mut().unwrap();
    obj.retain(|k, _| keep.contains(&k.as_str()));
    v
}

fn collect_ids(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "id" {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_owned());
                    }
                }
                collect_ids(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, out)),
        _ => {}
    }
}

const TEXT_KEYS: [&str; 6] = [
    "title",
    "name",
    "display_name",
    "description",
    "sentence",
    "question",
];

fn rewrite(v: &mut Value, ids: &BTreeSet<String>, key: Option<&str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                rewrite(x, ids, Some(k));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, ids, key)),
        Value::String(s) => {
            if ids.contains(s.as_str()) {
                *s = format!("beta-{s}");
            } else if key.is_some_and(|k| TEXT_KEYS.contains(&k)) {
                *s = format!("{s} {MARKER}");
            }
        }
        _ => {}
    }
}

/// A signed-in session (cookie).
async fn session(app: &Router, usr: &str) -> String {
    login_as(app, usr, PWD, json!({}))
        .await
        .unwrap_or_else(|e| panic!("login {usr}: {e:?}"))
}

async fn ok(app: &Router, method: &str, cookie: &str, body: Value) -> Value {
    let (s, v) = call(app, method, Some(cookie), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{method} {body}: {v}");
    v["message"].clone()
}

/// Creates A and B, fills them, and returns B's ids.
async fn populate(t: &Stack) -> BIds {
    let operator = session(&t.app, OPERATOR).await;
    for (inst, name, manager, manager_name, learner, learner_name) in [
        (
            "alpha",
            "Alpha School",
            A_MANAGER,
            "Alpha Manager",
            A_LEARNER,
            "Alpha Learner",
        ),
        (
            "beta",
            "Beta School BETA-SECRET",
            B_MANAGER,
            "Beta Manager BETA-SECRET",
            B_LEARNER,
            "Beta Learner BETA-SECRET",
        ),
    ] {
        ok(
            &t.app,
            "memora.api.platform.create_institution",
            &operator,
            json!({"institution": inst, "name": name, "manager": manager,
                   "manager_full_name": manager_name, "manager_password": PWD}),
        )
        .await;
        let app = t
            .platform
            .tenant(&InstitutionId::new(inst).unwrap())
            .unwrap();
        memora_core::demo::seed_demo_as(
            &app,
            PWD,
            memora_core::demo::DemoAccounts {
                admin: (manager, manager_name),
                student: (learner, learner_name),
            },
        )
        .await
        .unwrap();
    }

    let bm = session(&t.app, B_MANAGER).await;
    let bl = session(&t.app, B_LEARNER).await;
    let seasons = ok(&t.app, "memora.api.admin.list_seasons", &bm, json!({})).await;
    let active = seasons
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["is_active"] == true)
        .unwrap_or_else(|| panic!("an active season: {seasons}"))["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = beta_bundle(&active);
    ok(
        &t.app,
        "memora.api.admin.import_content",
        &bm,
        json!({"bundle": bundle, "mode": "merge"}),
    )
    .await;
    let first = |list: &str, key: Option<(&str, &str)>| -> String {
        bundle[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| key.is_none_or(|(k, v)| x[k] == v))
            .or_else(|| bundle[list].as_array().unwrap().first())
            .unwrap_or_else(|| panic!("the bundle has {list}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let subject = first("subjects", None);
    let track = first("tracks", Some(("subject", &subject)));
    let unit = first("units", Some(("track", &track)));
    let topic = first("topics", Some(("unit", &unit)));
    let lesson = first("lessons", None);
    let lesson_json = bundle["lessons"][0].clone();
    let question = format!(
        "{}:0",
        lesson_json["stages"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a lesson with stages: {lesson_json}"))
    );
    ok(
        &t.app,
        "memora.api.admin.create_season",
        &bm,
        json!({"season_name": B_SEASON, "title": format!("Year {MARKER}"),
               "start_date": "2030-09-01", "end_date": "2031-06-30"}),
    )
    .await;
    ok(
        &t.app,
        "memora.api.store.create_store_item",
        &bm,
        json!({"item_id": B_ITEM, "item_name": format!("Bundle {MARKER}"), "price": 100,
               "season": active, "contents": [{"type": "Subject", "id": subject}]}),
    )
    .await;
    let request = ok(
        &t.app,
        "memora.api.store.request_purchase",
        &bl,
        json!({"item_id": "item-science", "payment_method": "cash"}),
    )
    .await;
    let requests = ok(
        &t.app,
        "memora.api.store.list_purchase_requests",
        &bm,
        json!({}),
    )
    .await;
    let request_id = requests
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["name"].as_str().or(r["id"].as_str()))
        .unwrap_or_else(|| panic!("B's purchase request: {request} / {requests}"))
        .to_owned();
    let sub = ok(
        &t.app,
        "memora.api.store.grant_subscription",
        &bm,
        json!({"user": B_LEARNER, "item_id": "item-all"}),
    )
    .await;
    let rebuild = ok(
        &t.app,
        "memora.api.srs.rebuild_season_cache",
        &bm,
        json!({"season_name": active}),
    )
    .await;
    let review = ok(
        &t.app,
        "memora.api.reviews.get_review_session",
        &bl,
        json!({}),
    )
    .await;
    let q = review["questions"][0]["question_id"]
        .as_str()
        .unwrap_or_else(|| panic!("B's learner has reviews due: {review}"))
        .to_owned();
    let submitted = ok(
        &t.app,
        "memora.api.reviews.submit_review_session",
        &bl,
        json!({"responses": [{"question_id": q, "quality": 4, "response_time_ms": 3000}]}),
    )
    .await;
    ok(
        &t.app,
        "memora.api.auth.register_device",
        &bl,
        json!({"device_id": B_DEVICE, "device_type": "mobile", "device_name": format!("Phone {MARKER}")}),
    )
    .await;
    let key = ok(
        &t.app,
        "memora.api.admin.create_api_key",
        &bm,
        json!({"user": B_LEARNER}),
    )
    .await;
    let quests = ok(&t.app, "memora.api.quests.get_daily_quests", &bl, json!({})).await;
    let quest = quests
        .as_array()
        .or(quests["quests"].as_array())
        .and_then(|q| q.first())
        .and_then(|q| q["quest_id"].as_str().or(q["id"].as_str()))
        .unwrap_or("daily-review")
        .to_owned();
    // B's own views show B's marked data (so a leak would show).
    for (method, who) in [
        ("memora.api.store.list_store_items", &bm),
        ("memora.api.admin.list_seasons", &bm),
        ("memora.api.leaderboard.get_leaderboard", &bl),
        ("memora.api.auth.get_my_devices", &bl),
    ] {
        let seen = ok(&t.app, method, who, json!({})).await;
        assert!(
            seen.to_string().contains(MARKER),
            "B sees its data in {method}: {seen}"
        );
    }
    let ids = BIds {
        season: B_SEASON.into(),
        subject,
        track,
        unit,
        topic,
        lesson,
        question,
        request: request_id,
        subscription: sub["id"].as_str().unwrap().to_owned(),
        rebuild_job: rebuild["job_id"].as_str().unwrap().to_owned(),
        persistence_job: submitted["persistence_job_id"].as_str().unwrap().to_owned(),
        api_key: key["api_key"].as_str().unwrap().to_owned(),
        quest,
        grade: "G12".into(),
    };
    assert!(ids.api_key.starts_with("beta~"), "{ids:?}");
    ids
}

// ──────────────────────────── the attacks ────────────────────────────

/// One attack per registered method: the arguments A sends, naming B's
/// things.
type Case = (&'static str, fn(&BIds) -> Value);

const CASES: &[Case] = &[
    (
        "login",
        |_| json!({"usr": B_LEARNER, "pwd": "not-the-password-1"}),
    ),
    ("logout", |_| json!({})),
    ("get_logged_user", |_| json!({})),
    ("get_subjects", |_| json!({})),
    ("get_my_subjects", |_| json!({})),
    ("get_game_tracks", |b| json!({"subject": b.subject})),
    (
        "get_map_data",
        |b| json!({"subject": b.subject, "track": b.track}),
    ),
    (
        "get_track_details",
        |b| json!({"subject": b.subject, "track": b.track}),
    ),
    ("get_topic_details", |b| json!({"topic_id": b.topic})),
    ("get_unit_topics", |b| json!({"unit_id": b.unit})),
    ("get_lesson_details", |b| json!({"lesson_id": b.lesson})),
    (
        "submit_session",
        |b| json!({"lesson_id": b.lesson, "interactions": [{"question_id": b.question, "is_correct": true}]}),
    ),
    (
        "get_review_session",
        |b| json!({"subject": b.subject, "topic_id": b.topic}),
    ),
    (
        "submit_review_session",
        |b| json!({"responses": [{"question_id": b.question, "quality": 5}]}),
    ),
    (
        "get_persistence_status",
        |b| json!({"job_id": b.persistence_job}),
    ),
    ("get_player_profile", |_| json!({})),
    ("get_full_profile_stats", |b| json!({"subject": b.subject})),
    ("get_player_login_info", |_| json!({})),
    ("set_time_zone", |_| json!({"time_zone": "Europe/Paris"})),
    ("get_daily_quests", |b| json!({"subject": b.subject})),
    ("claim_quest_reward", |b| json!({"quest_id": b.quest})),
    ("get_leaderboard", |b| json!({"subject": b.subject})),
    ("get_academic_masters", |_| json!({})),
    (
        "set_academic_profile",
        |b| json!({"grade": b.grade, "season": b.season}),
    ),
    ("get_store_items", |_| json!({})),
    ("request_purchase", |_| json!({"item_id": B_ITEM})),
    ("list_purchase_requests", |_| json!({})),
    (
        "approve_purchase_request",
        |b| json!({"request_id": b.request}),
    ),
    (
        "reject_purchase_request",
        |b| json!({"request_id": b.request}),
    ),
    ("get_user_access_keys", |_| json!({})),
    ("get_student_plan_version", |_| json!({"user": B_LEARNER})),
    (
        "get_plan_version",
        |b| json!({"grade": b.grade, "season": b.season}),
    ),
    ("list_store_items", |_| json!({})),
    ("create_store_item", |b| {
        json!({"item_id": B_ITEM, "item_name": "Copy", "price": 1, "season": b.season,
               "contents": [{"type": "Subject", "id": b.subject}]})
    }),
    (
        "update_store_item",
        |_| json!({"item_id": B_ITEM, "price": 1}),
    ),
    ("unpublish_store_item", |_| json!({"item_id": B_ITEM})),
    ("list_subscriptions", |_| json!({"user": B_LEARNER})),
    (
        "grant_subscription",
        |_| json!({"user": B_LEARNER, "item_id": B_ITEM}),
    ),
    (
        "suspend_subscription",
        |b| json!({"subscription_id": b.subscription}),
    ),
    (
        "resume_subscription",
        |b| json!({"subscription_id": b.subscription}),
    ),
    (
        "expire_subscription",
        |b| json!({"subscription_id": b.subscription}),
    ),
    ("get_cache_status", |_| json!({})),
    (
        "rebuild_season_cache",
        |b| json!({"season_name": b.season, "resume_job_id": b.rebuild_job}),
    ),
    ("get_rebuild_status", |b| json!({"job_id": b.rebuild_job})),
    ("trigger_reconciliation", |b| json!({"season": b.season})),
    ("list_dead_letters", |_| json!({})),
    (
        "get_dead_letter",
        |b| json!({"dead_letter_id": b.persistence_job}),
    ),
    (
        "replay_dead_letters",
        |b| json!({"dead_letter_id": b.persistence_job}),
    ),
    (
        "discard_dead_letter",
        |b| json!({"dead_letter_id": b.persistence_job, "confirm": true}),
    ),
    (
        "archive_season",
        |b| json!({"season_name": b.season, "confirm": true}),
    ),
    ("get_archive_status", |b| json!({"season_name": b.season})),
    (
        "delete_eligible_archived_records",
        |b| json!({"season_name": b.season, "confirm": true}),
    ),
    ("refit_fsrs_params", |_| json!({"user": B_LEARNER})),
    ("list_seasons", |_| json!({})),
    (
        "create_season",
        |b| json!({"season_name": b.season, "start_date": "2030-09-01", "end_date": "2031-06-30"}),
    ),
    ("activate_season", |b| json!({"season_name": b.season})),
    (
        "update_season",
        |b| json!({"season_name": b.season, "auto_archive": true}),
    ),
    (
        "import_content",
        |b| json!({"bundle": {"unpublish": {"lessons": [b.lesson], "subjects": [b.subject]}}}),
    ),
    ("get_catalog_version", |_| json!({})),
    (
        "create_user",
        |_| json!({"email": B_LEARNER, "full_name": "Impostor", "password": "Impostor-Pass-1234"}),
    ),
    ("create_api_key", |_| json!({"user": B_LEARNER})),
    ("get_audit_log", |_| json!({"actor": B_MANAGER})),
    ("get_job_runs", |_| json!({})),
    ("get_learning_insight", |b| json!({"season": b.season})),
    (
        "adopt_shared_content",
        |b| json!({"subjects": [b.subject], "dry_run": false}),
    ),
    ("get_device_policy", |_| json!({})),
    (
        "set_device_policy",
        |_| json!({"max_devices": 1, "on_limit": "refuse"}),
    ),
    (
        "register_device",
        |_| json!({"device_id": B_DEVICE, "device_type": "mobile"}),
    ),
    ("get_my_devices", |_| json!({})),
    ("revoke_device", |_| json!({"device_id": B_DEVICE})),
    ("create_institution", |_| {
        json!({"institution": "beta", "name": "Taken", "manager": "x@alpha.test",
               "manager_full_name": "X", "manager_password": "Another-Pass-1234"})
    }),
    ("get_institutions", |_| json!({})),
    ("suspend_institution", |_| json!({"institution": "beta"})),
    ("resume_institution", |_| json!({"institution": "beta"})),
    ("get_my_institution", |_| json!({})),
];

#[test]
fn every_registered_method_has_an_attack() {
    let registered: BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
    let covered: BTreeSet<&str> = CASES.iter().map(|c| c.0).collect();
    assert_eq!(CASES.len(), covered.len(), "one case per method");
    let missing: Vec<_> = registered.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "methods without an isolation case (add them to CASES): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "cases of methods that do not exist: {stale:?}"
    );
}

/// Waits until B's stored state stops changing (its persistence worker
/// drains the answers of the setup) and returns it.
async fn settled(t: &Stack, b: &InstitutionId) -> String {
    let mut last = t.probe.state(b).await;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = t.probe.state(b).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("B's state never settled");
}

fn first_difference(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("before: {x}\nafter:  {y}"))
        .unwrap_or_else(|| "(one is a prefix of the other)".into())
}

/// B's entries in the platform directory: its row and its accounts.
async fn directory_state(t: &Stack, b: &InstitutionId) -> String {
    let dir = t.platform.directory();
    let row = dir
        .list_institutions()
        .await
        .unwrap()
        .into_iter()
        .find(|i| &i.id == b);
    let mut out = format!("directory: {row:?}");
    for user in [B_LEARNER, B_MANAGER] {
        let owner = dir
            .account_institution(&UserId::new(user).unwrap())
            .await
            .unwrap();
        out.push_str(&format!("\naccount {user}: {owner:?}"));
    }
    out
}

async fn run_suite(t: &Stack) {
    let b = populate(t).await;
    let beta = InstitutionId::new("beta").unwrap();
    let before = format!(
        "{}\n{}",
        directory_state(t, &beta).await,
        settled(t, &beta).await
    );
    let mut attackers = [
        ("A's learner", A_LEARNER, session(&t.app, A_LEARNER).await),
        ("A's manager", A_MANAGER, session(&t.app, A_MANAGER).await),
    ];
    let mut answered = BTreeSet::new();
    for (who, usr, cookie) in attackers.iter_mut() {
        for m in METHODS {
            let (_, args) = CASES
                .iter()
                .find(|c| c.0 == m.name)
                .unwrap_or_else(|| panic!("no case for {}", m.name));
            let args = args(&b);
            let (status, body) = call(&t.app, &m.path(), Some(cookie), args.clone()).await;
            let text = body.to_string();
            let sent = args.to_string();
            assert!(
                !status.is_server_error(),
                "{who}: {} {sent} → {status} {text}",
                m.name
            );
            assert!(
                !text.contains(MARKER),
                "{who}: {} {sent} leaked B's data: {text}",
                m.name
            );
            for id in b.generated() {
                assert!(
                    sent.contains(id) || !text.contains(id),
                    "{who}: {} {sent} leaked B's id {id}: {text}",
                    m.name
                );
            }
            if status == StatusCode::OK {
                answered.insert(m.name);
            }
            if m.name == "logout" || m.name == "revoke_device" {
                *cookie = session(&t.app, usr).await;
            }
        }
    }
    // The suite reached the handlers (not only the role checks).
    assert!(answered.len() > 20, "answered: {answered:?}");
    let after = format!(
        "{}\n{}",
        directory_state(t, &beta).await,
        settled(t, &beta).await
    );
    assert!(
        before == after,
        "A's calls changed B's state:\n{}",
        first_difference(&before, &after)
    );
}

#[tokio::test]
async fn no_call_of_institution_a_reads_or_changes_institution_b_in_memory() {
    let t = memory_stack().await;
    run_suite(&t).await;
    t.teardown().await;
}

#[tokio::test]
async fn no_call_of_institution_a_reads_or_changes_institution_b_on_postgres_and_redis() {
    let Some(t) = pg_redis_stack().await else {
        return;
    };
    run_suite(&t).await;
    t.teardown().await;
}
