//! The platform of institutions ([`Platform`]) over the in-memory adapters:
//! who may operate it, what creating an institution checks before it writes,
//! prefixed credentials, platform-wide account names (and giving a name
//! back when the account cannot be stored), routing to open, suspended and
//! unknown institutions, and `refresh` following another process.
//!
//! Each institution is a fresh [`InMemoryBackend`] kept in a [`Storage`]
//! shared by the "processes" of a test, so a second [`Platform`] over the
//! same directory and storage opens the same data, as a second server over
//! the same database would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::*;
use memora_core::error::PortResult;
use memora_core::ids::UserId;
use memora_core::memory::{InMemoryBackend, InMemoryDirectory};
use memora_core::ports::{ApiKeyRecord, AuthStore, InstitutionDirectory, PortError};
use memora_core::services::Config;
use memora_core::services::platform::{NewManager, Platform, TenantFactory, TenantScope};
use memora_core::{CoreError, CoreResult, Memora};

const PWD: &str = "Platform-Suite-Pass-1";
const OPERATOR: &str = "operator@home.test";
const NORTH_MANAGER: &str = "manager@north.test";
const SOUTH_MANAGER: &str = "manager@south.test";

fn inst(s: &str) -> InstitutionId {
    InstitutionId::new(s).unwrap()
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn home() -> InstitutionId {
    InstitutionId::home()
}

fn manager(name: &str) -> NewManager {
    NewManager {
        user: user(name),
        full_name: "First Manager".into(),
        password: PWD.into(),
    }
}

// ───────────────────────────── the harness ─────────────────────────────

/// The data of every institution but the home one: opening an institution
/// reuses its backend (a schema that exists) or creates a fresh one.
#[derive(Default)]
struct Storage {
    backends: Mutex<HashMap<InstitutionId, InMemoryBackend>>,
}

impl Storage {
    fn backend(&self, id: &InstitutionId) -> Option<InMemoryBackend> {
        self.backends.lock().unwrap().get(id).cloned()
    }
    fn ids(&self) -> Vec<InstitutionId> {
        let mut v: Vec<_> = self.backends.lock().unwrap().keys().cloned().collect();
        v.sort();
        v
    }
}

/// One process's [`TenantFactory`]: counts its opens, and can be told to
/// fail the next ones (storage down).
struct MemTenants {
    storage: Arc<Storage>,
    opened: AtomicUsize,
    fail_next: AtomicUsize,
}

#[async_trait]
impl TenantFactory for MemTenants {
    async fn open(&self, inst: &Institution, scope: TenantScope) -> CoreResult<Arc<Memora>> {
        assert_eq!(scope.institution, inst.id, "scoped to its own institution");
        assert!(
            scope.directory.is_some(),
            "scoped to the platform directory"
        );
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CoreError::Unavailable("storage down".into()));
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        // Not `or_default()`: a default `InMemoryBackend` is switched off
        // (fault injection); `new()` is the working one.
        #[allow(clippy::unwrap_or_default)]
        let backend = self
            .storage
            .backends
            .lock()
            .unwrap()
            .entry(inst.id.clone())
            .or_insert_with(InMemoryBackend::new)
            .clone();
        Ok(Arc::new(Memora::in_institution(
            backend.ports(),
            Config::default(),
            scope,
        )))
    }
}

/// What every process of a test shares: the directory, the home
/// institution's backend and the other institutions' storage.
struct World {
    directory: InMemoryDirectory,
    home: InMemoryBackend,
    storage: Arc<Storage>,
}

/// One server process.
struct Process {
    platform: Platform,
    tenants: Arc<MemTenants>,
}

impl World {
    /// A platform with its operator (a System Manager of the home
    /// institution, password [`PWD`]).
    async fn new() -> (World, Process) {
        let world = World {
            directory: InMemoryDirectory::new(),
            home: InMemoryBackend::new(),
            storage: Arc::default(),
        };
        let p = world.process();
        p.platform
            .home()
            .auth()
            .create_user(
                &Actor::system(),
                &user(OPERATOR),
                "Platform Operator",
                vec![Role::SystemManager],
                Some(PWD),
            )
            .await
            .unwrap();
        (world, p)
    }

