//! A wrong MEMORA_DATABASE_URL stops start-up fast with the redacted URL and
//! the cause, for `serve` and for the admin commands alike.

use std::time::Duration;

use crate::support::{admin_url, run, skip, url_for};

/// Fails with a message naming `url_shown` and `cause`; never echoes
/// `secret`, never takes longer than `fast`.
fn assert_refused(args: &[&str], url: &str, url_shown: &str, cause: &str, secret: &str) {
    let r = run(args, &[("MEMORA_DATABASE_URL", url)], None);
    assert!(!r.success, "{args:?} with {url} must fail:\n{}", r.stdout);
    let err = &r.stderr;
    assert!(err.contains(url_shown), "names the URL {url_shown}: {err}");
    assert!(err.contains(cause), "says {cause:?}: {err}");
    assert!(!err.contains(secret), "leaks the password: {err}");
    assert!(!err.contains("pool timed out"), "{err}");
    assert!(!err.contains("Stack backtrace"), "no backtrace: {err}");
    assert!(err.starts_with("error: database "), "one clear line: {err}");
    assert!(
        r.elapsed < Duration::from_secs(10),
        "fails fast, took {:?}",
        r.elapsed
    );
}

#[test]
fn refused_port_is_named_at_once() {
    // No subcommand = serve, configured from the environment.
    for cmd in [
        &[][..],
        &["serve"],
        &["migrate"],
        &["user", "api-key", "a@b.c"],
    ] {
        assert_refused(
            cmd,
            "postgres://memora:hunter2-secret@127.0.0.1:1/memora",
            "postgres://memora:***@127.0.0.1:1/memora",
            "connection refused",
            "hunter2-secret",
        );
    }
}

#[test]
fn a_mysql_url_is_not_taken_for_postgres() {
    assert_refused(
        &["serve"],
        "mysql://root:hunter2-secret@127.0.0.1:3306/memora",
        "mysql://root:***@127.0.0.1:3306/memora",
        "not a PostgreSQL URL",
        "hunter2-secret",
    );
}

#[test]
fn an_unknown_host_is_named() {
    assert_refused(
        &["migrate"],
        "postgres://memora:hunter2-secret@nohost.invalid:5432/memora",
        "postgres://memora:***@nohost.invalid:5432/memora",
        "unknown host `nohost.invalid`",
        "hunter2-secret",
    );
}

#[test]
fn a_missing_database_is_named() {
    if !postgres_up() {
        return;
    }
    let name = format!("memora_ops_missing_{}", std::process::id());
    let url = url_for(&name);
    assert_refused(
        &["serve"],
        &url,
        &url,
        &format!("database `{name}` does not exist"),
        "\u{0}",
    );
}

#[test]
fn an_unknown_user_is_an_authentication_failure() {
    if !postgres_up() {
        return;
    }
    // Any server refuses a role that does not exist, whatever its
    // pg_hba method (trust answers 28000, password methods 28P01).
    let admin = admin_url();
    let rest = admin
        .split_once('@')
        .map_or("127.0.0.1:5432/postgres", |(_, r)| r);
    let url = format!("postgres://no_such_role_ops:hunter2-secret@{rest}");
    let shown = format!("postgres://no_such_role_ops:***@{rest}");
    assert_refused(
        &["migrate"],
        &url,
        &shown,
        "authentication failed",
        "hunter2-secret",
    );
}

fn postgres_up() -> bool {
    let admin = admin_url();
    let hostport = admin
        .split_once('@')
        .map(|(_, r)| r)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    if std::net::TcpStream::connect(&hostport).is_ok() {
        return true;
    }
    let _ = skip(&format!("PostgreSQL unreachable at {hostport}"));
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_replica_url_is_checked_but_a_down_replica_does_not_stop_start_up() {
    let Some(db) = crate::support::Db::create().await else {
        return;
    };
    // A malformed read URL is a configuration error (a typo must not send
    // every read to the primary unnoticed).
    let r = run(
        &["migrate"],
        &[
            ("MEMORA_DATABASE_URL", db.url.as_str()),
            (
                "MEMORA_DATABASE_READ_URL",
                "mysql://root:hunter2-secret@127.0.0.1:3306/memora",
            ),
        ],
        None,
    );
    assert!(!r.success, "must fail:\n{}", r.stdout);
    assert!(
        r.stderr
            .contains("read replica URL is not a PostgreSQL URL"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2-secret"), "{}", r.stderr);
    // A replica that does not answer is not: its reads go to the primary.
    let r = run(
        &[
            "migrate",
            "--database-read-url",
            "postgres://postgres@127.0.0.1:1/postgres",
        ],
        &[("MEMORA_DATABASE_URL", db.url.as_str())],
        None,
    );
    assert!(r.success, "must start without the replica:\n{}", r.stderr);
}
