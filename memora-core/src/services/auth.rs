//! Authentication and accounts: password login with server-side sessions
//! (only a hash of the session id is stored), API keys (`token key:secret`),
//! users and roles. Hashing goes through the [`crate::ports::PasswordHasher`]
//! port (argon2 in the server).

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{CoreError, CoreResult, PortError};
use crate::ids::UserId;
use crate::memory::LocalAttempts;
use crate::ports::{
    ApiKeyRecord, AttemptCounter, AuthStore, DeviceStore, Invalidation, PasswordHasher, Ports,
    ProfileStore,
};

use super::shared::Shared;

/// How long a verified credential is trusted without re-checking the store.
/// Bounded so a disabled user or a logout in another process takes effect
/// within this time.
pub const AUTH_CACHE_TTL_SECS: i64 = 30;
/// Most cached credentials (the cache is cleared when full).
pub const AUTH_CACHE_MAX: usize = 200_000;

/// A cached credential: the caller, until when it is trusted, and the
/// device its session is bound to.
type Cached = (Actor, DateTime<Utc>, Option<String>);

/// In-process cache of verified credentials, keyed by a SHA-256 of the
/// credential (never the raw secret). It keeps argon2 and the session lookup
/// off the hot path.
///
/// Every removal bumps a generation: a lookup that read the store before a
/// removal does not put its (possibly revoked) result back afterwards.
#[derive(Default)]
pub struct AuthCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
    generation: std::sync::atomic::AtomicU64,
}

impl AuthCache {
    fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Actor> {
        self.get_with_device(key, now).map(|(a, _)| a)
    }
    fn get_with_device(&self, key: &str, now: DateTime<Utc>) -> Option<(Actor, Option<String>)> {
        let map = self.entries.lock().ok()?;
        map.get(key)
            .filter(|(_, until, _)| *until > now)
            .map(|(a, _, d)| (a.clone(), d.clone()))
    }
    /// The generation to pass to `put*` (read before the store lookup).
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn put(&self, key: String, actor: Actor, until: DateTime<Utc>, seen: u64) {
        self.put_with_device(key, actor, until, None, seen);
    }
    /// Caches a credential verified against the store, unless something
    /// was removed since `seen` (it may have been this credential).
    fn put_with_device(
        &self,
        key: String,
        actor: Actor,
        until: DateTime<Utc>,
        device: Option<String>,
        seen: u64,
    ) {
        if let Ok(mut map) = self.entries.lock() {
            // Removals bump the generation under this lock.
            if self.generation() != seen {
                return;
            }
            if map.len() >= AUTH_CACHE_MAX {
                map.clear();
            }
            map.insert(key, (actor, until, device));
        }
    }
    fn remove(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            self.bump();
            map.remove(key);
        }
    }
    fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            self.bump();
            map.clear();
        }
    }
    fn remove_user(&self, user: &UserId) {
        if let Ok(mut map) = self.entries.lock() {
            self.bump();
            map.retain(|_, (actor, _, _)| actor.user != *user);
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginOutcome {
    /// The session id to set as the `sid` cookie (shown once).
    pub sid: String,
    /// The user.
    pub user: User,
    /// When the session expires.
    pub expires_at: DateTime<Utc>,
}

/// A device as the client describes it (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInput {
    /// The client's id of the device.
    pub device_id: String,
    /// Kind.
    pub kind: DeviceKind,
    /// Name (at most 80 characters).
    pub name: Option<String>,
}

impl DeviceInput {
    /// Checks a device description: the id is 1–128 characters of
    /// `A-Z a-z 0-9 . _ : -`, the kind is mobile, tablet or desktop, the
    /// name (optional, blank = none) is plain text of at most 80 characters.
    pub fn new(device_id: &str, kind: &str, name: Option<&str>) -> CoreResult<Self> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if device_id.is_empty() || device_id.len() > 128 || !device_id.chars().all(ok) {
            return Err(CoreError::invalid(
                "device_id: 1–128 characters of A-Z a-z 0-9 . _ : -",
            ));
        }
        let kind = DeviceKind::parse(kind)?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => {
                crate::text::check_text("device_name", n, 80)?;
                Some(n.to_owned())
            }
            None => None,
        };
        Ok(DeviceInput {
            device_id: device_id.to_owned(),
            kind,
            name,
        })
    }
}