    /// Another process over the same directory and data.
    fn process(&self) -> Process {
        let directory: Arc<dyn InstitutionDirectory> = Arc::new(self.directory.clone());
        let home = Arc::new(Memora::in_institution(
            self.home.ports(),
            Config::default(),
            TenantScope {
                institution: home(),
                directory: Some(Arc::clone(&directory)),
            },
        ));
        let tenants = Arc::new(MemTenants {
            storage: Arc::clone(&self.storage),
            opened: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        });
        Process {
            platform: Platform::new(home, directory, tenants.clone()),
            tenants,
        }
    }

    async fn list(&self) -> Vec<Institution> {
        self.directory.list_institutions().await.unwrap()
    }

    async fn owner(&self, name: &str) -> Option<InstitutionId> {
        self.directory
            .account_institution(&user(name))
            .await
            .unwrap()
    }
}

fn operator() -> Actor {
    Actor::admin(user(OPERATOR))
}

impl Process {
    /// Creates `id` as the operator, its manager `manager_name`.
    async fn create(&self, id: &str, manager_name: &str) -> Institution {
        self.platform
            .create_institution(
                &operator(),
                &home(),
                inst(id),
                &format!("School {id}"),
                manager(manager_name),
            )
            .await
            .unwrap()
    }

    fn app(&self, id: &str) -> Arc<Memora> {
        self.platform.tenant(&inst(id)).unwrap()
    }
}

fn is_forbidden<T>(r: CoreResult<T>) -> bool {
    matches!(r, Err(CoreError::Forbidden(_)))
}

// ───────────────────────────── the operator ─────────────────────────────

/// Only a System Manager calling from the home institution may create,
/// list, suspend or resume institutions: a System Manager of another
/// institution and a home student are refused, and their refused calls
/// change nothing.
#[tokio::test]
async fn only_the_home_operator_manages_institutions() {
    let (world, p) = World::new().await;
    let north = p.create("north", NORTH_MANAGER).await;
    p.platform
        .home()
        .auth()
        .create_user(
            &Actor::system(),
            &user("student@home.test"),
            "Home Student",
            vec![Role::Student],
            None,
        )
        .await
        .unwrap();
    let before = world.list().await;

    let callers = [
        // A System Manager of another institution.
        (Actor::admin(user(NORTH_MANAGER)), inst("north")),
        // The operator's own account, but reached through another
        // institution: the role alone is not enough.
        (operator(), inst("north")),
        // A student of the home institution.
        (Actor::student(user("student@home.test")), home()),
    ];
    for (caller, from) in &callers {
        let created = p
            .platform
            .create_institution(
                caller,
                from,
                inst("rogue"),
                "Rogue School",
                manager("rogue@x.test"),
            )
            .await;
        assert!(is_forbidden(created), "create by {caller:?} from {from}");
        assert!(
            is_forbidden(p.platform.list_institutions(caller, from).await),
            "list by {caller:?} from {from}"
        );
        for status in [InstitutionStatus::Suspended, InstitutionStatus::Active] {
            let r = p.platform.set_status(caller, from, &north.id, status).await;
            assert!(is_forbidden(r), "set_status by {caller:?} from {from}");
        }
    }
    assert_eq!(world.list().await, before, "refused calls change nothing");
    assert_eq!(world.owner("rogue@x.test").await, None);
    assert_eq!(world.storage.ids(), vec![inst("north")]);
    assert!(p.platform.tenant(&north.id).is_ok());

    // The operator may.
    let listed = p
        .platform
        .list_institutions(&operator(), &home())
        .await
        .unwrap();
    assert_eq!(listed, before);
    let suspended = p
        .platform
        .set_status(
            &operator(),
            &home(),
            &north.id,
            InstitutionStatus::Suspended,
        )
        .await
        .unwrap();
    assert_eq!(suspended.status, InstitutionStatus::Suspended);
}

