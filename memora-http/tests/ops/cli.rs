//! The admin CLI: each subcommand's own flags, output for people and
//! `--json` for machines, passwords, confirmation.

use crate::support::{DEMO_PASSWORD, Db, run};

fn help(args: &[&str]) -> String {
    let mut a = args.to_vec();
    a.push("--help");
    let r = run(&a, &[], None);
    assert!(r.success, "{a:?}: {}", r.stderr);
    r.stdout
}

#[test]
fn subcommands_show_only_their_own_flags() {
    let user_add = help(&["user", "add"]);
    for own in ["--name", "--password-stdin", "--database-url", "--json"] {
        assert!(user_add.contains(own), "user add lacks {own}:\n{user_add}");
    }
    for foreign in [
        "--bind",
        "--redis-url",
        "--metrics-token",
        "--demo-password",
        "--secure-cookies",
    ] {
        assert!(
            !user_add.contains(foreign),
            "user add shows {foreign}:\n{user_add}"
        );
    }
    let migrate = help(&["migrate"]);
    assert!(migrate.contains("--database-url"), "{migrate}");
    assert!(!migrate.contains("--redis-url"), "{migrate}");
    assert!(!migrate.contains("--bind"), "{migrate}");
    let serve = help(&["serve"]);
    for own in [
        "--bind",
        "--database-url",
        "--redis-url",
        "--metrics-token",
        "--metrics-bind",
    ] {
        assert!(serve.contains(own), "serve lacks {own}:\n{serve}");
    }
    let eval = help(&["eval-revlog"]);
    assert!(!eval.contains("--database-url"), "{eval}");
    assert!(eval.contains("--json"), "{eval}");
    let archive = help(&["archive"]);
    assert!(archive.contains("--yes"), "{archive}");
    assert!(archive.contains("--redis-url"), "archive clears cache keys");
}

#[test]
fn archive_asks_for_the_yes_flag() {
    // Checked before any connection: the refused URL is never reached.
    let r = run(
        &["archive", "SEASON-2025"],
        &[("MEMORA_DATABASE_URL", "postgres://x@127.0.0.1:1/x")],
        None,
    );
    assert!(!r.success);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(!r.stderr.contains("confirm=true"), "{}", r.stderr);
    assert!(!r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
}

#[test]
fn commands_need_a_database() {
    let r = run(
        &["user", "add", "a@b.c", "--name", "A", "--no-password"],
        &[],
        None,
    );
    assert!(!r.success);
    assert!(
        r.stderr
            .contains("needs a database: set MEMORA_DATABASE_URL or pass --database-url"),
        "{}",
        r.stderr
    );
}

#[test]
fn eval_revlog_prints_a_table_or_json() {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/py-fsrs-josh-revlog/review_logs_josh_1711744352250_to_1728234780857.csv"
    );
    let r = run(&["eval-revlog", csv, "--json"], &[], None);
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["reviews"], 12_580);
    let models = v["models"].as_array().expect("models");
    assert!(models.iter().any(|m| m["model"] == "FSRS-6 fitted"), "{v}");
    let r = run(&["eval-revlog", csv], &[], None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("log loss"), "{}", r.stdout);
    assert!(!r.stdout.contains("EvalReport"), "{}", r.stdout);
}