/// What registering a device did.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRegistration {
    /// The device as stored.
    pub device: Device,
    /// It was not registered before.
    pub is_new: bool,
    /// Devices removed (and signed out) to stay within the limit.
    pub signed_out: Vec<String>,
}

pub use crate::domain::{DeviceLimitAction, DevicePolicy};

/// A newly created API key (the secret is shown once).
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// Public key.
    pub key: String,
    /// Secret.
    pub secret: String,
}

/// Session ids are high-entropy random tokens, so a plain SHA-256 keeps raw
/// ids out of the database (a leaked table cannot be replayed) without the
/// cost of a password hash on every request. Computed for every
/// authenticated request: hex-encoded in one allocation.
fn session_hash(sid: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(sid.as_bytes()))
}

/// Login, sessions, API keys and users. Holds the auth store, the password
/// hasher, the shared failed-login counters (with a bounded in-process
/// fallback) and the profile store (a new user gets a profile).
pub struct AuthService {
    shared: Arc<Shared>,
    users: Arc<dyn AuthStore>,
    hasher: Arc<dyn PasswordHasher>,
    attempts: Option<Arc<dyn AttemptCounter>>,
    profiles: Arc<dyn ProfileStore>,
    auth_cache: AuthCache,
    devices: Arc<dyn DeviceStore>,
    /// When each (user, device) last had its `last_active` written.
    touched: std::sync::Mutex<std::collections::HashMap<(UserId, String), DateTime<Utc>>>,
    local_attempts: LocalAttempts,
    dummy_hash: OnceLock<String>,
    /// The institution's own device policy (`None`: the server default,
    /// `Config::device_policy`).
    device_policy: std::sync::RwLock<Option<DevicePolicy>>,
}