/// The operator lists every institution, the home one included, by id;
/// creating and suspending are audited in the home institution.
#[tokio::test]
async fn operator_lists_by_id_and_is_audited() {
    let (_world, p) = World::new().await;
    p.create("zeta", "manager@zeta.test").await;
    p.create("alpha", "manager@alpha.test").await;
    p.platform
        .set_status(
            &operator(),
            &home(),
            &inst("zeta"),
            InstitutionStatus::Suspended,
        )
        .await
        .unwrap();
    let listed = p
        .platform
        .list_institutions(&operator(), &home())
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "default", "zeta"]);
    assert_eq!(listed[0].name, "School alpha");
    assert_eq!(listed[2].status, InstitutionStatus::Suspended);

    let audit = p.platform.home().ports().audit.recent(20).await.unwrap();
    let actions: Vec<(&str, Option<&UserId>)> = audit
        .iter()
        .filter(|e| e.action.starts_with("institution."))
        .map(|e| (e.action.as_str(), e.actor.as_ref()))
        .collect();
    let op = user(OPERATOR);
    assert_eq!(
        actions,
        [
            ("institution.status", Some(&op)),
            ("institution.create", Some(&op)),
            ("institution.create", Some(&op)),
        ]
    );
}

// ───────────────────────── creating an institution ─────────────────────────

/// Every refusal of `create_institution` comes before anything is written:
/// no institution in the directory, no storage opened, no account name
/// claimed, no tenant served. The refused names and ids stay usable.
#[tokio::test]
async fn create_validates_everything_before_writing() {
    let (world, p) = World::new().await;
    let north = p.create("north", NORTH_MANAGER).await;
    let long = "x".repeat(141);

    struct Case {
        what: &'static str,
        id: &'static str,
        name: String,
        manager: NewManager,
        conflict: bool,
    }
    let case = |what, id, name: &str, m: NewManager, conflict| Case {
        what,
        id,
        name: name.to_owned(),
        manager: m,
        conflict,
    };
    let with = |f: &dyn Fn(&mut NewManager)| {
        let mut m = manager("new@east.test");
        f(&mut m);
        m
    };
    let cases = [
        case(
            "short password",
            "east",
            "East",
            with(&|m| m.password = "Sh0rt!".into()),
            false,
        ),
        case(
            "password of one character",
            "east",
            "East",
            with(&|m| m.password = "aaaaaaaaaaaaaaaa".into()),
            false,
        ),
        case(
            "password made of the manager's name",
            "east",
            "East",
            with(&|m| m.password = "new@east.test!".into()),
            false,
        ),
        case(
            "blank password",
            "east",
            "East",
            with(&|m| m.password = "          ".into()),
            false,
        ),
        case("empty name", "east", "   ", manager("new@east.test"), false),
        case(
            "control character in the name",
            "east",
            "East\u{7}",
            manager("new@east.test"),
            false,
        ),
        case(
            "name too long",
            "east",
            &long,
            manager("new@east.test"),
            false,
        ),
        case(
            "empty manager full name",
            "east",
            "East",
            with(&|m| m.full_name = "  ".into()),
            false,
        ),
        case(
            "manager full name too long",
            "east",
            "East",
            with(&|m| m.full_name = long.clone()),
            false,
        ),
        case(
            "control character in the manager full name",
            "east",
            "East",
            with(&|m| m.full_name = "New\u{1b}Manager".into()),
            false,
        ),
        case(
            "the system caller's reserved id as manager",
            "east",
            "East",
            with(&|m| m.user = UserId::system()),
            false,
        ),
        case(
            "manager name held by the home institution",
            "east",
            "East",
            manager(OPERATOR),
            true,
        ),
        case(
            "manager name held by another institution",
            "east",
            "East",
            manager(NORTH_MANAGER),
            true,
        ),
        case(
            "the home institution's id",
            "default",
            "Home again",
            manager("new@east.test"),
            true,
        ),
        case(
            "an id that exists",
            "north",
            "North again",
            manager("new@east.test"),
            true,
        ),
    ];

    let before = world.list().await;
    for c in cases {
        let owner_before = world.owner(c.manager.user.as_str()).await;
        let r = p
            .platform
            .create_institution(&operator(), &home(), inst(c.id), &c.name, c.manager.clone())
            .await;
        match (&r, c.conflict) {
            (Err(CoreError::Conflict(_)), true) | (Err(CoreError::Invalid(_)), false) => {}
            _ => panic!("{}: {r:?}", c.what),
        }
        assert_eq!(world.list().await, before, "{}: directory", c.what);
        assert_eq!(
            world.owner(c.manager.user.as_str()).await,
            owner_before,
            "{}: account names",
            c.what
        );
        assert_eq!(world.storage.ids(), vec![inst("north")], "{}", c.what);
        assert_eq!(p.tenants.opened.load(Ordering::SeqCst), 1, "{}", c.what);
        if c.id == "east" {
            assert_eq!(
                p.platform.tenant(&inst("east")).err(),
                Some(CoreError::Unauthenticated),
                "{}",
                c.what
            );
        }
    }
    // North is as it was, and its manager still its only account.
    assert_eq!(
        world.list().await.into_iter().find(|i| i.id == north.id),
        Some(north)
    );
    assert_eq!(world.owner(NORTH_MANAGER).await, Some(inst("north")));

    // Nothing was left half-done: the id and the manager name are free.
    p.create("east", "new@east.test").await;
    assert_eq!(world.owner("new@east.test").await, Some(inst("east")));
}

