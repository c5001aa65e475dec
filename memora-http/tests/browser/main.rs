//! The web console driven in headless Chromium through WebDriver, against
//! the real `memora serve` binary (embedded backend, demo data): a student
//! plays review cards and sees XP move; an admin approves a purchase and
//! sees the subscription, and rebuilds a season's cache to 100 %; a student
//! cannot reach the admin pages, in the UI or through the API.
//!
//! Screenshots of the main pages go to `docs/console/` with
//! `MEMORA_UPDATE_SCREENSHOTS=1` (else under the target directory).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::HashMap;

use serde_json::json;

use harness::{ADMIN, Api, Browser, SERIAL, STUDENT, Server, tools};

/// Whether a string holds Arabic letters.
fn is_arabic(s: &str) -> bool {
    s.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
}

#[tokio::test]
async fn student_plays_three_review_cards_and_sees_xp_and_quests_change() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    // The answers, asked from the API the way any client may (cards carry
    // their answer so clients grade offline): question id → correct option.
    let oracle = Api::login(&base, STUDENT).await;
    let due = oracle
        .ok("reviews.get_review_session", json!({"limit": 50}))
        .await;
    let answers: HashMap<String, String> = due["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["question_id"].as_str().unwrap().to_owned(),
                q["correct_answer"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(answers.len() >= 3, "the demo has due cards: {due}");

    let b = Browser::start(&tools).await;
    b.sign_in(&base, STUDENT).await;
    assert_eq!(b.text("#role").await, "Student");
    // Learner navigation only.
    assert!(b.all("#nav a[href^='#/admin']").await.is_empty());
    let xp_before: i64 = b
        .wait_text("#xp", "a number", |t| t.parse::<i64>().is_ok())
        .await
        .parse()
        .unwrap();
    b.find("#quests").await;
    let xp_quest_before = b
        .find("[data-quest='quest_xp']")
        .await
        .attr("data-progress")
        .await
        .unwrap()
        .unwrap_or_default();
    b.screenshot("learner-today").await;

    b.click("#nav a[href='#/review']").await;
    let mut saw_arabic = false;
    for n in 0..3 {
        let card = b.find(".review-card[data-state='answering']").await;
        let qid = card.attr("data-question-id").await.unwrap().unwrap();
        let question = b.text(".review-card .question").await;
        if is_arabic(&question) {
            // dir="auto" resolves Arabic text right-to-left.
            let dir = b
                .client
                .execute(
                    "return getComputedStyle(document.querySelector('.review-card .question')).direction;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                dir, "rtl",
                "Arabic question {question:?} renders right-to-left"
            );
            saw_arabic = true;
        }
        let correct = answers
            .get(&qid)
            .unwrap_or_else(|| panic!("{qid} was not among the due cards"));
        let mut clicked = false;
        for option in b.all(".review-card .option").await {
            if option.attr("data-option").await.unwrap().as_deref() == Some(correct.as_str()) {
                option.click().await.unwrap();
                clicked = true;
                break;
            }
        }
        assert!(clicked, "{qid}: no option {correct:?}");
        b.find(".review-card[data-state='answered']").await;
        b.wait_text("#feedback", "the XP of the answer", |t| t.contains("XP"))
            .await;
        if n == 0 {
            b.screenshot("learner-review").await;
        }
        b.click("#next").await;
    }
    assert!(saw_arabic, "the demo's first due cards include Arabic text");
    let xp_after: i64 = b
        .wait_text("#xp", "more XP", |t| {
            t.parse::<i64>().is_ok_and(|x| x > xp_before)
        })
        .await
        .parse()
        .unwrap();
    assert!(xp_after > xp_before, "{xp_before} → {xp_after}");
    // The daily XP quest moved too (shown under the session).
    b.wait_js(
        &format!(
            "(() => {{ const q = document.querySelector(\"[data-quest='quest_xp']\"); return q && Number(q.dataset.progress) > Number({xp_quest_before:?}); }})()"
        ),
        "the daily XP quest's progress grows",
    )
    .await;
    // The server agrees.
    let stats = oracle.ok("profile.get_full_profile_stats", json!({})).await;
    assert_eq!(stats["totalXP"], xp_after, "{stats}");

    // Phone width (500 px: the narrowest window headless Chromium opens;
    // the layout switches to one column below 700 px).
    b.viewport(500, 760).await;
    b.click("#nav a[href='#/']").await;
    b.find("#quests").await;
    b.screenshot("learner-phone").await;
    b.close().await;
    drop(server);
}

#[tokio::test]
async fn admin_approves_a_purchase_request_and_sees_the_subscription() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let student = Api::login(&base, STUDENT).await;
    let purchase = student
        .ok("store.request_purchase", json!({"item_id": "item-science"}))
        .await;
    let request = purchase["purchase_id"].as_str().unwrap().to_owned();

    let b = Browser::start(&tools).await;
    b.sign_in(&base, ADMIN).await;
    assert_eq!(b.text("#role").await, "System Manager");
    // The admin lands on Operations: cache, safe mode, queue, dead letters.
    b.find("#tile-safe-mode").await;
    b.find("#dead-letters table, #dead-letters .empty").await;
    b.wait_text("#tile-cache", "the cache state", |t| {
        t.contains("in-process")
    })
    .await;
    // Scheduled jobs: every job listed with its last run (none yet).
    let jobs = b
        .wait_text("#job-runs table", "the scheduled jobs", |t| {
            t.contains("reconcile") && t.contains("invalidations_prune")
        })
        .await;
    assert!(jobs.contains("never"), "{jobs}");
    b.screenshot("admin-operations").await;

    b.click("#nav a[href='#/admin/purchases']").await;
    let approve = format!("button[data-approve='{request}']");
    b.find(&approve).await;
    b.screenshot("admin-purchases").await;
    b.click(&approve).await;
    // Approved requests leave the Pending list.
    b.wait_js(
        &format!("!document.querySelector(\"{approve}\") && document.querySelector('#purchases')"),
        "the approved request leaves the pending list",
    )
    .await;

    b.click("#nav a[href='#/admin/subscriptions']").await;
    let row = b
        .wait_text("#subscriptions", "the new subscription", |t| {
            t.contains(&request) && t.contains(STUDENT)
        })
        .await;
    assert!(row.contains("active"), "{row}");
    b.screenshot("admin-subscriptions").await;
    // The server agrees: the student now holds a subscription.
    let (status, subs) = student
        .call("user_access.get_user_access_keys", json!({}))
        .await;
    assert_eq!(status, 200, "{subs}");
    assert!(subs.to_string().contains("science"), "{subs}");
    b.close().await;
    drop(server);
}

