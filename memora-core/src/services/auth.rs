//! Authentication and accounts: password login with server-side sessions
//! (only a hash of the session id is stored), API keys (`token key:secret`),
//! users and roles. Hashing goes through the [`crate::ports::PasswordHasher`]
//! port (argon2 in the server).

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::UserId;
use crate::memory::LocalAttempts;
use crate::ports::{
    ApiKeyRecord, AttemptCounter, AuthStore, Invalidation, PasswordHasher, Ports, ProfileStore,
};

use super::shared::Shared;

/// How long a verified credential is trusted without re-checking the store.
/// Bounded so a disabled user or a logout in another process takes effect
/// within this time.
pub const AUTH_CACHE_TTL_SECS: i64 = 30;
/// Most cached credentials (the cache is cleared when full).
pub const AUTH_CACHE_MAX: usize = 200_000;

/// In-process cache of verified credentials, keyed by a SHA-256 of the
/// credential (never the raw secret). It keeps argon2 and the session lookup
/// off the hot path.
#[derive(Default)]
pub struct AuthCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Actor, DateTime<Utc>)>>,
}

impl AuthCache {
    fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Actor> {
        let map = self.entries.lock().ok()?;
        map.get(key)
            .filter(|(_, until)| *until > now)
            .map(|(a, _)| a.clone())
    }
    fn put(&self, key: String, actor: Actor, until: DateTime<Utc>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= AUTH_CACHE_MAX {
                map.clear();
            }
            map.insert(key, (actor, until));
        }
    }
    fn remove(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }
    fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
    fn remove_user(&self, user: &UserId) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (actor, _)| actor.user != *user);
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
/// cost of a password hash on every request.
fn session_hash(sid: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(sid.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
    local_attempts: LocalAttempts,
    dummy_hash: OnceLock<String>,
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
            local_attempts: LocalAttempts::default(),
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
        let sid = self.shared.ids.secret();
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
        self.auth_cache.remove(&format!("s:{hash}"));
        self.users.delete_login_session(&hash).await?;
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
        if let Some(a) = self.auth_cache.get(&cache_key, now) {
            return Ok(a);
        }
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
        let until = (now + chrono::Duration::seconds(AUTH_CACHE_TTL_SECS)).min(expires);
        self.auth_cache.put(cache_key, actor.clone(), until);
        Ok(actor)
    }

    /// Resolves `Authorization: token key:secret` to the caller.
    pub async fn authenticate_api_key(&self, key: &str, secret: &str) -> CoreResult<Actor> {
        let now = self.shared.now();
        let cache_key = format!("k:{}", session_hash(&format!("{key}:{secret}")));
        if let Some(a) = self.auth_cache.get(&cache_key, now) {
            return Ok(a);
        }
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
        actor.require_admin()?;
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
        self.users.create_user(&user, hash.as_deref()).await?;
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
        let key = self.shared.ids.secret()[..20].to_owned();
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
    }
}