/// The new institution's manager logs in there (not at home) with a
/// session id carrying the institution's prefix, and the API keys it
/// creates carry it too; the home institution's credentials carry none.
#[tokio::test]
async fn the_manager_gets_credentials_of_the_new_institution() {
    let (world, p) = World::new().await;
    let created = p.create("north", NORTH_MANAGER).await;
    assert_eq!(created.status, InstitutionStatus::Active);
    assert_eq!(created.name, "School north");
    assert_eq!(world.owner(NORTH_MANAGER).await, Some(inst("north")));
    let north = p.app("north");
    assert_eq!(north.institution(), &inst("north"));

    let login = north.auth().login(NORTH_MANAGER, PWD, None).await.unwrap();
    assert!(login.sid.starts_with("north~"), "{}", login.sid);
    assert_eq!(
        InstitutionId::of_credential(&login.sid),
        Some(inst("north"))
    );
    let actor = north.auth().authenticate_session(&login.sid).await.unwrap();
    assert_eq!(actor.user, user(NORTH_MANAGER));
    assert!(actor.roles.contains(&Role::SystemManager));
    assert_eq!(login.user.full_name, "First Manager");

    // The account lives in the new institution only.
    assert_eq!(
        p.platform
            .home()
            .auth()
            .login(NORTH_MANAGER, PWD, None)
            .await
            .err(),
        Some(CoreError::Unauthenticated)
    );
    assert_eq!(
        p.platform
            .home()
            .auth()
            .get_user(&user(NORTH_MANAGER))
            .await
            .unwrap(),
        None
    );

    let key = north
        .auth()
        .create_api_key(&actor, &user(NORTH_MANAGER))
        .await
        .unwrap();
    assert!(key.key.starts_with("north~"), "{}", key.key);
    assert_eq!(InstitutionId::of_credential(&key.key), Some(inst("north")));
    let by_key = north
        .auth()
        .authenticate_api_key(&key.key, &key.secret)
        .await
        .unwrap();
    assert_eq!(by_key.user, user(NORTH_MANAGER));

    // Home credentials carry no prefix.
    let home_app = p.platform.home();
    let home_login = home_app.auth().login(OPERATOR, PWD, None).await.unwrap();
    assert!(!home_login.sid.contains('~'), "{}", home_login.sid);
    assert_eq!(InstitutionId::of_credential(&home_login.sid), Some(home()));
    let home_key = home_app
        .auth()
        .create_api_key(&operator(), &user(OPERATOR))
        .await
        .unwrap();
    assert!(!home_key.key.contains('~'), "{}", home_key.key);
}

// ───────────────────────── account names ─────────────────────────

