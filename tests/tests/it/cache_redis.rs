//! The cache conformance suites on a single Redis (random namespace per
//! test), plus Redis-only checks: TTL refresh, horizon mode, stampede.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use memora_cache_redis::{RedisConfig, RedisDueCache, RedisLeaderboard};
use memora_core::ids::{QuestionId, SeasonId, SubjectId, UserId};
use memora_core::ports::DueCache;
use memora_tests::conformance::cache::{self as suite, BuildBoard, row, season, user};
use memora_tests::hooked_cache::HookedCache;

pub(crate) async fn config() -> Option<RedisConfig> {
    let url = memora_tests::redis_url_or_skip().await?;
    let mut c = RedisConfig::single(url).namespace(memora_tests::random_namespace());
    c.schedule_ttl = Duration::from_secs(600);
    Some(c)
}

async fn fixture() -> Option<Arc<dyn DueCache>> {
    let cfg = config().await?;
    Some(Arc::new(
        RedisDueCache::connect(cfg).await.expect("connect"),
    ))
}

memora_tests::due_cache_conformance!(fixture);

/// The same suite on layout 5: cards under their questions' numbers.
mod numbered {
    use super::*;

    async fn fixture() -> Option<Arc<dyn DueCache>> {
        let cfg = config().await?;
        Some(Arc::new(
            RedisDueCache::connect(cfg)
                .await
                .expect("connect")
                .with_numbering(memora_tests::numbering()),
        ))
    }

    memora_tests::due_cache_conformance!(fixture);
}

/// A plain connection to the cache's (single) Redis, to inspect its keys.
async fn raw_connection(c: &RedisDueCache) -> redis::aio::MultiplexedConnection {
    memora_tests::redis_raw(c.config()).await
}

/// Sets the TTL of every key of `keys` to `ms`.
async fn pexpire_all(raw: &mut redis::aio::MultiplexedConnection, keys: &[String], ms: i64) {
    for k in keys {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(k)
            .arg(ms)
            .query_async(raw)
            .await
            .expect("pexpire");
    }
}

async fn board() -> Option<Arc<dyn BuildBoard>> {
    let cfg = config().await?;
    Some(Arc::new(
        RedisLeaderboard::connect(cfg).await.expect("connect"),
    ))
}

#[tokio::test]
async fn board_unbuilt_is_none() {
    if let Some(b) = board().await {
        suite::board_unbuilt_is_none(b).await;
    }
}

#[tokio::test]
async fn board_order_and_rank() {
    if let Some(b) = board().await {
        suite::board_order_and_rank(b).await;
    }
}

#[tokio::test]
async fn board_add_xp_updates_every_bucket() {
    if let Some(b) = board().await {
        suite::board_add_xp_updates_every_bucket(b).await;
    }
}

#[tokio::test]
async fn writes_refresh_the_ttl_of_every_key() {
    let Some(cfg) = config().await else { return };
    let ttl = cfg.schedule_ttl.as_millis() as i64;
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    c.load(&u, &s, &[row(&u, &s, "a", Some("math"), -1, Some(-5))])
        .await
        .expect("load");
    let ttls = c.schedule_ttls(&u, &s).await.expect("ttls");
    // Marker (with the small dictionary), state chunk, the subject's due
    // chunk (one: no subject index), the index of every chunk.
    assert_eq!(
        ttls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["h0", "m", "x", "z1.0"],
        "{ttls:?}"
    );
    // The marker gets the TTL, data keys a minute more: never gone first.
    assert!(ttls["m"] > ttl - 5_000 && ttls["m"] <= ttl, "{ttls:?}");
    assert!(
        ttls.iter()
            .filter(|(k, _)| *k != "m")
            .all(|(_, t)| *t > ttl + 55_000 && *t <= ttl + 60_000),
        "{ttls:?}"
    );
    // Shorten every TTL, then a put refreshes them all.
    let mut raw = raw_connection(&c).await;
    let base = c.schedule_key(&u, &s);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}*"))
        .query_async(&mut raw)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 4, "{keys:?}");
    pexpire_all(&mut raw, &keys, 10_000).await;
    c.put(&u, &s, &[row(&u, &s, "b", Some("history"), -1, Some(-5))])
        .await
        .expect("put");
    let ttls = c.schedule_ttls(&u, &s).await.expect("ttls");
    assert_eq!(ttls.len(), 5, "{ttls:?}");
    assert!(ttls.values().all(|t| *t > ttl - 5_000), "{ttls:?}");
    // A write soon after only touches the keys it wrote.
    pexpire_all(&mut raw, &keys, ttl + 50_000).await;
    c.put(&u, &s, &[row(&u, &s, "c", Some("history"), -1, Some(-5))])
        .await
        .expect("put");
    let after = c.schedule_ttls(&u, &s).await.expect("ttls");
    assert!(after["z1.0"] <= ttl + 50_000, "{after:?}");
    assert!(after["h0"] > after["m"], "{after:?}");
}

/// Every key under a schedule's base key.
async fn keys_under(raw: &mut redis::aio::MultiplexedConnection, base: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}:*"))
        .query_async(raw)
        .await
        .expect("keys");
    keys.sort();
    keys
}

/// A process reads every number when it starts: afterwards it maps the
/// questions it serves with the store switched off (warm reviews do not
/// depend on PostgreSQL); a process that did not preload cannot.
#[tokio::test]
async fn a_preloaded_numbering_maps_without_the_store() {
    let store = memora_core::memory::InMemoryBackend::new();
    let ids: Vec<QuestionId> = (0..25_000)
        .map(|i| QuestionId::parse(format!("pre-{i:05}")).unwrap())
        .collect();
    let source: Arc<dyn memora_core::ports::CatalogNumbers> = Arc::new(store.clone());
    let numbers = source.assign_numbers(&ids).await.expect("assign");
    let math = memora_core::ids::Label::Subject(SubjectId::new("math").unwrap());
    let algebra =
        memora_core::ids::Label::Topic(memora_core::ids::TopicId::new("algebra").unwrap());
    let labels = source
        .assign_label_numbers(&[math.clone(), algebra.clone()])
        .await
        .expect("assign labels");
    let preloaded = memora_cache_redis::Numbering::new(Arc::clone(&source));
    assert_eq!(
        preloaded.preload().await.expect("preload"),
        25_002,
        "every question and label"
    );
    let cold = memora_cache_redis::Numbering::new(Arc::clone(&source));
    store.set_store_available(false);
    let asked = [ids[0].clone(), ids[12_345].clone(), ids[24_999].clone()];
    let found = preloaded.find(&asked).await.expect("find");
    assert_eq!(
        found,
        vec![
            Some(numbers[0]),
            Some(numbers[12_345]),
            Some(numbers[24_999])
        ]
    );
    let back = preloaded
        .questions(&[numbers[24_999], numbers[0]])
        .await
        .expect("questions");
    assert_eq!(back, vec![ids[24_999].clone(), ids[0].clone()]);
    assert_eq!(
        preloaded
            .labels(&[labels[1], labels[0]])
            .await
            .expect("labels"),
        vec![algebra.clone(), math.clone()]
    );
    assert_eq!(
        preloaded
            .assign_labels([math.clone()].iter())
            .await
            .expect("known label"),
        vec![labels[0]]
    );
    assert!(
        cold.find(&asked).await.is_err(),
        "not preloaded: asks the store"
    );
    assert!(cold.labels(&[labels[0]]).await.is_err());
    // A capacity smaller than a table keeps that many of it (per space:
    // both labels, 1 000 questions).
    store.set_store_available(true);
    let small = memora_cache_redis::Numbering::with_capacity(Arc::clone(&source), 1_000);
    assert_eq!(small.preload().await.expect("preload"), 1_002);
}