#[tokio::test]
async fn admin_commands_report_in_sentences_and_json() {
    let Some(db) = Db::create().await else { return };
    let env = [("MEMORA_DATABASE_URL", db.url.as_str())];

    let r = run(&["migrate", "--json"], &env, None);
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert!(v["migrations_applied"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["empty"], true, "{v}");
    let r = run(&["migrate"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("schema up to date"), "{}", r.stdout);
    assert!(r.stdout.contains("memora seed-demo"), "{}", r.stdout);

    // A password on stdin.
    let r = run(
        &[
            "user",
            "add",
            "alice@ops.test",
            "--name",
            "Alice Ops",
            "--password-stdin",
            "--json",
        ],
        &env,
        Some("Correct-Horse-Battery-9!\n"),
    );
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["user"], "alice@ops.test");
    assert_eq!(v["password_set"], true);
    assert_eq!(v["roles"], serde_json::json!(["Student"]));
    let hashes = "SELECT count(*) FROM password_hashes WHERE user_id = $1";
    assert_eq!(db.count(hashes, "alice@ops.test").await, 1);

    // No password and no terminal: created, and told how to set one.
    let r = run(
        &["user", "add", "bob@ops.test", "--name", "Bob Ops"],
        &env,
        None,
    );
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("Created user bob@ops.test (Bob Ops), role: Student."),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("No password is set"), "{}", r.stdout);
    assert!(
        r.stdout.contains("memora user set-password bob@ops.test"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("[Student]"),
        "no Debug output: {}",
        r.stdout
    );
    assert_eq!(db.count(hashes, "bob@ops.test").await, 0);
    let r = run(
        &["user", "set-password", "bob@ops.test", "--password-stdin"],
        &env,
        Some("Another-Long-Pass-77\n"),
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "Password of bob@ops.test set.");
    assert_eq!(db.count(hashes, "bob@ops.test").await, 1);

    // The demo, then a reconciliation in words and in JSON.
    let demo = [
        ("MEMORA_DATABASE_URL", db.url.as_str()),
        ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
    ];
    let r = run(&["seed-demo", "--json"], &demo, None);
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["password"], serde_json::Value::Null, "given, not shown");
    assert!(v["season"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let r = run(&["reconcile", "--sample-size", "100"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("rows sampled"), "{}", r.stdout);
    assert!(!r.stdout.contains("ReconcileReport"), "{}", r.stdout);
    let r = run(&["reconcile", "--sample-size", "100", "--json"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.json()["discrepancies_found"].is_u64(), "{}", r.stdout);

    let r = run(
        &[
            "season",
            "create",
            "SEASON-2031",
            "--start",
            "2030-09-01",
            "--end",
            "2031-06-30",
        ],
        &env,
        None,
    );
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stdout.contains("memora season activate SEASON-2031"),
        "{}",
        r.stdout
    );
}

#[test]
fn queue_commands_take_their_own_flags_and_confirmation() {
    let dead = help(&["queue", "dead-letters"]);
    for own in [
        "--after",
        "--limit",
        "--redis-url",
        "--database-url",
        "--json",
    ] {
        assert!(
            dead.contains(own),
            "queue dead-letters lacks {own}:\n{dead}"
        );
    }
    assert!(!dead.contains("--bind"), "{dead}");
    // Neither an id nor --all, or both: refused by the parser.
    let r = run(&["queue", "replay"], &[], None);
    assert!(!r.success);
    assert!(r.stderr.contains("--all"), "{}", r.stderr);
    let r = run(&["queue", "replay", "1-0", "--all"], &[], None);
    assert!(!r.success);
    // Discard asks for --yes before any connection.
    let r = run(
        &["queue", "discard", "1-0"],
        &[("MEMORA_DATABASE_URL", "postgres://x@127.0.0.1:1/x")],
        None,
    );
    assert!(!r.success);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(!r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
}

#[tokio::test]
async fn dead_letters_are_listed_shown_discarded_and_replayed_from_the_cli() {
    let Some(db) = Db::create().await else { return };
    let redis_url =
        std::env::var("MEMORA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = match redis::Client::open(redis_url.as_str()) {
        Ok(c) => match c.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                crate::support::skip(&format!("Redis unreachable at {redis_url}: {e}"));
                return;
            }
        },
        Err(e) => panic!("bad Redis URL {redis_url}: {e}"),
    };
    let ns = format!("cli-dl-{}-{}:", std::process::id(), db.name);
    let dead_key = format!("{{{ns}queue}}:dead");
    let stream_key = format!("{{{ns}queue}}:stream");
    // Two dead letters as the worker writes them (an undecodable payload:
    // the CLI must still list, show, discard and replay it).
    let mut ids = Vec::new();
    for error in ["unavailable: database down", "rejected: no partition"] {
        let id: String = redis::cmd("XADD")
            .arg(&dead_key)
            .arg("*")
            .arg("job")
            .arg("not-a-job")
            .arg("error")
            .arg(error)
            .arg("attempts")
            .arg(4)
            .arg("origin")
            .arg("1-0")
            .query_async(&mut conn)
            .await
            .expect("xadd");
        ids.push(id);
    }
    let env = [
        ("MEMORA_DATABASE_URL", db.url.as_str()),
        ("MEMORA_REDIS_URL", redis_url.as_str()),
        ("MEMORA_REDIS_NAMESPACE", ns.as_str()),
    ];

    let r = run(&["queue", "dead-letters", "--json"], &env, None);
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["dead_letters"][0]["id"], ids[0].as_str(), "{v}");
    assert_eq!(v["dead_letters"][0]["error"], "unavailable: database down");
    assert_eq!(v["dead_letters"][0]["attempts"], 4);
    let r = run(&["queue", "dead-letters", "--limit", "1"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("2 dead letter(s)"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&ids[0]) && !r.stdout.contains(&ids[1]),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("--after {}", ids[0])),
        "{}",
        r.stdout
    );
    let r = run(&["queue", "show", &ids[1]], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("rejected: no partition"), "{}", r.stdout);
    let r = run(&["queue", "show", "nope"], &env, None);
    assert!(!r.success);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);

    let r = run(
        &["queue", "discard", &ids[1], "--yes", "--json"],
        &env,
        None,
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(r.json()["discarded"]["id"], ids[1].as_str());
    let r = run(&["queue", "replay", "--all"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stdout.contains("Replayed 1 dead letter(s)"),
        "{}",
        r.stdout
    );
    let (dead, stream): (u64, u64) = redis::pipe()
        .cmd("XLEN")
        .arg(&dead_key)
        .cmd("XLEN")
        .arg(&stream_key)
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!((dead, stream), (0, 1), "discarded one, replayed the other");
    let r = run(&["queue", "dead-letters"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.starts_with("No dead letters"), "{}", r.stdout);
    let audited = "SELECT count(*) FROM audit_log WHERE action = $1";
    assert_eq!(db.count(audited, "queue.discard").await, 1);
    assert_eq!(db.count(audited, "queue.replay_all").await, 1);
    let _: redis::RedisResult<i64> = redis::cmd("DEL")
        .arg(&dead_key)
        .arg(&stream_key)
        .query_async(&mut conn)
        .await;
}

#[tokio::test]
async fn import_content_previews_then_applies_with_a_catalog_version() {
    let Some(db) = Db::create().await else { return };
    let demo = [
        ("MEMORA_DATABASE_URL", db.url.as_str()),
        ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
    ];
    let r = run(&["seed-demo", "--json"], &demo, None);
    assert!(r.success, "{}", r.stderr);
    let env = [("MEMORA_DATABASE_URL", db.url.as_str())];
    let dir = std::env::temp_dir().join(format!("memora-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("unpublish.json");
    std::fs::write(&file, r#"{"unpublish": {"lessons": ["sci-l5"]}}"#).expect("bundle");
    let path = file.to_str().expect("utf-8 path");
    let published = "SELECT count(*) FROM lessons WHERE is_published AND id = $1";

    let r = run(&["import-content", path, "--dry-run", "--json"], &env, None);
    assert!(r.success, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["applied"], false, "{v}");
    assert_eq!(
        v["unpublished"]["lessons"],
        serde_json::json!(["sci-l5"]),
        "{v}"
    );
    let v0 = v["version"].as_u64().expect("version");
    assert_eq!(
        db.count(published, "sci-l5").await,
        1,
        "a dry run changes nothing"
    );

    let r = run(&["import-content", path, "--dry-run"], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stdout.contains("Dry run"), "{}", r.stdout);
    assert!(r.stdout.contains("sci-l5"), "{}", r.stdout);

    let r = run(&["import-content", path], &env, None);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("catalog version {}", v0 + 1)),
        "{}",
        r.stdout
    );
    assert_eq!(db.count(published, "sci-l5").await, 0);

    // Replace with an empty bundle, as a preview only; a bad mode or an
    // invalid bundle is a one-line error and a failure exit.
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{}").expect("bundle");
    let empty = empty.to_str().expect("utf-8 path");
    let r = run(
        &[
            "import-content",
            empty,
            "--mode",
            "replace",
            "--dry-run",
            "--json",
        ],
        &env,
        None,
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        r.json()["unpublished"]["subjects"].as_array().map(Vec::len),
        Some(2)
    );
    let r = run(&["import-content", empty, "--mode", "wipe"], &env, None);
    assert!(!r.success);
    let ghost = dir.join("ghost.json");
    std::fs::write(&ghost, r#"{"unpublish": {"lessons": ["ghost"]}}"#).expect("bundle");
    let r = run(
        &["import-content", ghost.to_str().expect("path")],
        &env,
        None,
    );
    assert!(!r.success);
    assert!(r.stderr.contains("ghost"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