/// A name held by institution B cannot be created in A (nor at home): a
/// `Conflict`, and B's account, its claim and its login are untouched.
#[tokio::test]
async fn account_names_are_unique_across_institutions() {
    let (world, p) = World::new().await;
    p.create("north", NORTH_MANAGER).await;
    p.create("south", SOUTH_MANAGER).await;
    let (north, south) = (p.app("north"), p.app("south"));
    let kim = user("kim@x.test");
    north
        .auth()
        .create_user(
            &Actor::admin(user(NORTH_MANAGER)),
            &kim,
            "Kim North",
            vec![Role::Student],
            Some(PWD),
        )
        .await
        .unwrap();
    let kept = north.auth().get_user(&kim).await.unwrap().unwrap();

    for (app, by) in [(&south, SOUTH_MANAGER), (p.platform.home(), OPERATOR)] {
        let r = app
            .auth()
            .create_user(
                &Actor::admin(user(by)),
                &kim,
                "Kim Impostor",
                vec![Role::SystemManager],
                Some("Another-Pass-99"),
            )
            .await;
        assert!(matches!(r, Err(CoreError::Conflict(_))), "by {by}: {r:?}");
        assert_eq!(app.auth().get_user(&kim).await.unwrap(), None);
    }
    // Nor may anyone take another institution's manager name.
    let r = south
        .auth()
        .create_user(
            &Actor::admin(user(SOUTH_MANAGER)),
            &user(NORTH_MANAGER),
            "Impostor",
            vec![],
            None,
        )
        .await;
    assert!(matches!(r, Err(CoreError::Conflict(_))), "{r:?}");

    assert_eq!(world.owner("kim@x.test").await, Some(inst("north")));
    assert_eq!(world.owner(NORTH_MANAGER).await, Some(inst("north")));
    assert_eq!(north.auth().get_user(&kim).await.unwrap(), Some(kept));
    let login = north.auth().login("kim@x.test", PWD, None).await.unwrap();
    assert_eq!(login.user.full_name, "Kim North");
    assert_eq!(
        south
            .auth()
            .login("kim@x.test", "Another-Pass-99", None)
            .await
            .err(),
        Some(CoreError::Unauthenticated)
    );
}

/// An [`AuthStore`] whose `create_user` fails while `down` is set
/// (everything else goes to the backend).
struct FlakyUsers {
    inner: InMemoryBackend,
    down: AtomicBool,
}

#[async_trait]
impl AuthStore for FlakyUsers {
    async fn get_user(&self, id: &UserId) -> PortResult<Option<User>> {
        self.inner.get_user(id).await
    }
    async fn list_users(&self) -> PortResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn user_ids_after(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> PortResult<Vec<UserId>> {
        self.inner.user_ids_after(after, limit).await
    }
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> PortResult<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("users table unreachable".into()));
        }
        self.inner.create_user(user, password_hash).await
    }
    async fn password_hash(&self, id: &UserId) -> PortResult<Option<String>> {
        self.inner.password_hash(id).await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> PortResult<()> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn create_login_session(
        &self,
        sid_hash: &str,
        user: &UserId,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        self.inner
            .create_login_session(sid_hash, user, expires_at)
            .await
    }
    async fn get_login_session(
        &self,
        sid_hash: &str,
    ) -> PortResult<Option<(UserId, DateTime<Utc>)>> {
        self.inner.get_login_session(sid_hash).await
    }
    async fn delete_login_session(&self, sid_hash: &str) -> PortResult<()> {
        self.inner.delete_login_session(sid_hash).await
    }
    async fn create_api_key(&self, record: &ApiKeyRecord) -> PortResult<()> {
        self.inner.create_api_key(record).await
    }
    async fn get_api_key(&self, key: &str) -> PortResult<Option<ApiKeyRecord>> {
        self.inner.get_api_key(key).await
    }
}

/// When the account cannot be stored after its name was claimed, the claim
/// is given back: the name is free again (a retry succeeds), and a name
/// another institution holds is never given up by the failed attempt.
#[tokio::test]
async fn a_failed_store_insert_releases_the_claim() {
    let (world, p) = World::new().await;
    p.create("north", NORTH_MANAGER).await;
    let directory: Arc<dyn InstitutionDirectory> = Arc::new(world.directory.clone());
    let east = inst("east");

    // The store is down: the insert fails after the claim.
    let backend = InMemoryBackend::new();
    let users = Arc::new(FlakyUsers {
        inner: backend.clone(),
        down: AtomicBool::new(true),
    });
    let mut ports = backend.ports();
    ports.auth = users.clone();
    let app = Memora::in_institution(
        ports,
        Config::default(),
        TenantScope {
            institution: east.clone(),
            directory: Some(directory),
        },
    );
    let ana = user("ana@east.test");
    let create = |id: UserId| {
        let app = &app;
        async move {
            app.auth()
                .create_user(&Actor::system(), &id, "Ana", vec![Role::Student], Some(PWD))
                .await
        }
    };
    let r = create(ana.clone()).await;
    assert!(matches!(r, Err(CoreError::Unavailable(_))), "{r:?}");
    assert_eq!(world.owner("ana@east.test").await, None, "claim given back");
    assert_eq!(backend.get_user(&ana).await.unwrap(), None);

    // A name held elsewhere is refused before the store is tried, and the
    // holder keeps it.
    let r = create(user(NORTH_MANAGER)).await;
    assert!(matches!(r, Err(CoreError::Conflict(_))), "{r:?}");
    assert_eq!(world.owner(NORTH_MANAGER).await, Some(inst("north")));

    // The store is back: the same name can be created.
    users.down.store(false, Ordering::SeqCst);
    create(ana.clone()).await.unwrap();
    assert_eq!(world.owner("ana@east.test").await, Some(east.clone()));
    assert!(backend.get_user(&ana).await.unwrap().is_some());
}

