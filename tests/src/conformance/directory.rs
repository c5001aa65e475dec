//! Conformance suite of [`InstitutionDirectory`]: the platform directory of
//! institutions and of the account names they hold (in-memory reference,
//! PostgreSQL).
//!
//! Each check takes a fresh directory holding only the home institution
//! (what `InMemoryDirectory::new()` and the migration
//! `20261231000000_institutions.sql` start with) and panics on a violation.
//! [`directory_conformance!`](crate::directory_conformance) generates one
//! `#[tokio::test]` per check from a harness expression. Times carry
//! microseconds (what PostgreSQL keeps).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use memora_core::domain::{
    DeviceLimitAction, DevicePolicy, HOME_INSTITUTION, Institution, InstitutionId,
    InstitutionStatus,
};
use memora_core::ids::UserId;
use memora_core::ports::{InstitutionDirectory, PortError};

/// Two handles on one directory: this process's and another process's
/// (for PostgreSQL, two stores with their own pools on the same schema).
#[derive(Clone)]
pub struct Directories {
    /// This process's handle.
    pub this: Arc<dyn InstitutionDirectory>,
    /// Another process's handle on the same directory.
    pub other: Arc<dyn InstitutionDirectory>,
}

// ───────────────────────── fixtures ─────────────────────────

/// Reference time of the checks: a whole second plus 654 321 µs.
pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0)
        .single()
        .expect("valid time")
        + Duration::microseconds(654_321)
}

/// An institution id.
pub fn inst(s: &str) -> InstitutionId {
    InstitutionId::new(s).expect("institution id")
}

/// An account name.
pub fn account(s: &str) -> UserId {
    UserId::new(s).expect("user id")
}

/// An active institution created `base + secs`.
pub fn institution(id: &str, name: &str, secs: i64) -> Institution {
    Institution {
        id: inst(id),
        name: name.to_owned(),
        status: InstitutionStatus::Active,
        created_at: base() + Duration::seconds(secs),
        device_policy: None,
    }
}

async fn ids(d: &dyn InstitutionDirectory) -> Vec<String> {
    d.list_institutions()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id.as_str().to_owned())
        .collect()
}

async fn owner(d: &dyn InstitutionDirectory, user: &str) -> Option<InstitutionId> {
    d.account_institution(&account(user)).await.expect("lookup")
}

async fn create(d: &dyn InstitutionDirectory, i: &Institution) {
    d.create_institution(i).await.expect("create institution");
}

// ───────────────────────── checks ─────────────────────────

/// A fresh directory lists exactly the home institution, active; the id
/// `default` is [`InstitutionId::home`].
pub async fn home_institution_is_listed(d: Directories) {
    let all = d.this.list_institutions().await.expect("list");
    assert_eq!(all.len(), 1, "{all:?}");
    let home = &all[0];
    assert_eq!(home.id, InstitutionId::home());
    assert_eq!(home.id.as_str(), HOME_INSTITUTION);
    assert_eq!(home.status, InstitutionStatus::Active);
    assert!(!home.name.trim().is_empty());
    // Another process sees the same.
    assert_eq!(d.other.list_institutions().await.expect("list"), all);
}

/// What is created is listed back exactly (name, status, created_at to the
/// microsecond), the home institution included, ordered by id in byte
/// order (`school-2` before `school1`, whatever the database's collation);
/// another process sees it at once.
pub async fn create_then_list_by_id(d: Directories) {
    let zeta = institution("zeta", "Zeta Academy", 1);
    let alpha = institution("alpha", "Ālpha — école n°1", 2);
    let dash = institution("school-2", "School two", 3);
    let digit = Institution {
        status: InstitutionStatus::Suspended,
        ..institution("school1", "School one", 4)
    };
    for i in [&zeta, &alpha, &dash, &digit] {
        create(d.this.as_ref(), i).await;
    }
    let all = d.this.list_institutions().await.expect("list");
    let got: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(got, ["alpha", "default", "school-2", "school1", "zeta"]);
    let without_home: Vec<Institution> = all.into_iter().filter(|i| !i.id.is_home()).collect();
    assert_eq!(without_home, vec![alpha, dash, digit, zeta]);
    assert_eq!(
        ids(d.other.as_ref()).await,
        ["alpha", "default", "school-2", "school1", "zeta"]
    );
}