/// Every string a schedule's keys hold (fields, values, members).
async fn contents_under(raw: &mut redis::aio::MultiplexedConnection, base: &str) -> String {
    let mut all = String::new();
    for k in keys_under(raw, base).await {
        let kind: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(raw)
            .await
            .expect("type");
        let parts: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL").arg(&k).query_async(raw).await,
            "zset" => {
                redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query_async(raw)
                    .await
            }
            _ => redis::cmd("GET")
                .arg(&k)
                .query_async::<Option<Vec<u8>>>(raw)
                .await
                .map(|v| v.into_iter().collect()),
        }
        .expect("read key");
        for p in parts {
            all.push_str(&String::from_utf8_lossy(&p));
            all.push('\n');
        }
    }
    all
}

/// Layout 5 names a card's subject and topic by their label numbers: no
/// key of the schedule holds a subject or topic id (layout 3 keeps them in
/// a dictionary per schedule), yet cards read back with both, the subject
/// filter is exact, and a subject no card has (numbered by the read) has
/// no due cards.
#[tokio::test]
async fn numbered_schedules_keep_no_subject_or_topic_names() {
    let Some(cfg) = config().await else { return };
    let numbering = memora_tests::numbering();
    let ids = RedisDueCache::connect(cfg.clone()).await.expect("connect");
    let numbered = RedisDueCache::connect(cfg)
        .await
        .expect("connect")
        .with_numbering(numbering.clone());
    let (u, s) = (user("names"), season(2026));
    let now = suite::t0();
    let mut rows = vec![
        row(&u, &s, "stage-a", Some("subject-geometry"), -3, Some(-9)),
        row(&u, &s, "stage-b", Some("subject-history"), -2, Some(-9)),
        row(&u, &s, "stage-c", None, -1, Some(-9)),
    ];
    rows[1].topic = Some(memora_core::ids::TopicId::new("topic-dynasties").unwrap());
    rows[2].topic = None;
    let base = ids.schedule_key(&u, &s);
    let mut raw = raw_connection(&ids).await;
    let names = [
        "subject-geometry",
        "subject-history",
        "topic-1",
        "topic-dynasties",
    ];

    ids.load(&u, &s, &rows).await.expect("load by id");
    let held = contents_under(&mut raw, &base).await;
    for n in names {
        assert!(held.contains(n), "layout 3 keeps {n} in its dictionary");
    }

    numbered.load(&u, &s, &rows).await.expect("load by number");
    let write = row(&u, &s, "stage-d", Some("subject-algebra"), -4, Some(-9));
    numbered
        .put(&u, &s, std::slice::from_ref(&write))
        .await
        .expect("put");
    let held = contents_under(&mut raw, &base).await;
    for n in names.iter().chain(&["subject-algebra"]) {
        assert!(!held.contains(n), "layout 5 holds {n}: {held}");
    }
    let qs: Vec<QuestionId> = ["stage-a", "stage-b", "stage-c", "stage-d"]
        .iter()
        .map(|q| QuestionId::parse(q).unwrap())
        .collect();
    let back = numbered.states(&u, &s, &qs).await.expect("states");
    let mut want: Vec<Option<memora_core::domain::MemoryTracker>> =
        rows.iter().cloned().map(Some).collect();
    want.push(Some(write));
    assert_eq!(back, want, "subjects and topics read back by number");
    let history = SubjectId::new("subject-history").unwrap();
    let d = numbered
        .due(&u, &s, Some(&history), now, 10)
        .await
        .expect("due")
        .expect("present");
    let got: Vec<&str> = d.items.iter().map(|q| q.as_str()).collect();
    assert_eq!((got, d.total_due), (vec!["stage-b"], 1));
    let never = SubjectId::new("subject-without-cards").unwrap();
    let d = numbered
        .due(&u, &s, Some(&never), now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!((d.items.len(), d.total_due), (0, 0));
    numbered.clear_user(&u, &s).await.expect("clear");
}

/// Layout 5 names cards (and served questions) by number: its keys hold
/// numbers that map back to the ids, and a schedule of either layout reads
/// as absent to the other, whose next load deletes the other's keys.
#[tokio::test]
async fn numbered_and_id_layouts_replace_each_other() {
    let Some(cfg) = config().await else { return };
    let numbering = memora_tests::numbering();
    let ids = RedisDueCache::connect(cfg.clone()).await.expect("connect");
    let numbered = RedisDueCache::connect(cfg.clone())
        .await
        .expect("connect")
        .with_numbering(numbering.clone());
    let (u, s) = (user("alice"), season(2026));
    let now = suite::t0();
    let rows = vec![
        row(&u, &s, "stage-b", Some("math"), -2, Some(-5)),
        row(&u, &s, "stage-a:1", Some("math"), -1, Some(-5)),
        row(&u, &s, "stage-c", None, 30, Some(-5)),
    ];
    let base = ids.schedule_key(&u, &s);
    let mut raw = raw_connection(&ids).await;

    ids.load(&u, &s, &rows).await.expect("load by id");
    let by_id = keys_under(&mut raw, &base).await;
    assert!(by_id.len() > 2, "{by_id:?}");
    assert_eq!(
        numbered.due(&u, &s, None, now, 10).await.expect("due"),
        None
    );
    assert_eq!(
        numbered
            .states(&u, &s, &[rows[0].key.question.clone()])
            .await
            .expect("states"),
        vec![None]
    );

    numbered.load(&u, &s, &rows).await.expect("load by number");
    let d = numbered
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    let got: Vec<&str> = d.items.iter().map(|q| q.as_str()).collect();
    assert_eq!((got, d.total_due), (vec!["stage-b", "stage-a:1"], 2));
    assert_eq!(ids.due(&u, &s, None, now, 10).await.expect("due"), None);
    let by_number = keys_under(&mut raw, &base).await;
    for k in &by_id {
        if !k.ends_with(":m") {
            assert!(
                !by_number.contains(k),
                "{k} of the ids' layout left: {by_number:?}"
            );
        }
    }
    let v: String = redis::cmd("HGET")
        .arg(format!("{base}:m"))
        .arg("v")
        .query_async(&mut raw)
        .await
        .expect("marker");
    assert_eq!(v, "5", "layout 5: questions and labels by number");
    // The state hashes (`…:<g>:h<k>`: the last segment, since the
    // generation itself may start with an `h`) hold numbers, which name
    // the loaded questions.
    let mut fields: Vec<u64> = Vec::new();
    let state_hash = |k: &&String| k.rsplit(':').next().is_some_and(|t| t.starts_with('h'));
    for k in by_number.iter().filter(state_hash) {
        let f: Vec<String> = redis::cmd("HKEYS")
            .arg(k)
            .query_async(&mut raw)
            .await
            .expect("hkeys");
        fields.extend(f.iter().map(|f| f.parse::<u64>().expect("a number")));
    }
    fields.sort_unstable();
    let mut names: Vec<String> = numbering
        .questions(&fields)
        .await
        .expect("numbers")
        .into_iter()
        .map(|q| q.as_str().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["stage-a:1", "stage-b", "stage-c"]);

    ids.load(&u, &s, &rows).await.expect("load by id again");
    assert_eq!(
        numbered.due(&u, &s, None, now, 10).await.expect("due"),
        None
    );
    let again = keys_under(&mut raw, &base).await;
    for k in &by_number {
        if !k.ends_with(":m") {
            assert!(
                !again.contains(k),
                "{k} of the numbers' layout left: {again:?}"
            );
        }
    }

    // The ledger beside numbered schedules names questions by number too.
    let ledger = memora_cache_redis::RedisServedLedger::connect(cfg)
        .await
        .expect("ledger")
        .with_numbering(numbering.clone());
    let items = vec!["q:stage-b".to_owned(), "l:lesson-1".to_owned()];
    memora_core::ports::ServedLedger::record_served(
        &ledger,
        &u,
        &s,
        &items,
        now,
        now + chrono::Duration::hours(1),
        now + chrono::Duration::days(1),
    )
    .await
    .expect("record");
    let mut fields: Vec<String> = redis::cmd("HKEYS")
        .arg(ledger.ledger_key(&u, &s))
        .query_async(&mut raw)
        .await
        .expect("ledger fields");
    fields.sort();
    let n = numbering
        .find(&[rows[0].key.question.clone()])
        .await
        .expect("find");
    assert_eq!(
        fields,
        vec![
            "l:lesson-1".to_owned(),
            format!("q{{{}", n[0].expect("numbered"))
        ]
    );
}

/// A schedule of layout 2 (the release before: a subject index even for a
/// subject of one chunk, the dictionary in its own hash) reads as absent,
/// and the next load deletes every key of it.
#[tokio::test]
async fn a_schedule_of_layout_2_is_absent_and_replaced() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let now = suite::t0();
    let rows = [row(&u, &s, "a", Some("math"), -1, Some(-5))];
    c.load(&u, &s, &rows).await.expect("load");
    let base = c.schedule_key(&u, &s);
    let mut raw = raw_connection(&c).await;
    let marker = format!("{base}:m");
    let g: String = redis::cmd("HGET")
        .arg(&marker)
        .arg("g")
        .query_async(&mut raw)
        .await
        .expect("generation");
    // Rewrite it as layout 2 wrote it.
    let () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{base}:{g}:d"))
        .arg("d:smath")
        .arg(1)
        .arg("r:1")
        .arg("smath")
        .arg("dn")
        .arg(1)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{base}:{g}:i1"))
        .arg(0)
        .arg(0)
        .ignore()
        .cmd("HDEL")
        .arg(&marker)
        .arg("di")
        .arg("d:smath")
        .arg("r:1")
        .arg("dn")
        .ignore()
        .cmd("HSET")
        .arg(&marker)
        .arg("v")
        .arg(2)
        .ignore()
        .query_async(&mut raw)
        .await
        .expect("layout 2");
    let old = keys_under(&mut raw, &base).await;
    assert_eq!(old.len(), 6, "{old:?}");
    assert_eq!(c.due(&u, &s, None, now, 10).await.expect("due"), None);
    assert_eq!(c.user_stats(&u, &s, now).await.expect("stats"), None);
    c.load(&u, &s, &rows).await.expect("load again");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!((d.items[0].as_str(), d.total_due), ("a", 1));
    let new = keys_under(&mut raw, &base).await;
    for k in old.iter().filter(|k| !k.ends_with(":m")) {
        assert!(!new.contains(k), "{k} of layout 2 left: {new:?}");
    }
}