impl AuthService {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>) -> Self {
        AuthService {
            shared: Arc::clone(shared),
            users: Arc::clone(&ports.auth),
            hasher: Arc::clone(&ports.hasher),
            attempts: ports.attempts.clone(),
            profiles: Arc::clone(&ports.profiles),
            auth_cache: AuthCache::default(),
            devices: Arc::clone(&ports.devices),
            touched: std::sync::Mutex::new(std::collections::HashMap::new()),
            local_attempts: LocalAttempts::default(),
            device_policy: std::sync::RwLock::new(None),
            dummy_hash: OnceLock::new(),
        }
    }

    /// `login`: checks the password and opens a session.
    ///
    /// * Unknown accounts, disabled accounts and wrong passwords get the same
    ///   error **and take the same time**: an unknown account is verified
    ///   against a dummy hash.
    /// * Throttled per account and per client address (`client`, when the
    ///   server knows it): after `login_free_failures` failures each further
    ///   attempt must wait 1 s, 2 s, 4 s … up to `login_max_backoff`
    ///   (429 + Retry-After, checked before any password work). Counters are
    ///   shared through the `attempts` port (Redis) and fall back to a
    ///   bounded in-process counter.
    /// * The password is taken exactly as sent (never trimmed).
    pub async fn login(
        &self,
        usr: &str,
        pwd: &str,
        client: Option<&str>,
    ) -> CoreResult<LoginOutcome> {
        let invalid = || CoreError::Unauthenticated;
        let now = self.shared.now();
        let account_key = format!("login:u:{}", usr.trim().to_lowercase());
        let mut keys = vec![account_key.clone()];
        if let Some(c) = client.filter(|c| !c.is_empty()) {
            keys.push(format!("login:ip:{c}"));
        }
        for key in &keys {
            if let Some((count, last)) = self.attempt_failures(key, now).await {
                if let Some(wait) = self.login_backoff(count) {
                    let until = last + chrono::Duration::from_std(wait).unwrap_or_default();
                    if until > now {
                        let left = (until - now).to_std().unwrap_or(wait);
                        return Err(CoreError::RateLimited {
                            retry_after: left.max(std::time::Duration::from_secs(1)),
                        });
                    }
                }
            }
        }
        let found = match UserId::new(usr) {
            Ok(id) => match self.users.get_user(&id).await? {
                Some(user) => self.users.password_hash(&id).await?.map(|h| (id, user, h)),
                None => None,
            },
            Err(_) => None,
        };
        let verified = match &found {
            Some((_, user, hash)) => {
                let ok = self.hasher.verify(pwd, hash).await?;
                ok && user.enabled
            }
            None => {
                // Same work as a real check, so timing does not reveal
                // whether the account exists.
                let dummy = self.dummy_hash().await?;
                let _ = self.hasher.verify(pwd, &dummy).await?;
                false
            }
        };
        let Some((id, user, _)) = found.filter(|_| verified) else {
            for key in &keys {
                self.attempt_record(key, now).await;
            }
            return Err(invalid());
        };
        self.attempt_reset(&account_key).await;
        let sid = format!(
            "{}{}",
            self.shared.tenant.institution.credential_prefix(),
            self.shared.ids.secret()
        );
        let expires_at = now
            + chrono::Duration::from_std(self.shared.config.login_session_ttl)
                .unwrap_or(chrono::Duration::days(7));
        self.users
            .create_login_session(&session_hash(&sid), &id, expires_at)
            .await?;
        Ok(LoginOutcome {
            sid,
            user,
            expires_at,
        })
    }

    /// Backoff after `failures` failed logins (`None`: still free).
    fn login_backoff(&self, failures: u32) -> Option<std::time::Duration> {
        let over = failures.checked_sub(self.shared.config.login_free_failures)?;
        let secs = 1u64.checked_shl(over.min(30)).unwrap_or(u64::MAX);
        Some(std::time::Duration::from_secs(secs).min(self.shared.config.login_max_backoff))
    }

    async fn attempt_failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<(u32, DateTime<Utc>)> {
        if let Some(shared) = &self.attempts {
            if let Ok(v) = shared.failures(key, now).await {
                return v;
            }
        }
        self.local_attempts.failures(key, now).await.ok().flatten()
    }

    async fn attempt_record(&self, key: &str, now: DateTime<Utc>) {
        let ttl = self.shared.config.login_max_backoff * 4;
        if let Some(shared) = &self.attempts {
            if shared.record_failure(key, now, ttl).await.is_ok() {
                return;
            }
        }
        let _ = self.local_attempts.record_failure(key, now, ttl).await;
    }

    async fn attempt_reset(&self, key: &str) {
        if let Some(shared) = &self.attempts {
            let _ = shared.reset(key).await;
        }
        let _ = self.local_attempts.reset(key).await;
    }

    async fn dummy_hash(&self) -> CoreResult<String> {
        if let Some(h) = self.dummy_hash.get() {
            return Ok(h.clone());
        }
        let h = self
            .hasher
            .hash("memora: no such account, constant-time login")
            .await?;
        Ok(self.dummy_hash.get_or_init(|| h).clone())
    }

    /// The password policy: not empty or whitespace only, at least 8
    /// characters, and a strength score of at least `min_password_score`
    /// (estimated by the hasher port; the server uses zxcvbn). The password
    /// is never trimmed.
    pub(crate) fn check_password(&self, password: &str, user_inputs: &[&str]) -> CoreResult<()> {
        if password.trim().is_empty() {
            return Err(CoreError::invalid(
                "password must not be empty or only whitespace",
            ));
        }
        if password.chars().count() < 8 {
            return Err(CoreError::invalid(
                "password must have at least 8 characters",
            ));
        }
        if password.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "password must not contain control characters",
            ));
        }
        let (score, hint) = self.hasher.strength(password, user_inputs);
        if score < self.shared.config.min_password_score {
            return Err(CoreError::invalid(format!(
                "password is too easy to guess (strength {score} of 4, at least {} needed){}",
                self.shared.config.min_password_score,
                hint.map(|h| format!(": {h}")).unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Ends a session.
    pub async fn logout(&self, sid: &str) -> CoreResult<()> {
        let hash = session_hash(sid);
        self.users.delete_login_session(&hash).await?;
        // After the delete: a concurrent lookup cannot cache it again.
        self.auth_cache.remove(&format!("s:{hash}"));
        // The other processes drop their cached copy within a poll.
        self.shared.publish(Invalidation::Session(hash)).await;
        Ok(())
    }

    fn actor_of(user: User) -> CoreResult<Actor> {
        // A stored account never authenticates as the system caller.
        if !user.enabled || user.id.is_system() {
            return Err(CoreError::Unauthenticated);
        }
        Ok(Actor {
            user: user.id,
            roles: user.roles,
        })
    }

    /// Resolves a session cookie to the caller.
    pub async fn authenticate_session(&self, sid: &str) -> CoreResult<Actor> {
        let now = self.shared.now();
        let cache_key = format!("s:{}", session_hash(sid));
        if let Some((a, device)) = self.auth_cache.get_with_device(&cache_key, now) {
            if let Some(device) = device {
                self.touch_device(&a.user, &device, now).await;
            }
            return Ok(a);
        }
        let seen = self.auth_cache.generation();
        let (user, expires) = self
            .users
            .get_login_session(&session_hash(sid))
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if expires <= self.shared.now() {
            let _ = self.users.delete_login_session(&session_hash(sid)).await;
            return Err(CoreError::Unauthenticated);
        }
        let user = self
            .users
            .get_user(&user)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let actor = Self::actor_of(user)?;
        let device = self.devices.session_device(&session_hash(sid)).await?;
        let until = (now + chrono::Duration::seconds(AUTH_CACHE_TTL_SECS)).min(expires);
        self.auth_cache
            .put_with_device(cache_key, actor.clone(), until, device.clone(), seen);
        if let Some(device) = device {
            self.touch_device(&actor.user, &device, now).await;
        }
        Ok(actor)
    }

    /// Resolves `Authorization: token key:secret` to the caller.
    pub async fn authenticate_api_key(&self, key: &str, secret: &str) -> CoreResult<Actor> {
        let now = self.shared.now();
        let cache_key = format!("k:{}", session_hash(&format!("{key}:{secret}")));
        if let Some(a) = self.auth_cache.get(&cache_key, now) {
            return Ok(a);
        }
        let seen = self.auth_cache.generation();
        let rec = self
            .users
            .get_api_key(key)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if !self.hasher.verify(secret, &rec.secret_hash).await? {
            return Err(CoreError::Unauthenticated);
        }
        let user = self
            .users
            .get_user(&rec.user)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let actor = Self::actor_of(user)?;
        self.auth_cache.put(
            cache_key,
            actor.clone(),
            now + chrono::Duration::seconds(AUTH_CACHE_TTL_SECS),
            seen,
        );
        Ok(actor)
    }

    /// Creates a user (an admin, or [`Actor::system`] for the CLI and
    /// bootstrap). The system caller's reserved id cannot be taken.
    pub async fn create_user(
        &self,
        actor: &Actor,
        id: &UserId,
        full_name: &str,
        roles: Vec<Role>,
        password: Option<&str>,
    ) -> CoreResult<User> {
        self.create_user_as(actor, id, full_name, roles, password, false)
            .await
    }

    /// [`AuthService::create_user`] of a name the caller has reserved in the
    /// platform directory for this institution already (the platform, for
    /// the first manager of an institution it creates; it also gives the
    /// name back if this fails).
    pub(crate) async fn create_reserved_user(
        &self,
        id: &UserId,
        full_name: &str,
        roles: Vec<Role>,
        password: Option<&str>,
    ) -> CoreResult<User> {
        self.create_user_as(&Actor::system(), id, full_name, roles, password, true)
            .await
    }

    async fn create_user_as(
        &self,
        actor: &Actor,
        id: &UserId,
        full_name: &str,
        roles: Vec<Role>,
        password: Option<&str>,
        reserved: bool,
    ) -> CoreResult<User> {
        actor.require_admin()?;
        self.check_new_user(id, full_name, password)?;
        let user = User {
            id: id.clone(),
            full_name: full_name.trim().to_owned(),
            roles: if roles.is_empty() {
                vec![Role::Student]
            } else {
                roles
            },
            enabled: true,
        };
        let hash = match password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        // Account names are unique across the platform (a login names no
        // institution): reserve the name first, give it back if the
        // account cannot be stored.
        // Account names are unique across the platform (whatever the case
        // of their ASCII letters): reserve the name first, give it back if
        // the account cannot be stored. A name the caller reserved already
        // (the first manager of a new institution) is not reserved again.
        let tenant = &self.shared.tenant;
        let mut claimed_now = false;
        if let (Some(dir), false) = (&tenant.directory, reserved) {
            match dir.claim_account(id, &tenant.institution).await {
                Ok(()) => claimed_now = true,
                Err(PortError::Conflict(_)) => {
                    return Err(CoreError::conflict(format!("user {id} exists")));
                }
                Err(other) => return Err(other.into()),
            }
        }
        if let Err(e) = self.users.create_user(&user, hash.as_deref()).await {
            if let (Some(dir), true) = (&tenant.directory, claimed_now) {
                let _ = dir.release_account(id, &tenant.institution).await;
            }
            return Err(e.into());
        }
        let mut profile = PlayerProfile::new(id.clone(), user.full_name.clone());
        if let Some(season) = self.shared.active_season().await? {
            profile.season = Some(season.id);
        }
        self.profiles.upsert_profile(&profile).await?;
        self.shared
            .audit(
                actor,
                "user.create",
                serde_json::json!({"user": id.as_str()}),
            )
            .await;
        Ok(user)
    }

    /// Everything [`Self::create_user`] refuses an account for before it
    /// writes anything: the system caller's reserved id, an empty or
    /// malformed full name, a password the policy refuses. (Creating an
    /// institution checks its first manager with this before the
    /// institution is recorded.)
    pub(crate) fn check_new_user(
        &self,
        id: &UserId,
        full_name: &str,
        password: Option<&str>,
    ) -> CoreResult<()> {
        if id.is_system() {
            return Err(CoreError::invalid(format!(
                "user id {id} is reserved for the system caller"
            )));
        }
        if full_name.trim().is_empty() {
            return Err(CoreError::invalid("full_name must not be empty"));
        }
        crate::text::check_text("full_name", full_name, 140)?;
        if let Some(p) = password {
            self.check_password(p, &[id.as_str(), full_name])?;
        }
        Ok(())
    }

    /// Sets a user's password (an admin, or [`Actor::system`]).
    pub async fn set_password(&self, actor: &Actor, id: &UserId, password: &str) -> CoreResult<()> {
        actor.require_admin()?;
        self.check_password(password, &[id.as_str()])?;
        if self.users.get_user(id).await?.is_none() {
            return Err(CoreError::not_found(format!("user {id} not found")));
        }
        let hash = self.hasher.hash(password).await?;
        self.users.set_password_hash(id, &hash).await?;
        self.auth_cache.remove_user(id);
        self.shared.publish(Invalidation::User(id.clone())).await;
        Ok(())
    }

    /// Creates an API key for a user (an admin, or [`Actor::system`]).
    pub async fn create_api_key(&self, actor: &Actor, user: &UserId) -> CoreResult<NewApiKey> {
        actor.require_admin()?;
        if self.users.get_user(user).await?.is_none() {
            return Err(CoreError::not_found(format!("user {user} not found")));
        }
        let key = format!(
            "{}{}",
            self.shared.tenant.institution.credential_prefix(),
            &self.shared.ids.secret()[..20]
        );
        let secret = self.shared.ids.secret();
        let hash = self.hasher.hash(&secret).await?;
        self.users
            .create_api_key(&ApiKeyRecord {
                key: key.clone(),
                user: user.clone(),
                secret_hash: hash,
            })
            .await?;
        self.shared
            .audit(
                actor,
                "user.api_key",
                serde_json::json!({"user": user.as_str()}),
            )
            .await;
        Ok(NewApiKey { key, secret })
    }

    /// Records that `device` of `user` is in use, at most once per
    /// `Config::device_touch_interval` per device and process (so not a
    /// write per request). Best effort.
    async fn touch_device(&self, user: &UserId, device: &str, now: DateTime<Utc>) {
        let every = chrono::Duration::from_std(self.shared.config.device_touch_interval)
            .unwrap_or(chrono::Duration::minutes(5));
        let due = match self.touched.lock() {
            Ok(mut map) => {
                let key = (user.clone(), device.to_owned());
                match map.get(&key) {
                    Some(last) if *last + every > now => false,
                    _ => {
                        if map.len() >= AUTH_CACHE_MAX {
                            map.clear();
                        }
                        map.insert(key, now);
                        true
                    }
                }
            }
            Err(_) => false,
        };
        if due {
            let _ = self.devices.touch_device(user, device, now).await;
        }
    }

    /// `login` from a device: registers the device (or refreshes it) under
    /// the device policy and binds the new session to it. If the device
    /// cannot be registered (the limit, with the `Refuse` policy), the
    /// session is ended and the login refused.
    pub async fn login_on_device(
        &self,
        usr: &str,
        pwd: &str,
        client: Option<&str>,
        device: Option<&DeviceInput>,
    ) -> CoreResult<LoginOutcome> {
        let out = self.login(usr, pwd, client).await?;
        let Some(device) = device else {
            return Ok(out);
        };
        let hash = session_hash(&out.sid);
        let actor = Actor {
            user: out.user.id.clone(),
            roles: out.user.roles.clone(),
        };
        if let Err(e) = self.attach_device(&actor, Some(&hash), device).await {
            let _ = self.users.delete_login_session(&hash).await;
            return Err(e);
        }
        Ok(out)
    }

    /// `register_device`: registers the caller's device (or refreshes its
    /// kind and name) under the device policy and, for a cookie session
    /// (`sid`), binds the session to it.
    pub async fn register_device(
        &self,
        actor: &Actor,
        sid: Option<&str>,
        device: &DeviceInput,
    ) -> CoreResult<DeviceRegistration> {
        let hash = sid.map(session_hash);
        let out = self.attach_device(actor, hash.as_deref(), device).await?;
        if let Some(h) = &hash {
            // The cached credential learns its device at the next lookup.
            self.auth_cache.remove(&format!("s:{h}"));
        }
        Ok(out)
    }

    async fn attach_device(
        &self,
        actor: &Actor,
        sid_hash: Option<&str>,
        input: &DeviceInput,
    ) -> CoreResult<DeviceRegistration> {
        let user = &actor.user;
        let now = self.shared.now();
        let known = self.devices.list_devices(user).await?;
        let is_new = !known.iter().any(|d| d.device_id == input.device_id);
        let policy = self.device_policy();
        let policy = &policy;
        let mut evict: Vec<String> = Vec::new();
        if is_new && known.len() >= policy.max_devices {
            match policy.on_limit {
                DeviceLimitAction::Refuse => {
                    return Err(CoreError::Conflict(format!(
                        "device limit reached: {} devices are registered (at most {}); revoke one with revoke_device first",
                        known.len(),
                        policy.max_devices
                    )));
                }
                DeviceLimitAction::SignOutOldest => {
                    // Most recently active first: the last is the oldest.
                    let excess = known.len() + 1 - policy.max_devices;
                    evict = known
                        .iter()
                        .rev()
                        .take(excess)
                        .map(|d| d.device_id.clone())
                        .collect();
                }
            }
        }
        let device = Device {
            user: user.clone(),
            device_id: input.device_id.clone(),
            kind: input.kind,
            name: input.name.clone(),
            registered_at: now,
            last_active: now,
        };
        self.devices.upsert_device(&device).await?;
        if let Some(h) = sid_hash {
            self.devices.bind_session(h, user, &input.device_id).await?;
        }
        // Evicted only after the calling session moved to the new device:
        // its old device may be the least recently active one (activity is
        // written at most once per touch interval), and removing it first
        // would end the very session this registration is for.
        let mut signed_out = None;
        for old in &evict {
            self.remove_device(user, old).await?;
            signed_out.get_or_insert_with(Vec::new).push(old.clone());
        }
        if is_new {
            self.shared
                .audit(
                    actor,
                    "device.register",
                    serde_json::json!({
                        "user": user.as_str(),
                        "device": input.device_id,
                        "signed_out": signed_out,
                    }),
                )
                .await;
        }
        Ok(DeviceRegistration {
            device,
            is_new,
            signed_out: signed_out.unwrap_or_default(),
        })
    }

    /// Deletes a device and ends its sessions here and, through the
    /// invalidation log, in every other process.
    async fn remove_device(&self, user: &UserId, device_id: &str) -> CoreResult<Option<usize>> {
        let Some(ended) = self.devices.delete_device(user, device_id).await? else {
            return Ok(None);
        };
        for h in &ended {
            self.auth_cache.remove(&format!("s:{h}"));
            self.shared.publish(Invalidation::Session(h.clone())).await;
        }
        if let Ok(mut map) = self.touched.lock() {
            map.remove(&(user.clone(), device_id.to_owned()));
        }
        Ok(Some(ended.len()))
    }

    /// The device policy in force in this institution: its own, or the
    /// server default.
    pub fn device_policy(&self) -> DevicePolicy {
        self.device_policy
            .read()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| self.shared.config.device_policy.clone())
    }

    /// Whether this institution has its own device policy (otherwise the
    /// server default applies).
    pub fn has_own_device_policy(&self) -> bool {
        self.device_policy.read().is_ok_and(|p| p.is_some())
    }

    /// Applies an institution's device policy read from the platform
    /// directory (`None`: the server default). Every process applies it
    /// when it refreshes the directory.
    pub fn apply_device_policy(&self, policy: Option<DevicePolicy>) {
        if let Ok(mut p) = self.device_policy.write() {
            *p = policy;
        }
    }

    /// `set_device_policy` (a manager of this institution): stores the
    /// institution's policy in the platform directory, so every process
    /// applies it, and applies it here at once. `None` returns to the
    /// server default.
    pub async fn set_device_policy(
        &self,
        actor: &Actor,
        policy: Option<DevicePolicy>,
    ) -> CoreResult<DevicePolicy> {
        actor.require_admin()?;
        if let Some(p) = &policy {
            if !(1..=1000).contains(&p.max_devices) {
                return Err(CoreError::invalid("max_devices must be between 1 and 1000"));
            }
        }
        let tenant = &self.shared.tenant;
        if let Some(dir) = &tenant.directory {
            if !dir
                .set_institution_device_policy(&tenant.institution, policy.as_ref())
                .await?
            {
                return Err(CoreError::not_found(format!(
                    "institution {} is not in the platform directory",
                    tenant.institution
                )));
            }
        }
        self.apply_device_policy(policy.clone());
        self.shared
            .audit(
                actor,
                "device_policy.set",
                serde_json::json!({
                    "max_devices": policy.as_ref().map(|p| p.max_devices),
                    "on_limit": policy.as_ref().map(|p| p.on_limit.as_str()),
                }),
            )
            .await;
        Ok(self.device_policy())
    }

    /// `get_my_devices`: the caller's devices, most recently active first.
    pub async fn my_devices(&self, actor: &Actor) -> CoreResult<Vec<Device>> {
        Ok(self.devices.list_devices(&actor.user).await?)
    }

    /// The device the session `sid` is bound to.
    pub async fn session_device(&self, sid: &str) -> CoreResult<Option<String>> {
        Ok(self.devices.session_device(&session_hash(sid)).await?)
    }

    /// `revoke_device`: removes one of the caller's devices and ends every
    /// session opened on it (in every process within one poll). Returns
    /// how many sessions ended.
    pub async fn revoke_device(&self, actor: &Actor, device_id: &str) -> CoreResult<usize> {
        let ended = self
            .remove_device(&actor.user, device_id)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("device {device_id} not found")))?;
        self.shared
            .audit(
                actor,
                "device.revoke",
                serde_json::json!({"user": actor.user.as_str(), "device": device_id, "sessions": ended}),
            )
            .await;
        Ok(ended)
    }

    /// Forgets every cached credential.
    pub(crate) fn forget_all(&self) {
        self.auth_cache.clear();
    }

    /// Applies an invalidation published by another process.
    pub(crate) fn forget(&self, what: &Invalidation) {
        match what {
            Invalidation::Session(hash) => self.auth_cache.remove(&format!("s:{hash}")),
            Invalidation::User(user) => self.auth_cache.remove_user(user),
            Invalidation::Catalog | Invalidation::Seasons => {}
        }
    }

    /// The user record of the caller.
    pub async fn get_user(&self, id: &UserId) -> CoreResult<Option<User>> {
        Ok(self.users.get_user(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hash_is_stable_and_hides_the_id() {
        let h = session_hash("abc");
        assert_eq!(h, session_hash("abc"));
        assert_ne!(h, session_hash("abd"));
        assert_eq!(h.len(), 64);
        assert!(!h.contains("abc"));
        // Stored sessions are keyed by it: the encoding (SHA-256, lowercase
        // hex) must not change between versions, or every learner would be
        // signed out by an upgrade. The published digest of "abc":
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_lookup_that_raced_a_removal_does_not_cache_its_result() {
        let cache = AuthCache::default();
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(30);
        let ann = Actor::student(UserId::new("ann@x.test").unwrap());
        // A lookup reads the store, then a logout removes the entry
        // (nothing cached yet), then the lookup finishes.
        let seen = cache.generation();
        cache.remove("s:h1");
        cache.put("s:h1".into(), ann.clone(), until, seen);
        assert_eq!(cache.get("s:h1", now), None);
        // Without a removal in between it is cached.
        let seen = cache.generation();
        cache.put("s:h1".into(), ann.clone(), until, seen);
        assert_eq!(cache.get("s:h1", now), Some(ann.clone()));
        let seen = cache.generation();
        cache.remove_user(&ann.user);
        cache.put("s:h2".into(), ann, until, seen);
        assert_eq!(cache.get("s:h2", now), None);
    }
}
