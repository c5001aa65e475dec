//! `import_content` modes, dry runs and catalog versions over HTTP.

use axum::http::StatusCode;
use serde_json::json;

use crate::endpoints::{call, setup};

#[tokio::test]
async fn imports_preview_unpublish_and_version_the_catalog() {
    let t = setup().await;
    let admin = Some(t.admin.as_str());
    let (status, v) = call(
        &t.app,
        "memora.api.admin.get_catalog_version",
        admin,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v0 = v["message"]["version"].as_u64().expect("version");

    // Preview: unpublish a lesson. Nothing changes yet.
    let unpublish = json!({"unpublish": {"lessons": ["sci-l5"]}});
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": unpublish, "dry_run": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["message"]["applied"], false);
    assert_eq!(r["message"]["version"], v0);
    assert_eq!(r["message"]["unpublished"]["lessons"], json!(["sci-l5"]));
    assert_eq!(r["message"]["unpublished_count"], 1);
    assert_eq!(r["message"]["errors"], json!([]));
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_catalog_version",
        admin,
        json!({}),
    )
    .await;
    assert_eq!(v["message"]["version"], v0, "a dry run makes no version");

    // Apply.
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": unpublish, "mode": "merge"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["message"]["applied"], true);
    assert_eq!(r["message"]["version"], v0 + 1);
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_catalog_version",
        admin,
        json!({}),
    )
    .await;
    assert_eq!(v["message"]["version"], v0 + 1);

    // Replace with an empty bundle: a preview lists everything published.
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": {}, "mode": "replace", "dry_run": "1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let subjects = r["message"]["unpublished"]["subjects"]
        .as_array()
        .map(Vec::len);
    assert_eq!(subjects, Some(2), "{r}");
    assert!(
        !r["message"]["unpublished"]["lessons"]
            .as_array()
            .expect("lessons")
            .contains(&json!("sci-l5")),
        "already unpublished"
    );

    // Validation errors: listed by a dry run, a 400 otherwise.
    let bad = json!({"unpublish": {"lessons": ["ghost"]}});
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": bad, "dry_run": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["message"]["errors"].to_string().contains("ghost"), "{r}");
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": bad}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
    assert_eq!(r["exc_type"], "ValidationError");
    let (status, r) = call(
        &t.app,
        "memora.api.admin.import_content",
        admin,
        json!({"bundle": {}, "mode": "delete-everything"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
    let (_, v) = call(
        &t.app,
        "memora.api.admin.get_catalog_version",
        admin,
        json!({}),
    )
    .await;
    assert_eq!(
        v["message"]["version"],
        v0 + 1,
        "refused imports make no version"
    );
}
