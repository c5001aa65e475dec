//! Conformance suite of [`ServedLedger`]: the served-set ledger the core
//! binds answers to (in-memory reference, PostgreSQL, Redis, Redis Cluster).
//!
//! Each check takes a fresh, empty ledger and panics on a violation.
//! [`served_ledger_conformance!`](crate::served_ledger_conformance) generates
//! one `#[tokio::test]` per check from a harness expression. Times carry
//! microseconds (the precision the core truncates to and every adapter must
//! keep exactly); `served_at` is the compare-and-set token of `commit`.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use memora_core::ids::{JobId, ReviewId, SeasonId, UserId};
use memora_core::ports::{AnswerReceipt, ServedLedger, Serving, ServingClaim};

// ───────────────────────── fixtures ─────────────────────────

/// Reference time of the checks: a whole second plus 123 456 µs.
pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
        + Duration::microseconds(123_456)
}

/// `base + s` seconds.
pub fn at(s: i64) -> DateTime<Utc> {
    base() + Duration::seconds(s)
}

/// A user id.
pub fn user(s: &str) -> UserId {
    UserId::new(s).expect("user id")
}

/// `SEASON-<year>`.
pub fn season(year: u32) -> SeasonId {
    SeasonId::new(format!("SEASON-{year}")).expect("season id")
}

/// A learner day of March 2026.
pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("day")
}