#[tokio::test]
async fn admin_rebuilds_a_season_cache_and_the_progress_reaches_100() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let b = Browser::start(&tools).await;
    b.sign_in(&base, ADMIN).await;
    b.click("#nav a[href='#/admin/seasons']").await;
    b.click("button[data-rebuild='SEASON-2026']").await;
    b.find("#rebuild [data-status='completed']").await;
    b.wait_js(
        "document.querySelector('#rebuild-progress').value === 100",
        "the progress bar is full",
    )
    .await;
    let label = b
        .wait_text("#rebuild-label", "100 %", |t| t.contains("100 %"))
        .await;
    assert!(label.contains("completed"), "{label}");
    b.screenshot("admin-seasons-rebuild").await;
    b.close().await;
    drop(server);
}

#[tokio::test]
async fn a_student_cannot_reach_the_admin_pages() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let b = Browser::start(&tools).await;
    b.sign_in(&base, STUDENT).await;
    // The navigation offers no admin page…
    let links = b.all("#nav a").await;
    assert!(!links.is_empty());
    for l in links {
        let href = l.attr("href").await.unwrap().unwrap_or_default();
        assert!(!href.starts_with("#/admin"), "student sees {href}");
    }
    // …and opening one directly shows a refusal, not the page.
    for page in ["purchases", "operations", "seasons"] {
        b.goto(&format!("{base}/#/admin/{page}")).await;
        let refusal = b.text("#refused").await;
        assert!(refusal.contains("System Manager"), "{refusal}");
        assert!(
            b.all("button[data-approve], button[data-rebuild], #tile-safe-mode")
                .await
                .is_empty()
        );
    }
    b.screenshot("student-refused").await;
    b.close().await;

    // The server refuses the calls anyway (cookie session with CSRF).
    let student = Api::login(&base, STUDENT).await;
    for (method, args) in [
        ("store.list_purchase_requests", json!({})),
        ("store.approve_purchase_request", json!({"request_id": "x"})),
        (
            "srs.rebuild_season_cache",
            json!({"season_name": "SEASON-2026"}),
        ),
        ("srs.get_cache_status", json!({})),
    ] {
        let (status, body) = student.call(method, args).await;
        assert_eq!(status, 403, "{method}: {body}");
        assert_eq!(body["exc_type"], "PermissionError", "{method}: {body}");
    }
    drop(server);
}