/// The store refuses a duplicate the directory did not know about (an
/// account stored without a claim, as by an installation that predates
/// the directory): the claim just made is given back.
#[tokio::test]
async fn a_refused_duplicate_insert_releases_the_claim() {
    let (world, p) = World::new().await;
    p.create("north", NORTH_MANAGER).await;
    let north_data = world.storage.backend(&inst("north")).unwrap();
    let legacy = User {
        id: user("legacy@north.test"),
        full_name: "Legacy Account".into(),
        roles: vec![Role::Student],
        enabled: true,
    };
    north_data.create_user(&legacy, None).await.unwrap();
    assert_eq!(world.owner("legacy@north.test").await, None);

    let r = p
        .app("north")
        .auth()
        .create_user(
            &Actor::admin(user(NORTH_MANAGER)),
            &legacy.id,
            "Someone Else",
            vec![Role::SystemManager],
            Some(PWD),
        )
        .await;
    assert!(matches!(r, Err(CoreError::Conflict(_))), "{r:?}");
    assert_eq!(
        world.owner("legacy@north.test").await,
        None,
        "claim given back"
    );
    assert_eq!(
        north_data.get_user(&legacy.id).await.unwrap(),
        Some(legacy),
        "the stored account is untouched"
    );
}

// ───────────────────────── routing ─────────────────────────

/// `tenant`: the home institution always; an open, active institution; a
/// suspended one is `Forbidden` (while `tenant_even_if_suspended` still
/// returns it); an unknown one is `Unauthenticated`. The home institution
/// cannot be suspended; an unknown one is not found.
#[tokio::test]
async fn tenant_routes_active_suspended_and_unknown_institutions() {
    let (world, p) = World::new().await;
    p.create("north", NORTH_MANAGER).await;
    let north = inst("north");
    let ghost = inst("ghost");
    let app = p.platform.tenant(&north).unwrap();
    assert!(Arc::ptr_eq(
        &p.platform.tenant(&home()).unwrap(),
        p.platform.home()
    ));

    let s = p
        .platform
        .set_status(&operator(), &home(), &north, InstitutionStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(s.status, InstitutionStatus::Suspended);
    assert!(is_forbidden(p.platform.tenant(&north)));
    let still = p.platform.tenant_even_if_suspended(&north).unwrap();
    assert!(Arc::ptr_eq(&still, &app), "the same, open application");
    assert_eq!(
        world
            .list()
            .await
            .into_iter()
            .find(|i| i.id == north)
            .map(|i| i.status),
        Some(InstitutionStatus::Suspended)
    );

    assert_eq!(
        p.platform.tenant(&ghost).err(),
        Some(CoreError::Unauthenticated)
    );
    assert!(p.platform.tenant_even_if_suspended(&ghost).is_none());
    assert!(Arc::ptr_eq(
        &p.platform.tenant_even_if_suspended(&home()).unwrap(),
        p.platform.home()
    ));

    let r = p
        .platform
        .set_status(&operator(), &home(), &home(), InstitutionStatus::Suspended)
        .await;
    assert!(matches!(r, Err(CoreError::InvalidState(_))), "{r:?}");
    assert!(p.platform.tenant(&home()).is_ok());
    let r = p
        .platform
        .set_status(&operator(), &home(), &ghost, InstitutionStatus::Active)
        .await;
    assert!(matches!(r, Err(CoreError::NotFound(_))), "{r:?}");
    assert_eq!(world.list().await.len(), 2, "no ghost was created");

    p.platform
        .set_status(&operator(), &home(), &north, InstitutionStatus::Active)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&p.platform.tenant(&north).unwrap(), &app));
}