/// Item keys as the core spells them.
pub fn items(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

/// A receipt for review id `rid` (job `job-<rid>`), answered at `at(secs)`.
pub fn receipt(rid: &str, xp: i64, secs: i64) -> AnswerReceipt {
    AnswerReceipt {
        review_id: ReviewId::new(rid).expect("review id"),
        job_id: JobId::new(format!("job-{rid}")).expect("job id"),
        xp,
        answered_at: at(secs),
    }
}

/// A claim on `item` served at `served_at`, answered with review `rid`.
pub fn claim(
    item: &str,
    served_at: DateTime<Utc>,
    rid: &str,
    xp_day: Option<NaiveDate>,
    prev_xp_day: Option<NaiveDate>,
) -> ServingClaim {
    ServingClaim {
        item: item.to_owned(),
        served_at,
        receipt: receipt(rid, 12, 30),
        xp_day,
        prev_xp_day,
    }
}

/// Served at `at(0)`, answerable for 10 minutes, kept for a day.
const ANSWERABLE: i64 = 600;
const RETAIN: i64 = 86_400;

/// Records `keys` for (`u`, `s`) served at `at(secs)` with the standard
/// windows.
pub async fn serve(l: &dyn ServedLedger, u: &UserId, s: &SeasonId, keys: &[&str], secs: i64) {
    l.record_served(
        u,
        s,
        &items(keys),
        at(secs),
        at(secs + ANSWERABLE),
        at(secs + RETAIN),
    )
    .await
    .expect("record_served");
}

/// The entry of one item at `at(secs)`.
pub async fn get(
    l: &dyn ServedLedger,
    u: &UserId,
    s: &SeasonId,
    key: &str,
    secs: i64,
) -> Option<Serving> {
    let mut v = l
        .lookup(u, s, &items(&[key]), at(secs))
        .await
        .expect("lookup");
    assert_eq!(v.len(), 1, "one answer per asked item");
    v.pop().flatten()
}

/// A fresh serving as recorded at `at(secs)`.
fn fresh(secs: i64) -> Serving {
    Serving {
        served_at: at(secs),
        answerable_until: at(secs + ANSWERABLE),
        retain_until: at(secs + RETAIN),
        answered: false,
        last_receipt: None,
        xp_day: None,
    }
}

// ───────────────────────── checks ─────────────────────────

/// What is recorded is read back exactly (microseconds included), in the
/// asked order, with `None` for items never served; duplicates in a call
/// are harmless.
pub async fn record_then_lookup(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:st-1", "l:lesson-1", "q:st-1"], 0).await;
    let got = l
        .lookup(
            &u,
            &s,
            &items(&["l:lesson-1", "q:unknown", "q:st-1", "l:lesson-1"]),
            at(1),
        )
        .await
        .expect("lookup");
    assert_eq!(
        got,
        vec![Some(fresh(0)), None, Some(fresh(0)), Some(fresh(0))]
    );
    // Item keys are opaque text: separators and non-ASCII round-trip.
    let odd = "q:stage|x:3 ü";
    serve(l.as_ref(), &u, &s, &[odd], 5).await;
    assert_eq!(get(l.as_ref(), &u, &s, odd, 6).await, Some(fresh(5)));
}

/// Unknown entries are `None`; an empty request gets an empty answer.
pub async fn unknown_is_none(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    assert_eq!(
        l.lookup(&u, &s, &items(&["q:a", "l:b"]), at(0))
            .await
            .expect("lookup"),
        vec![None, None]
    );
    assert!(
        l.lookup(&u, &s, &[], at(0))
            .await
            .expect("lookup")
            .is_empty()
    );
    l.record_served(&u, &s, &[], at(0), at(1), at(2))
        .await
        .expect("empty record");
    l.release(&u, &s, &[]).await.expect("empty release");
}

/// An entry is visible up to and including `retain_until`, gone after it.
pub async fn expires_after_retain_until(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a"], 0).await;
    let retain = at(RETAIN);
    let at_end = l
        .lookup(&u, &s, &items(&["q:a"]), retain)
        .await
        .expect("lookup");
    assert_eq!(at_end, vec![Some(fresh(0))], "retain_until is inclusive");
    let after = l
        .lookup(&u, &s, &items(&["q:a"]), retain + Duration::microseconds(1))
        .await
        .expect("lookup");
    assert_eq!(
        after,
        vec![None],
        "past retain_until the entry is forgotten"
    );
}

/// A commit marks every claimed entry answered with its receipt and
/// `xp_day`, once: the same claim again returns `false` and changes nothing.
pub async fn commit_succeeds_once(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a", "q:b"], 0).await;
    let claims = vec![
        claim("q:a", at(0), "r-a", Some(day(1)), None),
        claim("q:b", at(0), "r-b", None, None),
    ];
    assert!(l.commit(&u, &s, &claims).await.expect("commit"));
    let a = get(l.as_ref(), &u, &s, "q:a", 40).await.expect("entry");
    assert_eq!(
        a,
        Serving {
            answered: true,
            last_receipt: Some(receipt("r-a", 12, 30)),
            xp_day: Some(day(1)),
            ..fresh(0)
        }
    );
    let b = get(l.as_ref(), &u, &s, "q:b", 40).await.expect("entry");
    assert!(b.answered);
    assert_eq!(b.xp_day, None);
    assert_eq!(b.last_receipt, Some(receipt("r-b", 12, 30)));
    // Second submission of the same serving: refused, nothing changes.
    let again = vec![
        claim("q:a", at(0), "r-a2", Some(day(2)), Some(day(1))),
        claim("q:b", at(0), "r-b2", Some(day(2)), None),
    ];
    assert!(!l.commit(&u, &s, &again).await.expect("commit"));
    assert_eq!(get(l.as_ref(), &u, &s, "q:a", 41).await, Some(a));
    assert_eq!(get(l.as_ref(), &u, &s, "q:b", 41).await, Some(b));
}

/// One claim that does not match (stale `served_at`, unknown item, already
/// answered) fails the whole commit and marks nothing.
pub async fn commit_is_all_or_nothing(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a", "q:b", "q:c"], 0).await;
    let unanswered = |l: Arc<dyn ServedLedger>| async move {
        for k in ["q:a", "q:b"] {
            let e = get(l.as_ref(), &user("alice"), &season(2026), k, 1)
                .await
                .expect("entry");
            assert_eq!(e, fresh(0), "{k} untouched");
        }
    };
    let good = |k: &str| claim(k, at(0), &format!("r-{k}"), Some(day(1)), None);
    // Stale served_at (one microsecond off).
    let mut stale = good("q:c");
    stale.served_at = at(0) - Duration::microseconds(1);
    assert!(
        !l.commit(&u, &s, &[good("q:a"), good("q:b"), stale])
            .await
            .expect("commit")
    );
    unanswered(l.clone()).await;
    // Unknown item.
    assert!(
        !l.commit(&u, &s, &[good("q:a"), good("q:nope"), good("q:b")])
            .await
            .expect("commit")
    );
    unanswered(l.clone()).await;
    // One item already answered.
    assert!(l.commit(&u, &s, &[good("q:c")]).await.expect("commit"));
    assert!(
        !l.commit(&u, &s, &[good("q:a"), good("q:b"), good("q:c")])
            .await
            .expect("commit")
    );
    unanswered(l.clone()).await;
    // The two open ones still commit together.
    assert!(
        l.commit(&u, &s, &[good("q:b"), good("q:a")])
            .await
            .expect("commit")
    );
}

/// Re-serving opens the item again (`answered` reset, new `served_at` is
/// the token) but keeps `last_receipt` and `xp_day` while the old entry is
/// retained; an entry already past `retain_until` starts afresh.
pub async fn reserving_keeps_receipt_and_xp_day(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a", "q:b"], 0).await;
    let first = vec![
        claim("q:a", at(0), "r-a", Some(day(1)), None),
        claim("q:b", at(0), "r-b", Some(day(1)), None),
    ];
    assert!(l.commit(&u, &s, &first).await.expect("commit"));
    // Re-served an hour later (within retention).
    serve(l.as_ref(), &u, &s, &["q:a"], 3_600).await;
    let a = get(l.as_ref(), &u, &s, "q:a", 3_601).await.expect("entry");
    assert_eq!(
        a,
        Serving {
            last_receipt: Some(receipt("r-a", 12, 30)),
            xp_day: Some(day(1)),
            ..fresh(3_600)
        }
    );
    // The old token no longer commits; the new one does.
    let stale = claim("q:a", at(0), "r-a2", Some(day(2)), Some(day(1)));
    assert!(!l.commit(&u, &s, &[stale]).await.expect("commit"));
    let fresh_claim = claim("q:a", at(3_600), "r-a2", Some(day(2)), Some(day(1)));
    assert!(l.commit(&u, &s, &[fresh_claim]).await.expect("commit"));
    let a = get(l.as_ref(), &u, &s, "q:a", 3_602).await.expect("entry");
    assert!(a.answered);
    assert_eq!(a.last_receipt, Some(receipt("r-a2", 12, 30)));
    assert_eq!(a.xp_day, Some(day(2)));
    // q:b re-served after its retain_until: nothing is carried over.
    serve(l.as_ref(), &u, &s, &["q:b"], RETAIN + 1).await;
    assert_eq!(
        get(l.as_ref(), &u, &s, "q:b", RETAIN + 2).await,
        Some(fresh(RETAIN + 1))
    );
    // Re-served exactly at its retain_until: still carried over.
    serve(l.as_ref(), &u, &s, &["q:c"], 0).await;
    assert!(
        l.commit(&u, &s, &[claim("q:c", at(0), "r-c", Some(day(1)), None)])
            .await
            .expect("commit")
    );
    serve(l.as_ref(), &u, &s, &["q:c"], RETAIN).await;
    let c = get(l.as_ref(), &u, &s, "q:c", RETAIN + 1)
        .await
        .expect("entry");
    assert_eq!(c.last_receipt, Some(receipt("r-c", 12, 30)));
    assert_eq!(c.xp_day, Some(day(1)));
    assert!(!c.answered);
}

/// `release` undoes a commit only where the entry's receipt carries the
/// claim's review id: `answered` cleared, receipt cleared, `xp_day` back to
/// `prev_xp_day`; the serving can then be committed again.
pub async fn release_restores_matching_review_only(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a", "q:b"], 0).await;
    assert!(
        l.commit(
            &u,
            &s,
            &[
                claim("q:a", at(0), "r-a1", Some(day(1)), None),
                claim("q:b", at(0), "r-b1", Some(day(1)), None),
            ]
        )
        .await
        .expect("commit")
    );
    serve(l.as_ref(), &u, &s, &["q:a", "q:b"], 100).await;
    let second = vec![
        claim("q:a", at(100), "r-a2", Some(day(2)), Some(day(1))),
        claim("q:b", at(100), "r-b2", Some(day(2)), Some(day(1))),
    ];
    assert!(l.commit(&u, &s, &second).await.expect("commit"));
    let b_before = get(l.as_ref(), &u, &s, "q:b", 101).await.expect("entry");
    // A release whose review id is not the receipt's changes nothing.
    let foreign = vec![
        claim("q:a", at(100), "r-other", Some(day(2)), None),
        claim("q:b", at(100), "r-b1", Some(day(2)), None),
        claim("q:never", at(100), "r-a2", Some(day(2)), None),
    ];
    l.release(&u, &s, &foreign).await.expect("release");
    let a = get(l.as_ref(), &u, &s, "q:a", 101).await.expect("entry");
    assert!(a.answered);
    assert_eq!(a.last_receipt, Some(receipt("r-a2", 12, 30)));
    assert_eq!(
        get(l.as_ref(), &u, &s, "q:b", 101).await,
        Some(b_before.clone())
    );
    assert_eq!(get(l.as_ref(), &u, &s, "q:never", 101).await, None);
    // Releasing q:a's second commit restores it; q:b is left alone.
    l.release(&u, &s, &second[..1]).await.expect("release");
    assert_eq!(
        get(l.as_ref(), &u, &s, "q:a", 102).await,
        Some(Serving {
            xp_day: Some(day(1)),
            ..fresh(100)
        })
    );
    assert_eq!(get(l.as_ref(), &u, &s, "q:b", 102).await, Some(b_before));
    // The serving is open again.
    let retry = claim("q:a", at(100), "r-a3", Some(day(2)), Some(day(1)));
    assert!(l.commit(&u, &s, &[retry]).await.expect("commit"));
    // Releasing twice is harmless (the receipt is gone after the first).
    l.release(&u, &s, &second[1..]).await.expect("release");
    l.release(&u, &s, &second[1..]).await.expect("release");
    assert_eq!(
        get(l.as_ref(), &u, &s, "q:b", 103).await,
        Some(Serving {
            xp_day: Some(day(1)),
            ..fresh(100)
        })
    );
}

/// Entries of two users and two seasons never see each other.
pub async fn users_and_seasons_are_isolated(l: Arc<dyn ServedLedger>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let (s26, s27) = (season(2026), season(2027));
    serve(l.as_ref(), &alice, &s26, &["q:a"], 0).await;
    assert_eq!(get(l.as_ref(), &bob, &s26, "q:a", 1).await, None);
    assert_eq!(get(l.as_ref(), &alice, &s27, "q:a", 1).await, None);
    serve(l.as_ref(), &bob, &s26, &["q:a"], 10).await;
    serve(l.as_ref(), &alice, &s27, &["q:a"], 20).await;
    // A claim with alice's 2026 token fails for the others.
    let c = claim("q:a", at(0), "r-1", Some(day(1)), None);
    assert!(
        !l.commit(&bob, &s26, std::slice::from_ref(&c))
            .await
            .expect("commit")
    );
    assert!(
        !l.commit(&alice, &s27, std::slice::from_ref(&c))
            .await
            .expect("commit")
    );
    assert!(
        l.commit(&alice, &s26, std::slice::from_ref(&c))
            .await
            .expect("commit")
    );
    assert_eq!(
        get(l.as_ref(), &bob, &s26, "q:a", 30).await,
        Some(fresh(10))
    );
    assert_eq!(
        get(l.as_ref(), &alice, &s27, "q:a", 30).await,
        Some(fresh(20))
    );
    // Release and re-serve stay in their own (user, season) too.
    l.release(&bob, &s26, std::slice::from_ref(&c))
        .await
        .expect("release");
    serve(l.as_ref(), &alice, &s27, &["q:a"], 40).await;
    let a = get(l.as_ref(), &alice, &s26, "q:a", 50)
        .await
        .expect("entry");
    assert!(a.answered);
    assert_eq!(a.served_at, at(0));
    // Users whose ids differ only by a suffix or punctuation are distinct.
    let (x, y) = (user("carol"), user("carol:SEASON-2026"));
    serve(l.as_ref(), &x, &s26, &["q:z"], 60).await;
    assert_eq!(get(l.as_ref(), &y, &s26, "q:z", 61).await, None);
}

/// Twenty concurrent commits of the same serving: exactly one wins, and
/// its receipt is the one stored. Overlapping multi-item claims in
/// opposite orders never error (no deadlock surfaces) and at most one wins.
pub async fn concurrent_commits_one_wins(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:a"], 0).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let l = l.clone();
        let (u, s) = (u.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let c = claim("q:a", at(0), &format!("r-{i}"), Some(day(1)), None);
            (i, l.commit(&u, &s, &[c]).await.expect("commit"))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.expect("join");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one commit wins: {winners:?}");
    let e = get(l.as_ref(), &u, &s, "q:a", 1).await.expect("entry");
    assert_eq!(
        e.last_receipt.map(|r| r.review_id),
        Some(ReviewId::new(format!("r-{}", winners[0])).expect("rid"))
    );
    // Multi-item claims over the same items, in both orders.
    let keys = ["q:m1", "q:m2", "q:m3", "q:m4"];
    serve(l.as_ref(), &u, &s, &keys, 100).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let l = l.clone();
        let (u, s) = (u.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let mut order: Vec<&str> = keys.to_vec();
            if i % 2 == 1 {
                order.reverse();
            }
            let claims: Vec<ServingClaim> = order
                .iter()
                .map(|k| claim(k, at(100), &format!("r-{k}-{i}"), Some(day(1)), None))
                .collect();
            l.commit(&u, &s, &claims)
                .await
                .expect("commit (no deadlock error)")
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("join") {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one multi-item commit wins");
    let got = l
        .lookup(&u, &s, &items(&keys), at(101))
        .await
        .expect("lookup");
    let suffixes: Vec<String> = got
        .iter()
        .map(|e| {
            let e = e.as_ref().expect("entry");
            assert!(e.answered);
            let rid = e
                .last_receipt
                .as_ref()
                .expect("receipt")
                .review_id
                .to_string();
            rid.rsplit('-').next().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(
        suffixes.iter().all(|x| *x == suffixes[0]),
        "all items carry the winner's receipts: {suffixes:?}"
    );
}

/// Stores that do not expire keys by themselves: `purge_expired` deletes
/// exactly the entries past `retain_until` and reports how many; retained
/// entries are untouched; a purged serving can no longer be committed.
pub async fn purge_removes_expired(l: Arc<dyn ServedLedger>) {
    let (u, s) = (user("alice"), season(2026));
    serve(l.as_ref(), &u, &s, &["q:old1", "q:old2"], 0).await;
    serve(l.as_ref(), &user("bob"), &season(2027), &["q:old3"], 0).await;
    serve(l.as_ref(), &u, &s, &["q:new"], 1_000).await;
    assert_eq!(l.purge_expired(at(RETAIN)).await.expect("purge"), 0);
    let n = l.purge_expired(at(RETAIN + 1)).await.expect("purge");
    assert_eq!(n, 3);
    assert_eq!(l.purge_expired(at(RETAIN + 1)).await.expect("purge"), 0);
    assert_eq!(
        get(l.as_ref(), &u, &s, "q:new", 1_001).await,
        Some(fresh(1_000))
    );
    let c = claim("q:old1", at(0), "r-1", None, None);
    assert!(!l.commit(&u, &s, &[c]).await.expect("commit"));
    // Even looked up "in the past", purged entries are gone.
    assert_eq!(get(l.as_ref(), &u, &s, "q:old1", 1).await, None);
}

/// Generates one `#[tokio::test]` per [`ServedLedger`] check. `$setup` is an
/// async expression yielding `Option<H>` (None = skipped) where `H` has
/// `fn ledger(&self) -> Arc<dyn ServedLedger>` and `async fn teardown(self)`.
/// Add `, purging` for stores that delete expired entries themselves
/// (adds [`purge_removes_expired`]).
#[macro_export]
macro_rules! served_ledger_conformance {
    ($setup:expr) => {
        $crate::served_ledger_conformance!(@each $setup;
            record_then_lookup, unknown_is_none, expires_after_retain_until,
            commit_succeeds_once, commit_is_all_or_nothing,
            reserving_keeps_receipt_and_xp_day, release_restores_matching_review_only,
            users_and_seasons_are_isolated, concurrent_commits_one_wins);
    };
    ($setup:expr, purging) => {
        $crate::served_ledger_conformance!($setup);
        $crate::served_ledger_conformance!(@each $setup; purge_removes_expired);
    };
    (@each $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(h) = $setup.await else { return };
                let ledger = h.ledger();
                let run = tokio::spawn(async move {
                    $crate::conformance::served::$name(ledger).await
                })
                .await;
                h.teardown().await;
                if let Err(e) = run {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        )*
    };
}
