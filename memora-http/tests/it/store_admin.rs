//! The System Manager's store and subscription methods and the audit log
//! reader, over HTTP on the in-memory backend.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::endpoints::{T, call, setup};

const STUDENT: &str = "student@demo.memora";

async fn season(t: &T) -> String {
    let (status, body) = call(
        &t.app,
        "memora.api.admin.list_seasons",
        Some(&t.admin),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["message"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["is_active"] == json!(true)))
        .and_then(|s| s["name"].as_str())
        .expect("an active season")
        .to_owned()
}

async fn admin(t: &T, method: &str, args: Value) -> (StatusCode, Value) {
    call(
        &t.app,
        &format!("memora.api.store.{method}"),
        Some(&t.admin),
        args,
    )
    .await
}

async fn premium_lesson(t: &T) -> StatusCode {
    call(
        &t.app,
        "memora.api.sessions.get_lesson_details",
        Some(&t.student),
        json!({"lesson_id": "sci-l5"}),
    )
    .await
    .0
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn store_items_are_created_validated_updated_and_unpublished() {
    let t = setup().await;
    let season = season(&t).await;
    let item = json!({
        "item_id": "item-bio",
        "item_name": "Biology extras",
        "price": 1200,
        "season": season,
        "contents": [{"type": "Subject", "id": "science"}],
    });
    let (status, body) = admin(&t, "create_store_item", item.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["id"], "item-bio");
    assert_eq!(body["message"]["is_active"], true);
    let (status, body) = admin(&t, "create_store_item", item.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Bad input is a 400 naming the problem, never a 500.
    for (patch, needle) in [
        (json!({"item_id": "x1", "price": -1}), "price"),
        (
            json!({"item_id": "x2", "discounted_price": 5000}),
            "discounted_price",
        ),
        (
            json!({"item_id": "x3", "season": "SEASON-1999"}),
            "SEASON-1999",
        ),
        (
            json!({"item_id": "x4", "contents": [{"type": "Subject", "id": "alchemy"}]}),
            "alchemy",
        ),
        (
            json!({"item_id": "x5", "contents": [{"type": "Track", "id": "no-track"}]}),
            "no-track",
        ),
        (json!({"item_id": "x6", "contents": []}), "contents"),
        (json!({"item_id": "x7", "item_name": " "}), "item_name"),
    ] {
        let mut bad = item.clone();
        for (k, v) in patch.as_object().expect("object") {
            bad[k] = v.clone();
        }
        let (status, body) = admin(&t, "create_store_item", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {body}");
        assert_eq!(body["exc_type"], "ValidationError", "{patch}");
        assert!(body.to_string().contains(needle), "{patch}: {body}");
    }
    let (_, listed) = admin(&t, "list_store_items", json!({})).await;
    assert!(
        ids(&listed["message"]).contains(&"item-bio".to_owned()),
        "{listed}"
    );
    let (_, store) = call(
        &t.app,
        "memora.api.store.get_store_items",
        Some(&t.student),
        json!({}),
    )
    .await;
    assert!(
        ids(&store["message"]).contains(&"item-bio".to_owned()),
        "{store}"
    );

    let (status, body) = admin(
        &t,
        "update_store_item",
        json!({"item_id": "item-bio", "price": 900, "discounted_price": 800}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["price"], 900);
    assert_eq!(body["message"]["discounted_price"], 800);
    assert_eq!(
        body["message"]["item_name"], "Biology extras",
        "unchanged fields kept"
    );
    let (status, _) = admin(
        &t,
        "update_store_item",
        json!({"item_id": "item-bio", "price": -5}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(
        &t,
        "update_store_item",
        json!({"item_id": "nope", "price": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = admin(&t, "unpublish_store_item", json!({"item_id": "item-bio"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["is_active"], false);
    let (_, store) = call(
        &t.app,
        "memora.api.store.get_store_items",
        Some(&t.student),
        json!({}),
    )
    .await;
    assert!(
        !ids(&store["message"]).contains(&"item-bio".to_owned()),
        "unpublished items are not sold"
    );
    let (status, body) = call(
        &t.app,
        "memora.api.store.request_purchase",
        Some(&t.student),
        json!({"item_id": "item-bio"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, listed) = admin(&t, "list_store_items", json!({})).await;
    assert!(
        ids(&listed["message"]).contains(&"item-bio".to_owned()),
        "admins still see it"
    );
}

#[tokio::test]
async fn suspending_or_expiring_a_subscription_closes_premium_content_at_once() {
    let t = setup().await;
    assert_eq!(premium_lesson(&t).await, StatusCode::FORBIDDEN);
    let (status, body) = admin(
        &t,
        "grant_subscription",
        json!({"user": STUDENT, "item_id": "item-science"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sub = body["message"]["id"]
        .as_str()
        .expect("subscription id")
        .to_owned();
    assert_eq!(body["message"]["status"], "active");
    assert_eq!(body["message"]["in_force"], true);
    assert_eq!(premium_lesson(&t).await, StatusCode::OK);

    let (status, body) = admin(
        &t,
        "suspend_subscription",
        json!({"subscription_id": sub, "reason": "refund"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["status"], "suspended");
    assert_eq!(
        premium_lesson(&t).await,
        StatusCode::FORBIDDEN,
        "suspension takes effect at once"
    );
    let (status, _) = admin(&t, "suspend_subscription", json!({"subscription_id": sub})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already suspended");

    let (_, listed) = admin(
        &t,
        "list_subscriptions",
        json!({"user": STUDENT, "status": "suspended"}),
    )
    .await;
    assert_eq!(ids(&listed["message"]["subscriptions"]), vec![sub.clone()]);
    let (_, listed) = admin(&t, "list_subscriptions", json!({"status": "active"})).await;
    assert!(!ids(&listed["message"]["subscriptions"]).contains(&sub));

    let (status, _) = admin(&t, "resume_subscription", json!({"subscription_id": sub})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(premium_lesson(&t).await, StatusCode::OK);
    let (status, body) = admin(&t, "expire_subscription", json!({"subscription_id": sub})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["status"], "expired");
    assert_eq!(premium_lesson(&t).await, StatusCode::FORBIDDEN);
    let (status, _) = admin(&t, "resume_subscription", json!({"subscription_id": sub})).await;
    assert_eq!(status, StatusCode::CONFLICT, "expiry is final");
    let (status, _) = admin(
        &t,
        "resume_subscription",
        json!({"subscription_id": "SUB-nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Explicit grants with an end date; bad grants are 400s.
    let (status, body) = admin(
        &t,
        "grant_subscription",
        json!({"user": STUDENT, "season": season(&t).await, "grants": [{"type": "Subject", "id": "science"}],
               "end_date": "2999-01-01"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "past the season's end: {body}"
    );
    for bad in [
        json!({"user": STUDENT}),
        json!({"user": "ghost@nowhere.io", "item_id": "item-science"}),
        json!({"user": STUDENT, "item_id": "item-science", "end_date": "2000-01-01"}),
        json!({"user": STUDENT, "season": "SEASON-2026", "grants": [{"type": "Subject", "id": "alchemy"}]}),
        json!({"user": STUDENT, "item_id": "item-science", "grants": [{"type": "Subject", "id": "science"}]}),
    ] {
        let (status, body) = admin(&t, "grant_subscription", bad.clone()).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{bad}: {status} {body}"
        );
    }

    // Every change is audited, newest first, filterable and paged.
    let (status, log) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&t.admin),
        json!({"action": "subscription.", "actor": "admin@demo.memora"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log["message"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "subscription.expire",
            "subscription.resume",
            "subscription.suspend",
            "subscription.grant"
        ]
    );
    let (_, page1) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&t.admin),
        json!({"action": "subscription.", "limit": 3}),
    )
    .await;
    assert_eq!(page1["message"]["events"].as_array().map(Vec::len), Some(3));
    let cursor = page1["message"]["next_before"].clone();
    assert!(cursor.is_u64(), "{page1}");
    let (_, page2) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&t.admin),
        json!({"action": "subscription.", "limit": 3, "before": cursor}),
    )
    .await;
    assert_eq!(
        page2["message"]["events"][0]["action"],
        "subscription.grant"
    );
    assert_eq!(page2["message"]["next_before"], Value::Null);
    let (status, _) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&t.admin),
        json!({"limit": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(
        &t.app,
        "memora.api.admin.get_audit_log",
        Some(&t.admin),
        json!({"since": "yesterday"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