/// Creating an id that exists is a `Conflict` and changes nothing, the
/// home institution's id included, and from another process too.
pub async fn duplicate_id_conflicts(d: Directories) {
    let north = institution("north", "North School", 0);
    create(d.this.as_ref(), &north).await;
    let again = Institution {
        name: "Impostor".to_owned(),
        status: InstitutionStatus::Suspended,
        ..institution("north", "", 5)
    };
    for handle in [&d.this, &d.other] {
        let r = handle.create_institution(&again).await;
        assert!(matches!(r, Err(PortError::Conflict(_))), "{r:?}");
    }
    let home = institution(HOME_INSTITUTION, "Second home", 0);
    let r = d.this.create_institution(&home).await;
    assert!(matches!(r, Err(PortError::Conflict(_))), "{r:?}");
    let all = d.this.list_institutions().await.expect("list");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all.iter().find(|i| i.id == north.id),
        Some(&north),
        "the first record is kept as it was"
    );
    let h = all.iter().find(|i| i.id.is_home()).expect("home");
    assert_ne!(h.name, "Second home");
    assert_eq!(h.status, InstitutionStatus::Active);
}

/// Setting the status of a known institution is `true` and is what the
/// list shows (setting the status it already has is `true` too); of an
/// unknown institution `false`, creating nothing.
pub async fn set_status_known_and_unknown(d: Directories) {
    let north = institution("north", "North School", 0);
    let south = institution("south", "South School", 1);
    create(d.this.as_ref(), &north).await;
    create(d.this.as_ref(), &south).await;
    let status_of = |all: &[Institution], id: &str| {
        all.iter()
            .find(|i| i.id.as_str() == id)
            .map(|i| i.status)
            .expect("listed")
    };

    assert!(
        d.this
            .set_institution_status(&north.id, InstitutionStatus::Suspended)
            .await
            .expect("set")
    );
    let all = d.other.list_institutions().await.expect("list");
    assert_eq!(status_of(&all, "north"), InstitutionStatus::Suspended);
    assert_eq!(status_of(&all, "south"), InstitutionStatus::Active);
    assert_eq!(status_of(&all, HOME_INSTITUTION), InstitutionStatus::Active);
    // Only the status changes.
    let n = all.iter().find(|i| i.id == north.id).expect("north");
    assert_eq!((&n.name, n.created_at), (&north.name, north.created_at));

    assert!(
        d.other
            .set_institution_status(&north.id, InstitutionStatus::Suspended)
            .await
            .expect("set again")
    );
    assert!(
        d.other
            .set_institution_status(&north.id, InstitutionStatus::Active)
            .await
            .expect("resume")
    );
    let all = d.this.list_institutions().await.expect("list");
    assert_eq!(status_of(&all, "north"), InstitutionStatus::Active);

    for status in [InstitutionStatus::Suspended, InstitutionStatus::Active] {
        assert!(
            !d.this
                .set_institution_status(&inst("ghost"), status)
                .await
                .expect("set unknown")
        );
    }
    assert_eq!(
        ids(d.this.as_ref()).await,
        [HOME_INSTITUTION, "north", "south"]
    );
}

/// A claimed name is looked up as its institution's, from either process;
/// a name never claimed is `None`.
pub async fn claim_then_lookup(d: Directories) {
    create(d.this.as_ref(), &institution("north", "North", 0)).await;
    assert_eq!(owner(d.this.as_ref(), "ana@north.test").await, None);
    d.this
        .claim_account(&account("ana@north.test"), &inst("north"))
        .await
        .expect("claim");
    d.this
        .claim_account(&account("root@home.test"), &InstitutionId::home())
        .await
        .expect("claim home");
    for handle in [&d.this, &d.other] {
        assert_eq!(
            owner(handle.as_ref(), "ana@north.test").await,
            Some(inst("north"))
        );
        assert_eq!(
            owner(handle.as_ref(), "root@home.test").await,
            Some(InstitutionId::home())
        );
        assert_eq!(owner(handle.as_ref(), "nobody@north.test").await, None);
    }
}

/// A name is held by one institution: claiming it again is a `Conflict`,
/// whoever claims it (the holder itself included, from either process),
/// and the holder keeps it.
pub async fn second_claim_conflicts(d: Directories) {
    create(d.this.as_ref(), &institution("north", "North", 0)).await;
    create(d.this.as_ref(), &institution("south", "South", 1)).await;
    let name = account("ana@x.test");
    d.this
        .claim_account(&name, &inst("north"))
        .await
        .expect("claim");
    for (handle, by) in [
        (&d.this, inst("north")),
        (&d.other, inst("north")),
        (&d.this, inst("south")),
        (&d.other, InstitutionId::home()),
    ] {
        let r = handle.claim_account(&name, &by).await;
        assert!(
            matches!(r, Err(PortError::Conflict(_))),
            "claim by {by}: {r:?}"
        );
    }
    assert_eq!(
        owner(d.this.as_ref(), "ana@x.test").await,
        Some(inst("north"))
    );
}

