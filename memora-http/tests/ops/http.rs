//! The embedded server as an operator meets it: the index at `/`, one log
//! line per request (without secrets), counters on /metrics, and a cache
//! status that does not pretend to have Redis.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DEMO_PASSWORD, SERIAL, Server, Session};

#[tokio::test]
async fn embedded_server_index_request_log_metrics_and_cache_status() {
    let _g = SERIAL.lock().await;
    let server = Server::start(&[
        ("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD),
        ("MEMORA_LOG_FORMAT", "json"),
    ])
    .await;
    let base = server.base();
    let http = reqwest::Client::new();

    // GET / is a small index, not an empty 404.
    let resp = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(resp.status(), 200);
    let index: Value = resp.json().await.expect("JSON index");
    assert_eq!(index["name"], "Memora");
    assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
    for link in ["/api/openapi.json", "/api/docs", "/healthz", "/readyz"] {
        assert!(index.to_string().contains(link), "{link} in {index}");
    }

    // One INFO line per request, with method, path, status, latency and id.
    let resp = http
        .get(format!("{base}/healthz"))
        .header("x-request-id", "ops-request-1")
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.headers()["x-request-id"], "ops-request-1");
    // Secrets a client might send: none may reach the log.
    let resp = http
        .post(format!(
            "{base}/api/method/login?usr=student@demo.memora&pwd=query-secret-1"
        ))
        .header("cookie", "sid=cookie-secret-2")
        .header("authorization", "token key:header-secret-3")
        .send()
        .await
        .expect("login in the query");
    assert_eq!(resp.status(), 400, "a password in the URL is refused");
    let log = server
        .wait_for_output("ops-request-1", Duration::from_secs(10))
        .await;
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "ops-request-1" && v["target"] == "memora::access")
        .unwrap_or_else(|| panic!("no request log line for ops-request-1:\n{log}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["path"], "/healthz", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(line["fields"]["latency_ms"].is_number(), "{line}");
    let log = server
        .wait_for_output("\"path\":\"/api/method/login\"", Duration::from_secs(10))
        .await;
    for secret in [
        "query-secret-1",
        "cookie-secret-2",
        "header-secret-3",
        DEMO_PASSWORD,
    ] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    // The start-up line says what the server runs on.
    assert!(log.contains("\"message\":\"starting Memora\""), "{log}");
    assert!(log.contains("\"backend\":\"embedded\""), "{log}");

    // *_total metrics are Prometheus counters.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for counter in [
        "memora_cache_hits_total",
        "memora_cache_misses_total",
        "memora_cache_failures_total",
        "memora_safe_mode_requests_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {counter} counter")),
            "{counter} is not a counter:\n{metrics}"
        );
        assert!(!metrics.contains(&format!("# TYPE {counter} gauge")));
    }
    assert!(
        metrics.contains("# TYPE memora_safe_mode gauge"),
        "{metrics}"
    );
    // One breaker per dependency, all closed on a healthy server.
    for dependency in ["due_cache", "leaderboards", "queue"] {
        assert!(
            metrics.contains(&format!(
                "memora_breaker_open{{dependency=\"{dependency}\"}} 0"
            )),
            "{dependency} breaker:\n{metrics}"
        );
    }
    let ready: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz JSON");
    assert_eq!(
        ready["breakers"],
        json!({"due_cache": "closed", "leaderboards": "closed", "queue": "closed"}),
        "{ready}"
    );

    // Embedded mode has no Redis and says so.
    let admin = Session::login(&base, memora_core::demo::DEMO_ADMIN, DEMO_PASSWORD).await;
    let status = admin.ok("srs.get_cache_status", json!({})).await;
    assert_eq!(status["redis_connected"], false, "{status}");
    assert_eq!(status["is_safe_mode"], false, "{status}");
}