/// A schedule of the earlier layout (a master set, a text state hash and
/// subject sets under the same base key) reads as absent, and the next load
/// deletes its keys.
#[tokio::test]
async fn a_schedule_of_the_earlier_layout_is_absent_and_replaced() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let base = c.schedule_key(&u, &s);
    let mut raw = raw_connection(&c).await;
    let () = redis::pipe()
        .cmd("ZADD")
        .arg(&base)
        .arg(1)
        .arg("a")
        .ignore()
        .cmd("ZADD")
        .arg(format!("{base}:s:math"))
        .arg(1)
        .arg("a")
        .ignore()
        .cmd("HSET")
        .arg(format!("{base}:h"))
        .arg("a")
        .arg("1\u{1f}x")
        .ignore()
        .cmd("HSET")
        .arg(format!("{base}:m"))
        .arg("v")
        .arg(1)
        .arg("hz")
        .arg("")
        .arg("s:math")
        .arg(1)
        .ignore()
        .query_async(&mut raw)
        .await
        .expect("layout 1");
    let now = suite::t0();
    assert_eq!(c.due(&u, &s, None, now, 10).await.expect("due"), None);
    assert_eq!(c.user_stats(&u, &s, now).await.expect("stats"), None);
    c.put(&u, &s, &[row(&u, &s, "b", Some("math"), -1, Some(-5))])
        .await
        .expect("put on an absent schedule");
    c.load(&u, &s, &[row(&u, &s, "b", Some("math"), -1, Some(-5))])
        .await
        .expect("load");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 1);
    assert_eq!(d.items[0].as_str(), "b");
    let left: i64 = redis::cmd("EXISTS")
        .arg(&base)
        .arg(format!("{base}:h"))
        .arg(format!("{base}:s:math"))
        .query_async(&mut raw)
        .await
        .expect("exists");
    assert_eq!(left, 0, "the earlier layout's keys are gone");
}