/// Releasing a name held by another institution, or a name nobody holds,
/// is a no-op (not an error): the holder keeps it.
pub async fn release_by_wrong_institution_is_a_no_op(d: Directories) {
    create(d.this.as_ref(), &institution("north", "North", 0)).await;
    create(d.this.as_ref(), &institution("south", "South", 1)).await;
    let name = account("ana@x.test");
    d.this
        .claim_account(&name, &inst("north"))
        .await
        .expect("claim");
    for by in [inst("south"), InstitutionId::home(), inst("ghost")] {
        d.other
            .release_account(&name, &by)
            .await
            .expect("release by another institution");
        assert_eq!(
            owner(d.this.as_ref(), "ana@x.test").await,
            Some(inst("north")),
            "after a release by {by}"
        );
    }
    d.this
        .release_account(&account("nobody@x.test"), &inst("north"))
        .await
        .expect("release of an unheld name");
    assert_eq!(owner(d.this.as_ref(), "nobody@x.test").await, None);
    let r = d.this.claim_account(&name, &inst("south")).await;
    assert!(matches!(r, Err(PortError::Conflict(_))), "{r:?}");
}

/// The holder's release frees the name: it is no longer looked up, any
/// institution may claim it again, and releasing twice is harmless. Other
/// names are untouched.
pub async fn release_by_owner_frees_the_name(d: Directories) {
    create(d.this.as_ref(), &institution("north", "North", 0)).await;
    create(d.this.as_ref(), &institution("south", "South", 1)).await;
    let name = account("ana@x.test");
    let kept = account("bob@x.test");
    d.this
        .claim_account(&name, &inst("north"))
        .await
        .expect("claim");
    d.this
        .claim_account(&kept, &inst("north"))
        .await
        .expect("claim");
    d.other
        .release_account(&name, &inst("north"))
        .await
        .expect("release");
    assert_eq!(owner(d.this.as_ref(), "ana@x.test").await, None);
    assert_eq!(
        owner(d.this.as_ref(), "bob@x.test").await,
        Some(inst("north"))
    );
    d.this
        .release_account(&name, &inst("north"))
        .await
        .expect("release twice");
    d.this
        .claim_account(&name, &inst("south"))
        .await
        .expect("claim the freed name");
    assert_eq!(
        owner(d.other.as_ref(), "ana@x.test").await,
        Some(inst("south"))
    );
    // The old holder's release no longer touches it.
    d.this
        .release_account(&name, &inst("north"))
        .await
        .expect("stale release");
    assert_eq!(
        owner(d.this.as_ref(), "ana@x.test").await,
        Some(inst("south"))
    );
}