#[tokio::test]
async fn admin_previews_a_content_import_before_applying_it() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let dir = std::env::temp_dir().join(format!("memora-import-{}", server.port));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("unpublish.json");
    std::fs::write(&good, r#"{"unpublish": {"lessons": ["sci-l5"]}}"#).unwrap();
    let bad = dir.join("ghost.json");
    std::fs::write(&bad, r#"{"unpublish": {"lessons": ["ghost"]}}"#).unwrap();

    let b = Browser::start(&tools).await;
    b.sign_in(&base, ADMIN).await;
    b.click("#nav a[href='#/admin/content']").await;
    let apply_enabled = "!document.querySelector('#import-apply').disabled";
    let apply_disabled = "document.querySelector('#import-apply').disabled";
    b.wait_js(apply_disabled, "Apply is disabled before a preview")
        .await;

    // A file with an error: the preview lists it and Apply stays disabled.
    b.find("#import-file")
        .await
        .send_keys(&bad.display().to_string())
        .await
        .unwrap();
    b.click("#import-preview").await;
    b.wait_text("#import-result", "the validation error", |t| {
        t.contains("error") && t.contains("ghost")
    })
    .await;
    b.wait_js(
        apply_disabled,
        "Apply stays disabled after a preview with errors",
    )
    .await;

    // A clean file: the diff first, nothing written, then Apply.
    b.find("#import-file")
        .await
        .send_keys(&good.display().to_string())
        .await
        .unwrap();
    b.click("#import-preview").await;
    let preview = b
        .wait_text("#import-result", "the diff", |t| {
            t.contains("Dry run") && t.contains("sci-l5")
        })
        .await;
    assert!(preview.contains("Unpublished"), "{preview}");
    b.wait_js(apply_enabled, "Apply is enabled after a clean preview")
        .await;
    let admin = Api::login(&base, ADMIN).await;
    let before = admin.ok("admin.get_catalog_version", json!({})).await;
    b.screenshot("admin-content-import").await;
    b.click("#import-apply").await;
    b.wait_text("#import-result", "the import", |t| t.contains("Imported"))
        .await;
    let after = admin.ok("admin.get_catalog_version", json!({})).await;
    assert!(
        after["version"].as_i64() > before["version"].as_i64(),
        "{before} → {after}"
    );
    b.close().await;
    let _ = std::fs::remove_dir_all(dir);
    drop(server);
}

#[tokio::test]
async fn archiving_needs_the_season_typed_and_the_server_still_decides() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let b = Browser::start(&tools).await;
    b.sign_in(&base, ADMIN).await;
    b.click("#nav a[href='#/admin/archive']").await;
    b.wait_text("#archive-status", "the season's counts", |t| {
        t.contains("Live records")
    })
    .await;
    let go_disabled = "document.querySelector('#archive-go').disabled";
    b.wait_js(go_disabled, "archive is disabled until confirmed")
        .await;
    b.fill("#archive-confirm", "SEASON-2025").await;
    b.wait_js(go_disabled, "a different season id does not confirm")
        .await;
    b.fill("#archive-confirm", "SEASON-2026").await;
    b.wait_js(
        "!document.querySelector('#archive-go').disabled",
        "the typed season id enables the button",
    )
    .await;
    b.screenshot("admin-archive").await;
    // The demo season is the active one: the server refuses to archive it.
    b.click("#archive-go").await;
    let refusal = b
        .wait_text("main .error", "the server's refusal", |t| {
            t.contains("InvalidStateError")
        })
        .await;
    assert!(refusal.contains("active"), "{refusal}");
    let admin = Api::login(&base, ADMIN).await;
    let status = admin
        .ok(
            "srs.get_archive_status",
            json!({"season_name": "SEASON-2026"}),
        )
        .await;
    assert_eq!(status["archived"], false, "{status}");
    b.close().await;
    drop(server);
}

#[tokio::test]
async fn a_student_signs_a_device_out_from_the_console() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    // An app signed in on the student's phone.
    let phone = Api::login_with(
        &base,
        STUDENT,
        json!({"device_id": "phone-1", "device_type": "mobile", "device_name": "Sara's phone"}),
    )
    .await;
    assert_eq!(
        phone.ok("auth.get_my_devices", json!({})).await[0]["current"],
        true
    );

    let b = Browser::start(&tools).await;
    b.sign_in(&base, STUDENT).await;
    b.click("#nav a[href='#/devices']").await;
    let listed = b
        .wait_text("#devices table", "the device list", |t| {
            t.contains("Sara's phone")
        })
        .await;
    assert!(listed.contains("mobile"), "{listed}");
    b.screenshot("learner-devices").await;
    b.click("button[aria-label='Sign out phone-1']").await;
    b.wait_text("#devices", "the emptied list", |t| {
        t.contains("No devices yet")
    })
    .await;
    b.close().await;
    // The phone's session is over.
    let (status, body) = phone.call("auth.get_my_devices", json!({})).await;
    assert!(matches!(status, 401 | 403), "{status}: {body}");
    drop(server);
}