/// `refresh` opens the institutions another process created, once, and
/// applies the status changes it made (to institutions already open and to
/// ones opened suspended); an institution that fails to open is reported
/// and opened by the next refresh.
#[tokio::test]
async fn refresh_follows_another_process() {
    let (world, p1) = World::new().await;
    let p2 = world.process();
    let north = inst("north");
    p1.create("north", NORTH_MANAGER).await;

    // p2 does not serve it before it refreshes.
    assert_eq!(
        p2.platform.tenant(&north).err(),
        Some(CoreError::Unauthenticated)
    );
    let out = p2.platform.refresh().await.unwrap();
    assert_eq!(out.opened, vec![north.clone()]);
    assert!(out.failed.is_empty());
    // The same data: the manager created through p1 logs in through p2.
    let login = p2
        .platform
        .tenant(&north)
        .unwrap()
        .auth()
        .login(NORTH_MANAGER, PWD, None)
        .await
        .unwrap();
    assert!(login.sid.starts_with("north~"));
    // Opened once per process.
    assert!(p2.platform.refresh().await.unwrap().opened.is_empty());
    assert!(p1.platform.refresh().await.unwrap().opened.is_empty());
    assert_eq!(p1.tenants.opened.load(Ordering::SeqCst), 1);
    assert_eq!(p2.tenants.opened.load(Ordering::SeqCst), 1);

    // p1 suspends: at once in p1, in p2 after its refresh.
    p1.platform
        .set_status(&operator(), &home(), &north, InstitutionStatus::Suspended)
        .await
        .unwrap();
    assert!(is_forbidden(p1.platform.tenant(&north)));
    assert!(p2.platform.tenant(&north).is_ok());
    assert!(p2.platform.refresh().await.unwrap().opened.is_empty());
    assert!(is_forbidden(p2.platform.tenant(&north)));
    assert!(p2.platform.tenant_even_if_suspended(&north).is_some());

    // p1 resumes.
    p1.platform
        .set_status(&operator(), &home(), &north, InstitutionStatus::Active)
        .await
        .unwrap();
    p2.platform.refresh().await.unwrap();
    assert!(p2.platform.tenant(&north).is_ok());

    // An institution suspended before p2 ever opened it is opened
    // suspended.
    p1.create("west", "manager@west.test").await;
    p1.platform
        .set_status(
            &operator(),
            &home(),
            &inst("west"),
            InstitutionStatus::Suspended,
        )
        .await
        .unwrap();
    // And one whose opening fails in p2 is reported, then retried.
    p1.create("south", SOUTH_MANAGER).await;
    p2.tenants.fail_next.store(1, Ordering::SeqCst);
    let out = p2.platform.refresh().await.unwrap();
    // Institutions are listed by id: south fails, west opens.
    assert_eq!(out.opened, vec![inst("west")]);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].0, inst("south"));
    assert!(matches!(out.failed[0].1, CoreError::Unavailable(_)));
    assert!(is_forbidden(p2.platform.tenant(&inst("west"))));
    assert!(
        p2.platform
            .tenant_even_if_suspended(&inst("west"))
            .is_some()
    );
    assert_eq!(
        p2.platform.tenant(&inst("south")).err(),
        Some(CoreError::Unauthenticated)
    );
    let out = p2.platform.refresh().await.unwrap();
    assert_eq!(out.opened, vec![inst("south")]);
    assert!(out.failed.is_empty());
    assert!(p2.platform.tenant(&inst("south")).is_ok());
    let ids: Vec<InstitutionId> = p2
        .platform
        .open_tenants()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![home(), north, inst("south"), inst("west")]);
}

/// `institution_of_account`: a name's institution from the directory; the
/// home institution for names the directory does not hold (accounts that
/// predate institutions) and for text that is no account name.
#[tokio::test]
async fn institution_of_account_defaults_to_home() {
    let (_world, p) = World::new().await;
    p.create("north", NORTH_MANAGER).await;
    let of = |name: String| {
        let platform = &p.platform;
        async move { platform.institution_of_account(&name).await.unwrap() }
    };
    assert_eq!(of(NORTH_MANAGER.into()).await, inst("north"));
    assert_eq!(of("  manager@north.test ".into()).await, inst("north"));
    assert_eq!(of(OPERATOR.into()).await, home());
    assert_eq!(of("nobody@x.test".into()).await, home());
    assert_eq!(of(String::new()).await, home());
    assert_eq!(of("   ".into()).await, home());
    assert_eq!(of("{bad}".into()).await, home());
    assert_eq!(of("y".repeat(200)).await, home());
}