#[tokio::test]
async fn horizon_mode_caches_less_and_stays_exact() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg.horizon_days(Some(2)))
        .await
        .expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let now = Utc::now();
    let at = |min: i64| now + chrono::Duration::minutes(min);
    let mk = |q: &str, due_min: i64, rev_min: i64| {
        let mut r = row(&u, &s, q, Some("math"), 0, Some(0));
        r.state.due = at(due_min);
        r.state.last_review = Some(at(rev_min));
        r
    };
    c.load_at(
        &u,
        &s,
        &[mk("soon", -10, -100), mk("far", 10 * 1440, -100)],
        now,
    )
    .await
    .expect("load");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 1);
    let st = c
        .states(&u, &s, &[QuestionId::parse("far").expect("q")])
        .await
        .expect("states");
    assert_eq!(st, vec![None], "beyond the horizon: not cached");
    // Past the horizon the schedule counts as absent (the core rehydrates).
    let later = now + chrono::Duration::days(3);
    assert_eq!(c.due(&u, &s, None, later, 10).await.expect("due"), None);
    assert_eq!(c.user_stats(&u, &s, later).await.expect("stats"), None);
    // A newer answer pushing "soon" beyond the horizon removes it.
    c.put(&u, &s, &[mk("soon", 20 * 1440, -1)])
        .await
        .expect("put");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
    let m = SubjectId::new("math").expect("s");
    let d = c
        .due(&u, &s, Some(&m), now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 0);
    // Reload keeps a newer cached entry even if the store row is beyond the horizon.
    c.put(&u, &s, &[mk("far", -5, -2)]).await.expect("put");
    c.load_at(
        &u,
        &s,
        &[mk("soon", -10, -100), mk("far", 10 * 1440, -100)],
        now,
    )
    .await
    .expect("load");
    let d = c
        .due(&u, &s, None, now, 10)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(d.total_due, 2, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rehydration_stampede_loads_once() {
    let Some(cfg) = config().await else { return };
    let redis = Arc::new(RedisDueCache::connect(cfg).await.expect("connect"));
    let counting = Arc::new(HookedCache::counting(redis.clone()));
    let backend = memora_core::memory::InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.cache = counting.clone();
    let app = Arc::new(memora_core::Memora::new(
        ports,
        memora_core::services::Config::default(),
    ));
    let demo = memora_core::demo::seed_demo(&app, "pw-123456")
        .await
        .expect("seed");
    redis
        .clear_user(&demo.student, &demo.season)
        .await
        .expect("clear");
    let before = counting.loads();
    let actor = memora_core::domain::Actor::student(demo.student.clone());
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (app, actor) = (app.clone(), actor.clone());
        tasks.push(tokio::spawn(async move {
            app.reviews()
                .get_review_session(
                    &actor,
                    &memora_core::services::reviews::ReviewQuery::default(),
                )
                .await
        }));
    }
    let mut totals = Vec::new();
    for t in tasks {
        let s = t.await.expect("join").expect("session");
        assert!(!s.is_degraded);
        totals.push(s.total_due);
    }
    assert_eq!(counting.loads() - before, 1, "exactly one load");
    assert!(totals.iter().all(|t| *t == totals[0]), "{totals:?}");
    assert!(totals[0] > 0);
}

/// The compact layout against the in-memory cache under thousands of random
/// loads, puts, removals and reads at random times (forwards and
/// backwards), with schedules large enough to span many chunks: every
/// answer must be the same (items, their order, totals, states).
#[tokio::test]
async fn matches_the_in_memory_cache_under_random_operations() {
    let Some(cfg) = config().await else { return };
    differential(RedisDueCache::connect(cfg).await.expect("connect")).await;
}

/// The same on layout 5. The test's ids are numbered first, in id order and
/// all with four digits, so that equal due times come in id order here too
/// (a numbered schedule orders them by their numbers' decimal bytes).
#[tokio::test]
async fn numbered_matches_the_in_memory_cache_under_random_operations() {
    let Some(cfg) = config().await else { return };
    let numbering = memora_tests::numbering();
    let fillers: Vec<QuestionId> = (0..999)
        .map(|i| QuestionId::parse(format!("filler-{i:03}")).unwrap())
        .collect();
    let ids: Vec<QuestionId> = (0..2000)
        .map(|i| QuestionId::parse(format!("q{i:04}")).unwrap())
        .collect();
    let n = numbering.assign(fillers.iter()).await.expect("fillers");
    assert_eq!(n.last(), Some(&999));
    let n = numbering.assign(ids.iter()).await.expect("ids");
    assert_eq!((n[0], n[1999]), (1000, 2999), "four digits, in id order");
    differential(
        RedisDueCache::connect(cfg)
            .await
            .expect("connect")
            .with_numbering(numbering),
    )
    .await;
}

async fn differential(redis: RedisDueCache) {
    let memory = memora_core::memory::InMemoryCache::new();
    let s = season(2026);
    let subjects = [None, Some("math"), Some("history"), Some("arabic")];
    // A small deterministic generator (xorshift), so a failure replays.
    for seed in [7u64, 1_234_567, 987_654_321] {
        let mut x = seed;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let u = user(&format!("fuzz-{seed}"));
        for step in 0..600 {
            // Questions from `pool`: a small one repeats questions inside
            // a put, which the scripts must apply in order (a later row
            // sees the earlier one's write, subject and due included).
            let mk = |next: &mut dyn FnMut(u64) -> u64, pool: u64| {
                let qn = next(pool);
                let subject = subjects[next(4) as usize];
                let due = next(120) as i64 * 50 - 3000;
                let rev = (next(5) > 0).then(|| next(200) as i64 * 50 - 5000);
                row(&u, &s, &format!("q{qn:04}"), subject, due, rev)
            };
            match next(10) {
                0 => {
                    let n = if next(3) == 0 { 1500 } else { next(60) };
                    let rows: Vec<_> = (0..n).map(|_| mk(&mut next, 2000)).collect();
                    redis
                        .load_at(&u, &s, &rows, Utc::now())
                        .await
                        .expect("load");
                    memory.load(&u, &s, &rows).await.expect("load");
                }
                1..=4 => {
                    let pool = if next(3) == 0 { 8 } else { 2000 };
                    let rows: Vec<_> = (0..1 + next(20)).map(|_| mk(&mut next, pool)).collect();
                    redis.put(&u, &s, &rows).await.expect("put");
                    memory.put(&u, &s, &rows).await.expect("put");
                }
                5 => {
                    let qs: Vec<QuestionId> = (0..1 + next(5))
                        .map(|_| QuestionId::parse(format!("q{:04}", next(2000))).unwrap())
                        .collect();
                    redis.remove(&u, &s, &qs).await.expect("remove");
                    memory.remove(&u, &s, &qs).await.expect("remove");
                }
                _ => {
                    // Few distinct times, on the due grid or just after it,
                    // so cached counts are both reused and invalidated.
                    let off = if next(2) == 0 { 0 } else { next(50) as i64 };
                    let now =
                        suite::t0() + chrono::Duration::minutes(next(12) as i64 * 400 - 2400 + off);
                    let subject = subjects[next(4) as usize].map(|x| SubjectId::new(x).unwrap());
                    // Few limits, so a read often repeats the last one's.
                    let limit = [5usize, 15, 15, 40][next(4) as usize];
                    let (a, b) = (
                        redis
                            .due(&u, &s, subject.as_ref(), now, limit)
                            .await
                            .expect("due"),
                        memory
                            .due(&u, &s, subject.as_ref(), now, limit)
                            .await
                            .expect("due"),
                    );
                    assert_eq!(
                        a, b,
                        "seed {seed} step {step}: due at {now} {subject:?} {limit}"
                    );
                    let (a, b) = (
                        redis.user_stats(&u, &s, now).await.expect("stats"),
                        memory.user_stats(&u, &s, now).await.expect("stats"),
                    );
                    assert_eq!(a, b, "seed {seed} step {step}: stats at {now}");
                    let qs: Vec<QuestionId> = (0..10)
                        .map(|_| QuestionId::parse(format!("q{:04}", next(2000))).unwrap())
                        .collect();
                    let (a, b) = (
                        redis.states(&u, &s, &qs).await.expect("states"),
                        memory.states(&u, &s, &qs).await.expect("states"),
                    );
                    assert_eq!(a, b, "seed {seed} step {step}: states");
                }
            }
        }
        let all = redis.schedule_dump(&u, &s).await.expect("dump");
        let far = suite::t0() + chrono::Duration::days(3650);
        let stats = memory.user_stats(&u, &s, far).await.expect("stats");
        assert_eq!(
            stats.map(|st| st.total),
            Some(all.len() as u64),
            "seed {seed}"
        );
        marker_counters_match(&redis, &u, &s, &format!("seed {seed}")).await;
    }
}