#[tokio::test]
async fn admin_sees_the_learning_insight_plots() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let admin = Api::login(&base, ADMIN).await;
    let insight = admin.ok("admin.get_learning_insight", json!({})).await;
    let due_today = insight["due_forecast"][0]["total"].as_u64().unwrap();
    assert!(due_today > 0, "{insight}");

    let b = Browser::start(&tools).await;
    b.sign_in(&base, ADMIN).await;
    b.click("#nav a[href='#/admin/insight']").await;
    // The forecast chart describes its bars: today's count is the API's.
    b.find("#insight figure svg").await;
    b.wait_js(
        &format!(
            "Array.from(document.querySelectorAll('#insight svg title')).some(t => t.textContent.includes(': {due_today},') || t.textContent.includes(': {due_today} ') || t.textContent.endsWith(': {due_today}'))"
        ),
        "the due forecast with today's count",
    )
    .await;
    let summary = b.text("#calibration-summary").await;
    assert!(summary.contains("sampled learners"), "{summary}");
    b.screenshot("admin-insight").await;
    b.close().await;
    drop(server);
}

#[tokio::test]
async fn the_operator_creates_and_suspends_an_institution_and_its_manager_runs_it() {
    let Some(tools) = tools() else { return };
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let base = server.base();
    let b = Browser::start(&tools).await;
    // The demo admin is a System Manager of the home institution: the
    // platform operator.
    b.sign_in(&base, ADMIN).await;
    b.click("#nav a[href='#/admin/institutions']").await;
    b.wait_text("#institutions table", "the institution list", |t| {
        t.contains("northside")
    })
    .await;
    b.fill("#inst-id", "eastside").await;
    b.fill("#inst-name", "Eastside School").await;
    b.fill("#inst-manager", "head@eastside.example").await;
    b.fill("#inst-manager-name", "Head of Eastside").await;
    b.fill("#inst-manager-password", "Eastside-Head-2026!")
        .await;
    b.click("#inst-create").await;
    b.wait_text("#inst-out", "the creation", |t| t.contains("Created"))
        .await;
    b.wait_text("#institutions table", "the new row", |t| {
        t.contains("Eastside School")
    })
    .await;
    b.screenshot("operator-institutions").await;
    // The new manager signs in with no institution to choose.
    let head = Api::login_with(
        &base,
        "head@eastside.example",
        json!({"pwd": "Eastside-Head-2026!"}),
    )
    .await;
    assert_eq!(
        head.ok("platform.get_my_institution", json!({})).await["institution"],
        "eastside"
    );
    // Suspend: the manager's session is refused, the row says so.
    b.click("button[aria-label='Suspend eastside']").await;
    b.wait_text("#institutions table", "the suspended row", |t| {
        t.contains("suspended")
    })
    .await;
    let (status, body) = head.call("platform.get_my_institution", json!({})).await;
    assert_eq!(status, 403, "{body}");
    b.click("button[aria-label='Resume eastside']").await;
    b.wait_text("#institutions table", "the resumed row", |t| {
        !t.contains("suspended")
    })
    .await;
    assert_eq!(
        head.call("platform.get_my_institution", json!({})).await.0,
        200
    );
    b.close().await;

    // Northside's manager: their institution page, no Institutions page.
    let b = Browser::start(&tools).await;
    b.sign_in(&base, "admin@northside.memora").await;
    let name = b
        .wait_text("#institution-name", "the institution name", |t| {
            !t.is_empty()
        })
        .await;
    assert!(name.contains("Northside"), "{name}");
    assert!(
        b.all("#nav a[href='#/admin/institutions']")
            .await
            .is_empty(),
        "only the operator manages institutions"
    );
    b.click("#nav a[href='#/admin/institution']").await;
    b.fill("#policy-max", "2").await;
    b.click("#policy-save").await;
    b.wait_text("#policy-source", "the institution's own policy", |t| {
        t.contains("own")
    })
    .await;
    b.fill("#adopt-subjects", "science").await;
    b.click("#adopt-preview").await;
    b.wait_text("#adopt-out", "the preview", |t| t.contains("Preview"))
        .await;
    b.screenshot("manager-institution").await;
    b.close().await;
    let manager = Api::login(&base, "admin@northside.memora").await;
    assert_eq!(
        manager.ok("admin.get_device_policy", json!({})).await["max_devices"],
        2
    );
    drop(server);
}