#[tokio::test]
async fn the_number_of_institutions_is_bounded() {
    let world = World {
        directory: InMemoryDirectory::new(),
        home: InMemoryBackend::new(),
        storage: Arc::default(),
    };
    let directory: Arc<dyn InstitutionDirectory> = Arc::new(world.directory.clone());
    let home_app = Arc::new(Memora::in_institution(
        world.home.ports(),
        Config {
            max_institutions: 1,
            ..Config::default()
        },
        TenantScope {
            institution: home(),
            directory: Some(Arc::clone(&directory)),
        },
    ));
    let tenants = Arc::new(MemTenants {
        storage: Arc::clone(&world.storage),
        opened: AtomicUsize::new(0),
        fail_next: AtomicUsize::new(0),
    });
    let p = Process {
        platform: Platform::new(home_app, directory, tenants.clone()),
        tenants,
    };
    p.create("north", "head@north.test").await;
    let refused = p
        .platform
        .create_institution(
            &operator(),
            &home(),
            inst("south"),
            "South",
            manager("head@south.test"),
        )
        .await;
    assert!(
        matches!(refused, Err(CoreError::InvalidState(_))),
        "{refused:?}"
    );
    let ids: Vec<String> = world
        .list()
        .await
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(ids, ["default", "north"]);
    assert_eq!(
        world.owner("head@south.test").await,
        None,
        "nothing reserved"
    );
}

#[tokio::test]
async fn account_names_are_one_name_whatever_their_case() {
    let (world, p) = World::new().await;
    p.create("north", "Head@North.test").await;
    assert_eq!(world.owner("head@north.test").await, Some(inst("north")));
    let refused = p
        .app("north")
        .auth()
        .create_user(
            &Actor::system(),
            &user("HEAD@NORTH.TEST"),
            "Twin",
            vec![Role::Student],
            None,
        )
        .await;
    // Not in the same institution either.
    assert!(
        matches!(refused, Err(CoreError::Conflict(_))),
        "{refused:?}"
    );
    let south = p
        .platform
        .create_institution(
            &operator(),
            &home(),
            inst("south"),
            "South",
            manager("head@NORTH.test"),
        )
        .await;
    assert!(matches!(south, Err(CoreError::Conflict(_))), "{south:?}");
    let home_twin = p
        .platform
        .home()
        .auth()
        .create_user(
            &Actor::system(),
            &user("HEAD@north.TEST"),
            "Twin",
            vec![Role::Student],
            None,
        )
        .await;
    assert!(
        matches!(home_twin, Err(CoreError::Conflict(_))),
        "{home_twin:?}"
    );
}

#[tokio::test]
async fn a_suspension_is_applied_before_slow_opens() {
    let (world, p) = World::new().await;
    p.create("zeta", "head@zeta.test").await;
    // Another process creates `alpha`, which this process cannot open, and
    // suspends `zeta`: this process's refresh applies the suspension even
    // though opening `alpha` (sorted first) fails.
    let other = world.process();
    other.create("alpha", "head@alpha.test").await;
    other
        .platform
        .set_status(
            &operator(),
            &home(),
            &inst("zeta"),
            InstitutionStatus::Suspended,
        )
        .await
        .unwrap();
    p.tenants
        .fail_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let outcome = p.platform.refresh().await.unwrap();
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    assert!(is_forbidden(p.platform.tenant(&inst("zeta"))));
}

#[tokio::test]
async fn an_institution_gone_from_the_directory_stops_being_served() {
    let (world, p) = World::new().await;
    p.create("north", "head@north.test").await;
    let other = world.process();
    other.platform.refresh().await.unwrap();
    assert!(other.platform.tenant(&inst("north")).is_ok());
    // Another process undid the creation (a failed roll-back path).
    world
        .directory
        .delete_institution(&inst("north"))
        .await
        .unwrap();
    let outcome = other.platform.refresh().await.unwrap();
    assert_eq!(outcome.closed, vec![inst("north")], "{outcome:?}");
    assert!(matches!(
        other.platform.tenant(&inst("north")),
        Err(CoreError::Unauthenticated)
    ));
    assert_eq!(other.platform.open_tenants().len(), 1, "only home");
}