/// The marker's counters, which no read returns but growth decides by,
/// match the schedule's keys: `c` the cards in the state hashes, each
/// `sc:<s>` the members of subject `s`'s due sets, `sn:<s>` the number of
/// those sets (every card has a due set here: no horizon).
async fn marker_counters_match(redis: &RedisDueCache, u: &UserId, s: &SeasonId, what: &str) {
    let mut raw = raw_connection(redis).await;
    let base = redis.schedule_key(u, s);
    let marker: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{base}:m"))
        .query_async(&mut raw)
        .await
        .expect("marker");
    let Some(g) = marker.get("g") else {
        return; // no schedule (the last operation removed it)
    };
    let gen_base = format!("{base}:{g}");
    let n: u64 = marker["n"].parse().expect("n");
    let keys: Vec<String> = (0..n).map(|k| format!("{gen_base}:h{k}")).collect();
    let cards = sizes(&mut raw, "HLEN", &keys).await;
    assert_eq!(marker["c"].parse::<u64>().ok(), Some(cards), "{what}: c");
    let mut subjects = 0;
    for (field, value) in &marker {
        let Some(si) = field.strip_prefix("sc:") else {
            continue;
        };
        subjects += 1;
        let sets: u64 = marker
            .get(&format!("sn:{si}"))
            .map_or(1, |v| v.parse().expect("sn"));
        let keys: Vec<String> = (0..sets).map(|k| format!("{gen_base}:z{si}.{k}")).collect();
        let members = sizes(&mut raw, "ZCARD", &keys).await;
        assert_eq!(
            value.parse::<u64>().ok(),
            Some(members),
            "{what}: sc:{si} ({sets} sets)"
        );
    }
    assert!(subjects > 0 || cards == 0, "{what}: no subject counts");
}

/// The sum of `cmd` (`HLEN`, `ZCARD`) over `keys`.
async fn sizes(raw: &mut redis::aio::MultiplexedConnection, cmd: &str, keys: &[String]) -> u64 {
    let mut total = 0u64;
    for k in keys {
        let len: u64 = redis::cmd(cmd).arg(k).query_async(raw).await.expect(cmd);
        total += len;
    }
    total
}

/// Due counts are kept between reads at the same time: a card due exactly
/// at the time of the last read that moves, leaves or arrives changes the
/// next answer, filtered or not (the compact layout caches the counts).
#[tokio::test]
async fn due_counts_follow_writes_at_the_boundary() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let math = SubjectId::new("math").unwrap();
    // 200 cards so the subjects span several chunks; a, b, c due exactly at t0.
    let mut rows: Vec<_> = (0..200)
        .map(|i| {
            row(
                &u,
                &s,
                &format!("n{i:03}"),
                Some(if i % 2 == 0 { "math" } else { "history" }),
                60 + i,
                Some(-10),
            )
        })
        .collect();
    rows.push(row(&u, &s, "a", Some("math"), 0, Some(-10)));
    rows.push(row(&u, &s, "b", Some("math"), 0, Some(-10)));
    rows.push(row(&u, &s, "c", Some("history"), 0, Some(-10)));
    c.load(&u, &s, &rows).await.expect("load");
    let t0 = suite::t0();
    let total = |sub: Option<&SubjectId>| {
        let c = &c;
        let (u, s) = (&u, &s);
        let sub = sub.cloned();
        async move {
            c.due(u, s, sub.as_ref(), t0, 5)
                .await
                .expect("due")
                .expect("present")
                .total_due
        }
    };
    assert_eq!((total(None).await, total(Some(&math)).await), (3, 2));
    // a moves a day later.
    c.put(&u, &s, &[row(&u, &s, "a", Some("math"), 1440, Some(-5))])
        .await
        .expect("put");
    assert_eq!((total(None).await, total(Some(&math)).await), (2, 1));
    // b is removed.
    c.remove(&u, &s, &[QuestionId::parse("b").unwrap()])
        .await
        .expect("remove");
    assert_eq!((total(None).await, total(Some(&math)).await), (1, 0));
    // c changes subject to math, due at t0 still.
    c.put(&u, &s, &[row(&u, &s, "c", Some("math"), 0, Some(-5))])
        .await
        .expect("put");
    assert_eq!((total(None).await, total(Some(&math)).await), (1, 1));
    // A new card due at t0 arrives; one due a minute later does not count.
    c.put(
        &u,
        &s,
        &[
            row(&u, &s, "d", Some("math"), 0, Some(-5)),
            row(&u, &s, "e", Some("math"), 1, Some(-5)),
        ],
    )
    .await
    .expect("put");
    assert_eq!((total(None).await, total(Some(&math)).await), (2, 2));
    // A minute later e is due too; a minute earlier none is.
    let at = |m: i64| t0 + chrono::Duration::minutes(m);
    assert_eq!(
        c.due(&u, &s, None, at(1), 5)
            .await
            .unwrap()
            .unwrap()
            .total_due,
        3
    );
    assert_eq!(
        c.due(&u, &s, None, at(-1), 5)
            .await
            .unwrap()
            .unwrap()
            .total_due,
        0
    );
    assert_eq!(total(None).await, 2);
}