/// Concurrent claims of one name by different institutions, through both
/// processes: exactly one succeeds, every other is a `Conflict`, and the
/// name belongs to the winner.
pub async fn concurrent_claims_one_wins(d: Directories) {
    let contenders: Vec<InstitutionId> = (0..8).map(|i| inst(&format!("school{i}"))).collect();
    for (n, id) in contenders.iter().enumerate() {
        create(
            d.this.as_ref(),
            &institution(id.as_str(), "School", n as i64),
        )
        .await;
    }
    let name = account("contested@x.test");
    let mut tasks = Vec::new();
    for (n, id) in contenders.iter().enumerate() {
        let handle = if n % 2 == 0 {
            d.this.clone()
        } else {
            d.other.clone()
        };
        let (name, id) = (name.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            (id.clone(), handle.claim_account(&name, &id).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (id, r) = t.await.expect("join");
        match r {
            Ok(()) => winners.push(id),
            Err(PortError::Conflict(_)) => {}
            Err(e) => panic!("claim by {id}: unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins: {winners:?}");
    assert_eq!(
        owner(d.this.as_ref(), "contested@x.test").await,
        Some(winners[0].clone())
    );
}

/// An institution's device policy is stored, read back by every handle,
/// cleared with `None`; an unknown institution is `false` and creates
/// nothing.
pub async fn device_policy_set_and_cleared(d: Directories) {
    create(&*d.this, &institution("north", "North", 1)).await;
    let policy = DevicePolicy {
        max_devices: 3,
        on_limit: DeviceLimitAction::Refuse,
    };
    assert!(
        d.this
            .set_institution_device_policy(&inst("north"), Some(&policy))
            .await
            .expect("set")
    );
    let seen = |list: Vec<Institution>, id: &str| {
        list.into_iter()
            .find(|i| i.id.as_str() == id)
            .expect("listed")
            .device_policy
    };
    assert_eq!(
        seen(d.other.list_institutions().await.expect("list"), "north"),
        Some(policy.clone())
    );
    assert_eq!(
        seen(
            d.other.list_institutions().await.expect("list"),
            HOME_INSTITUTION
        ),
        None,
        "other institutions keep the server default"
    );
    assert!(
        d.other
            .set_institution_device_policy(&inst("north"), None)
            .await
            .expect("clear")
    );
    assert_eq!(
        seen(d.this.list_institutions().await.expect("list"), "north"),
        None
    );
    assert!(
        !d.this
            .set_institution_device_policy(&inst("nowhere"), Some(&policy))
            .await
            .expect("unknown")
    );
    assert_eq!(ids(&*d.this).await, vec!["default", "north"]);
}

/// Deleting (the roll-back of a failed creation) removes only that row;
/// an unknown id is `false`; the id can be created again.
pub async fn delete_removes_one_row(d: Directories) {
    create(&*d.this, &institution("north", "North", 1)).await;
    create(&*d.this, &institution("south", "South", 2)).await;
    assert!(
        d.other
            .delete_institution(&inst("north"))
            .await
            .expect("delete")
    );
    assert!(
        !d.this
            .delete_institution(&inst("north"))
            .await
            .expect("again")
    );
    assert_eq!(ids(&*d.this).await, vec!["default", "south"]);
    create(&*d.this, &institution("north", "North again", 3)).await;
    assert_eq!(ids(&*d.other).await, vec!["default", "north", "south"]);
}

/// Account names are one name whatever the case of their letters: a claim
/// of a case variant conflicts, a lookup finds the owner, a release by the
/// owner through a variant frees it.
pub async fn names_are_compared_without_case(d: Directories) {
    create(&*d.this, &institution("north", "North", 1)).await;
    d.this
        .claim_account(&account("Bob@X.org"), &inst("north"))
        .await
        .expect("claim");
    for variant in ["bob@x.org", "BOB@X.ORG"] {
        let r = d
            .other
            .claim_account(&account(variant), &inst("default"))
            .await;
        assert!(matches!(r, Err(PortError::Conflict(_))), "{variant}: {r:?}");
        assert_eq!(
            owner(&*d.other, variant).await,
            Some(inst("north")),
            "{variant}"
        );
    }
    d.this
        .release_account(&account("bob@x.org"), &inst("north"))
        .await
        .expect("release");
    assert_eq!(owner(&*d.this, "Bob@X.org").await, None);
    // Only ASCII letters are folded, the same way by every adapter (and a
    // name with others is found as written).
    d.this
        .claim_account(&account("Élodie@X.org"), &inst("north"))
        .await
        .expect("claim");
    assert_eq!(owner(&*d.other, "Élodie@X.org").await, Some(inst("north")));
    assert_eq!(owner(&*d.other, "Élodie@x.org").await, Some(inst("north")));
    assert_eq!(owner(&*d.other, "élodie@x.org").await, None);
}

/// Generates one `#[tokio::test]` per [`InstitutionDirectory`] check, in a
/// module `institution_directory`. `$setup` is an async expression yielding
/// `Option<H>` (None = skipped) where `H` has
/// `fn directories(&self) -> Directories` (a fresh directory holding only
/// the home institution) and `async fn teardown(self)`.
#[macro_export]
macro_rules! directory_conformance {
    ($setup:expr) => {
        $crate::directory_conformance!(@each $setup;
            home_institution_is_listed, create_then_list_by_id, duplicate_id_conflicts,
            set_status_known_and_unknown, claim_then_lookup, second_claim_conflicts,
            release_by_wrong_institution_is_a_no_op, release_by_owner_frees_the_name,
            concurrent_claims_one_wins, device_policy_set_and_cleared,
            delete_removes_one_row, names_are_compared_without_case);
    };
    (@each $setup:expr; $($name:ident),* $(,)?) => {
        mod institution_directory {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = $setup.await else { return };
                    let dirs = h.directories();
                    let run = tokio::spawn(async move {
                        $crate::conformance::directory::$name(dirs).await
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