/// A schedule loaded small that grows by writes (lessons add cards) keeps
/// every key in Redis' compact encoding and its answers exact.
#[tokio::test]
async fn a_growing_schedule_stays_compact() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let memory = memora_core::memory::InMemoryCache::new();
    let (u, s) = (user("grower"), season(2026));
    let mk = |i: usize| {
        let subject = ["math", "history"][i % 2];
        row(
            &u,
            &s,
            &format!("g{i:05}"),
            Some(subject),
            (i % 97) as i64 * 30 - 600,
            Some(-10),
        )
    };
    let first: Vec<_> = (0..10).map(mk).collect();
    c.load(&u, &s, &first).await.expect("load");
    memory.load(&u, &s, &first).await.expect("load");
    for batch in (10..3000).collect::<Vec<_>>().chunks(50) {
        let rows: Vec<_> = batch.iter().map(|i| mk(*i)).collect();
        c.put(&u, &s, &rows).await.expect("put");
        memory.put(&u, &s, &rows).await.expect("put");
    }
    let base = c.schedule_key(&u, &s);
    let mut raw = raw_connection(&c).await;
    let ttls = c.schedule_ttls(&u, &s).await.expect("ttls");
    assert!(ttls.len() > 60, "split into chunks: {ttls:?}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}:*"))
        .query_async(&mut raw)
        .await
        .expect("keys");
    for k in keys
        .iter()
        .filter(|k| !k.ends_with(":m") && !k.ends_with(":x"))
    {
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(k)
            .query_async(&mut raw)
            .await
            .expect("encoding");
        assert_eq!(enc, "listpack", "{k}");
    }
    for now in [-700i64, -300, 0, 1000, 5000] {
        let at = suite::t0() + chrono::Duration::minutes(now);
        for subject in [None, Some(SubjectId::new("math").unwrap())] {
            assert_eq!(
                c.due(&u, &s, subject.as_ref(), at, 30).await.expect("due"),
                memory
                    .due(&u, &s, subject.as_ref(), at, 30)
                    .await
                    .expect("due"),
                "{now} {subject:?}"
            );
        }
    }
    assert_eq!(
        c.user_stats(&u, &s, suite::t0()).await.expect("stats"),
        memory.user_stats(&u, &s, suite::t0()).await.expect("stats")
    );
}

/// The last unfiltered answer is kept beside the schedule and reused until a
/// write: a stale copy planted there is served (the proof it is read), and
/// any write drops it.
/// The persistence worker writes back rows the commit already cached: an
/// entry that is already exactly the row (state, subject, topic, due) is
/// left alone — the kept answer survives — while any difference in the
/// same review's row is written.
#[tokio::test]
async fn a_put_of_what_is_cached_changes_nothing() {
    let Some(cfg) = config().await else { return };
    for numbered in [false, true] {
        let c = RedisDueCache::connect(cfg.clone()).await.expect("connect");
        let c = if numbered {
            c.with_numbering(memora_tests::numbering())
        } else {
            c
        };
        let (u, s) = (user(&format!("same-{numbered}")), season(2026));
        let rows: Vec<_> = (0..6)
            .map(|i| {
                row(
                    &u,
                    &s,
                    &format!("p{i}"),
                    Some("math"),
                    -(i as i64),
                    Some(-50),
                )
            })
            .collect();
        c.load(&u, &s, &rows).await.expect("load");
        let t0 = suite::t0();
        let before = c.due(&u, &s, None, t0, 4).await.expect("due");
        let mut raw = raw_connection(&c).await;
        let base = c.schedule_key(&u, &s);
        let g: String = redis::cmd("HGET")
            .arg(format!("{base}:m"))
            .arg("g")
            .query_async(&mut raw)
            .await
            .expect("generation");
        let kept = format!("{base}:{g}:l");
        let exists = |raw: &mut redis::aio::MultiplexedConnection| {
            let kept = kept.clone();
            let mut raw = raw.clone();
            async move {
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&kept)
                    .query_async(&mut raw)
                    .await
                    .expect("exists");
                n == 1
            }
        };
        assert!(exists(&mut raw).await, "a read keeps its answer");
        c.put(&u, &s, &rows).await.expect("same rows");
        assert!(
            exists(&mut raw).await,
            "nothing written: numbered {numbered}"
        );
        assert_eq!(c.due(&u, &s, None, t0, 4).await.expect("due"), before);
        // The same review with another due, subject or topic is written.
        // (p0 was due last of them; now first.)
        let mut moved = rows[0].clone();
        moved.state.due = t0 - chrono::Duration::minutes(30);
        let mut other_subject = rows[4].clone();
        other_subject.subject = Some(SubjectId::new("history").unwrap());
        let mut other_topic = rows[3].clone();
        other_topic.topic = Some(memora_core::ids::TopicId::new("topic-2").unwrap());
        c.put(
            &u,
            &s,
            &[moved.clone(), other_subject.clone(), other_topic.clone()],
        )
        .await
        .expect("changed rows");
        assert!(!exists(&mut raw).await, "a write drops the kept answer");
        let d = c
            .due(&u, &s, None, t0, 1)
            .await
            .expect("due")
            .expect("present");
        assert_eq!(d.items, vec![moved.key.question.clone()]);
        let history = SubjectId::new("history").unwrap();
        let h = c
            .due(&u, &s, Some(&history), t0, 10)
            .await
            .expect("due")
            .expect("present");
        assert_eq!(h.items, vec![other_subject.key.question.clone()]);
        let states = c
            .states(&u, &s, &[other_topic.key.question.clone()])
            .await
            .expect("states");
        assert_eq!(states, vec![Some(other_topic.clone())]);
    }
}

#[tokio::test]
async fn the_last_answer_is_reused_until_a_write() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("alice"), season(2026));
    let rows: Vec<_> = (0..40)
        .map(|i| {
            row(
                &u,
                &s,
                &format!("r{i:02}"),
                Some(["math", "history"][i % 2]),
                -(i as i64),
                Some(-100),
            )
        })
        .collect();
    c.load(&u, &s, &rows).await.expect("load");
    let t0 = suite::t0();
    let first = c
        .due(&u, &s, None, t0, 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(first.total_due, 40);
    let ids: Vec<&str> = first.items.iter().map(|q| q.as_str()).collect();
    assert_eq!(ids, ["r39", "r38", "r37", "r36", "r35"]);
    let mut raw = raw_connection(&c).await;
    let marker = format!("{}:m", c.schedule_key(&u, &s));
    let generation: String = redis::cmd("HGET")
        .arg(&marker)
        .arg("g")
        .query_async(&mut raw)
        .await
        .expect("hget");
    let kept_key = format!("{}:{generation}:l", c.schedule_key(&u, &s));
    let kept: String = redis::cmd("GET")
        .arg(&kept_key)
        .query_async(&mut raw)
        .await
        .expect("hget");
    assert!(
        kept.ends_with("r39\u{1f}r38\u{1f}r37\u{1f}r36\u{1f}r35"),
        "{kept:?}"
    );
    // Plant a different list: a later read with the same limit serves it.
    let planted = kept.replace("r35", "r00");
    let () = redis::cmd("SET")
        .arg(&kept_key)
        .arg(&planted)
        .query_async(&mut raw)
        .await
        .expect("set");
    let later = t0 + chrono::Duration::minutes(1);
    let again = c
        .due(&u, &s, None, later, 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(again.items.last().map(|q| q.as_str()), Some("r00"));
    // Another limit, or an earlier time, is computed afresh.
    let other = c
        .due(&u, &s, None, later, 6)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(other.items.len(), 6);
    assert_eq!(other.items[4].as_str(), "r35");
    let () = redis::cmd("SET")
        .arg(&kept_key)
        .arg(&planted)
        .query_async(&mut raw)
        .await
        .expect("hset");
    let earlier = c
        .due(&u, &s, None, t0 - chrono::Duration::minutes(1), 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(earlier.items.last().map(|q| q.as_str()), Some("r35"));
    assert_eq!(earlier.total_due, 39);
    // A write drops it.
    let () = redis::cmd("SET")
        .arg(&kept_key)
        .arg(&planted)
        .query_async(&mut raw)
        .await
        .expect("hset");
    c.put(&u, &s, &[row(&u, &s, "r10", Some("math"), 500, Some(-5))])
        .await
        .expect("put");
    let gone: Option<String> = redis::cmd("GET")
        .arg(&kept_key)
        .query_async(&mut raw)
        .await
        .expect("hget");
    assert_eq!(gone, None);
    let after = c
        .due(&u, &s, None, later, 5)
        .await
        .expect("due")
        .expect("present");
    assert_eq!(after.items.last().map(|q| q.as_str()), Some("r35"));
    assert_eq!(after.total_due, 39);
}

/// A kept answer shorter than its limit is not reused once more items are
/// due; a removal drops it.
#[tokio::test]
async fn a_short_kept_answer_grows_with_time_and_removals_drop_it() {
    let Some(cfg) = config().await else { return };
    let c = RedisDueCache::connect(cfg).await.expect("connect");
    let (u, s) = (user("bob"), season(2026));
    let rows = [
        row(&u, &s, "a", Some("math"), -10, Some(-100)),
        row(&u, &s, "b", Some("history"), 10, Some(-100)),
        row(&u, &s, "c", Some("math"), 20, Some(-100)),
    ];
    c.load(&u, &s, &rows).await.expect("load");
    let at = |m: i64| suite::t0() + chrono::Duration::minutes(m);
    let ids = |d: memora_core::ports::DueSlice| {
        (
            d.total_due,
            d.items
                .iter()
                .map(|q| q.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
    };
    let due = |m: i64| {
        let c = &c;
        let (u, s) = (&u, &s);
        async move {
            ids(c
                .due(u, s, None, at(m), 5)
                .await
                .expect("due")
                .expect("present"))
        }
    };
    assert_eq!(due(0).await, (1, vec!["a".to_owned()]));
    assert_eq!(due(5).await, (1, vec!["a".to_owned()]));
    assert_eq!(due(15).await, (2, vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(
        due(30).await,
        (3, vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
    // A full answer (limit 2), then a removal inside it.
    let two = || {
        let c = &c;
        let (u, s) = (&u, &s);
        async move {
            ids(c
                .due(u, s, None, at(30), 2)
                .await
                .expect("due")
                .expect("present"))
        }
    };
    assert_eq!(two().await, (3, vec!["a".to_owned(), "b".to_owned()]));
    c.remove(&u, &s, &[QuestionId::parse("b").unwrap()])
        .await
        .expect("remove");
    assert_eq!(two().await, (2, vec!["a".to_owned(), "c".to_owned()]));
}

/// Rows for the load-path tests: several chunks, subjects and topics, a
/// card without subject, question ids Redis stores as integers, and one
/// longer than a `listpack` entry may be.
fn varied_rows(
    u: &memora_core::ids::UserId,
    s: &memora_core::ids::SeasonId,
) -> Vec<memora_core::domain::MemoryTracker> {
    let mut rows: Vec<_> = (0..400)
        .map(|i| {
            let subject = [Some("math"), Some("history"), None, Some("art")][i % 4];
            let mut r = row(
                u,
                s,
                &format!("v{i:04}"),
                subject,
                (i as i64 * 37) % 20_000 - 3_000,
                (i % 5 != 0).then_some(-(i as i64)),
            );
            r.topic = (i % 7 != 0)
                .then(|| memora_core::ids::TopicId::new(format!("topic-{}", i % 11)).unwrap());
            r
        })
        .collect();
    for q in ["123", "-5", "007", "0", &"long".repeat(20)] {
        rows.push(row(u, s, q, Some("math"), 90, Some(-30)));
    }
    // A repeated question: the newer row wins.
    rows.push(row(u, s, "v0001", Some("art"), 5, Some(1)));
    rows
}

/// Every key of a schedule's current generation by its name after the
/// generation, with its `DUMP` and encoding; and the marker minus `g`.
async fn generation_dump(
    c: &RedisDueCache,
    u: &memora_core::ids::UserId,
    s: &memora_core::ids::SeasonId,
) -> (
    std::collections::BTreeMap<String, (Vec<u8>, String)>,
    std::collections::BTreeMap<String, Vec<u8>>,
) {
    let mut raw = raw_connection(c).await;
    let base = c.schedule_key(u, s);
    let mut marker: std::collections::BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(format!("{base}:m"))
        .query_async(&mut raw)
        .await
        .expect("marker");
    let g = String::from_utf8(marker.remove("g").expect("generation")).expect("utf8");
    let prefix = format!("{base}:{g}:");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!(
            "{}*",
            prefix.replace('{', "\\{").replace('}', "\\}")
        ))
        .query_async(&mut raw)
        .await
        .expect("keys");
    let mut out = std::collections::BTreeMap::new();
    for k in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .expect("dump");
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .expect("encoding");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .expect("ttl");
        assert!(ttl > 0, "{k} expires");
        // A listpack is compared byte for byte; a hash table or skip list
        // iterates in an order of its own, so by its sorted content.
        let content = if enc == "listpack" {
            dump
        } else {
            let kind: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut raw)
                .await
                .expect("type");
            let cmd = if kind == "zset" {
                let mut c = redis::cmd("ZRANGE");
                c.arg(&k).arg(0).arg(-1).arg("WITHSCORES");
                c
            } else {
                let mut c = redis::cmd("HGETALL");
                c.arg(&k);
                c
            };
            let mut flat: Vec<Vec<u8>> = cmd.query_async(&mut raw).await.expect("content");
            let mut pairs: Vec<Vec<u8>> = flat.chunks_mut(2).map(|p| p.concat()).collect();
            pairs.sort();
            pairs.concat()
        };
        out.insert(k[prefix.len()..].to_owned(), (content, enc));
    }
    (out, marker)
}

/// A load written with `RESTORE` leaves Redis in exactly the state the
/// same load written by `HSET`/`ZADD` does: same keys, same encodings,
/// byte-identical `DUMP`s, same marker — with and without horizon mode,
/// for `listpack` values and for the generic ones.
#[tokio::test]
async fn a_restored_load_is_byte_identical_to_a_load_by_command() {
    let Some(cfg) = config().await else { return };
    use memora_cache_redis::LoadWrite;
    for (horizon, way, extra) in [
        (None, LoadWrite::Listpack, 0),
        (Some(7), LoadWrite::Listpack, 0),
        (None, LoadWrite::Generic, 0),
        (Some(7), LoadWrite::Generic, 0),
        // Enough cards for a load of several pipelines.
        (None, LoadWrite::Listpack, 12_000),
    ] {
        let restored = RedisDueCache::connect(
            cfg.clone()
                .namespace(memora_tests::random_namespace())
                .horizon_days(horizon)
                .load_write(way),
        )
        .await
        .expect("connect");
        let commanded = RedisDueCache::connect(
            cfg.clone()
                .namespace(memora_tests::random_namespace())
                .horizon_days(horizon)
                .load_write(memora_cache_redis::LoadWrite::Commands),
        )
        .await
        .expect("connect");
        let (u, s) = (user("restored"), season(2026));
        let mut rows = varied_rows(&u, &s);
        rows.extend((0..extra).map(|i| {
            let subject = ["math", "history", "art"][i % 3];
            row(
                &u,
                &s,
                &format!("x{i:05}"),
                Some(subject),
                i as i64 % 5_000,
                Some(-1),
            )
        }));
        let now = suite::t0();
        restored.load_at(&u, &s, &rows, now).await.expect("load");
        commanded.load_at(&u, &s, &rows, now).await.expect("load");
        assert!(restored.loads_by_restore(), "RESTORE was accepted");
        assert_eq!(
            restored.loads_by_listpack(),
            way == LoadWrite::Listpack,
            "a Redis 7 reads listpack values"
        );
        assert!(!commanded.loads_by_restore());
        let (a, ma) = generation_dump(&restored, &u, &s).await;
        let (b, mb) = generation_dump(&commanded, &u, &s).await;
        assert!(a.len() > 10, "several chunks: {:?}", a.keys());
        if extra > 0 {
            assert!(a.len() > 600, "a load of several pipelines: {}", a.len());
        }
        assert!(
            a.values().filter(|(_, enc)| enc == "listpack").count() > 10,
            "mostly listpacks"
        );
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "horizon {horizon:?}"
        );
        for (k, (dump, enc)) in &a {
            let (dump_b, enc_b) = &b[k];
            assert_eq!(enc, enc_b, "{k}");
            assert!(
                dump == dump_b,
                "{k}: content differs ({enc}):\n{dump:?}\n{dump_b:?}"
            );
        }
        assert_eq!(ma, mb, "marker, horizon {horizon:?}");
        assert_eq!(
            restored.schedule_dump(&u, &s).await.expect("dump"),
            commanded.schedule_dump(&u, &s).await.expect("dump")
        );
    }
}

/// Creates (or resets) the ACL user `name`, allowed every command but
/// `denied`, and returns the topology that logs in as it.
async fn acl_user(
    admin: &mut redis::aio::MultiplexedConnection,
    url: &str,
    name: &str,
    denied: &[&str],
) -> memora_cache_redis::Topology {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER")
        .arg(name)
        .arg("reset")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("&*")
        .arg("+@all");
    for d in denied {
        cmd.arg(format!("-{d}"));
    }
    let () = cmd.query_async(admin).await.expect("acl setuser");
    memora_cache_redis::Topology::Single(url.replacen(
        "redis://",
        &format!("redis://{name}:pw@"),
        1,
    ))
}

/// A server that refuses `RESTORE` (here an ACL without it) still gets
/// every load, by command, and the adapter stops trying `RESTORE`; a
/// failure that every way shares makes it give up none.
#[tokio::test]
async fn a_server_refusing_restore_is_loaded_by_command() {
    let Some(cfg) = config().await else { return };
    let memora_cache_redis::Topology::Single(url) = cfg.topology.clone() else {
        panic!("single topology expected")
    };
    assert!(url.starts_with("redis://") && !url.contains('@'), "{url}");
    let name = format!("memora-norestore-{}", std::process::id());
    let mut admin = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let limited = RedisConfig {
        topology: acl_user(&mut admin, &url, &name, &["restore"]).await,
        ..cfg
    };
    let c = RedisDueCache::connect(limited).await.expect("connect");
    let memory = memora_core::memory::InMemoryCache::new();
    let (u, s) = (user("refused"), season(2026));
    let rows = varied_rows(&u, &s);
    assert!(c.loads_by_restore(), "tries RESTORE first");
    let first = c.load(&u, &s, &rows).await;
    let refused_after_first = !c.loads_by_restore();
    let second = c.load(&user("refused-2"), &s, &rows).await;
    memory.load(&u, &s, &rows).await.expect("load");
    let mut dues = Vec::new();
    for subject in [None, Some(SubjectId::new("math").unwrap())] {
        dues.push((
            c.due(&u, &s, subject.as_ref(), suite::t0(), 500).await,
            memory
                .due(&u, &s, subject.as_ref(), suite::t0(), 500)
                .await
                .expect("due"),
        ));
    }
    // A failure every way shares (here no `HSET` either) gives up no way.
    let shared = format!("{name}-nowrite");
    let unwritable = RedisDueCache::connect(RedisConfig {
        topology: acl_user(&mut admin, &url, &shared, &["restore", "hset"]).await,
        ..c.config().clone()
    })
    .await
    .expect("connect");
    let failed = unwritable.load(&user("refused-3"), &s, &rows).await;
    let kept_listpack = unwritable.loads_by_listpack();
    for n in [&name, &shared] {
        let () = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(n)
            .query_async(&mut admin)
            .await
            .expect("acl deluser");
    }
    assert!(failed.is_err(), "no way could write: {failed:?}");
    assert!(kept_listpack, "a failure of every way gives up none");
    first.expect("first load, by command after the refusal");
    second.expect("second load, by command");
    assert!(refused_after_first, "the refusal is remembered");
    for (subject, (got, want)) in [None, Some(SubjectId::new("math").unwrap())]
        .into_iter()
        .zip(dues)
    {
        assert_eq!(got.expect("due"), want, "{subject:?}");
    }
}
