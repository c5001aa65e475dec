//! Production implementations of the core's crypto-ish ports: argon2
//! password hashing (run on the blocking pool) and OS-random ids/secrets.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use async_trait::async_trait;
use memora_core::ports::{IdGenerator, PasswordHasher};
use memora_core::{PortError, PortResult};

/// Argon2id with the crate's default (OWASP-recommended) parameters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Argon2Hasher;

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, secret: &str) -> PortResult<String> {
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || {
            let raw: [u8; 16] = rand::random();
            let salt = SaltString::encode_b64(&raw)
                .map_err(|e| PortError::Internal(format!("salt: {e}")))?;
            argon2::Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PortError::Internal(format!("hashing failed: {e}")))
        })
        .await
        .map_err(|e| PortError::Internal(format!("hashing task failed: {e}")))?
    }

    async fn verify(&self, secret: &str, hash: &str) -> PortResult<bool> {
        let (secret, hash) = (secret.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(p) => p,
                Err(_) => return Ok(false),
            };
            Ok(argon2::Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map_err(|e| PortError::Internal(format!("verify task failed: {e}")))?
    }

    /// zxcvbn's score (0–4) with its warning, or its first suggestion, as
    /// the hint.
    fn strength(&self, password: &str, user_inputs: &[&str]) -> (u8, Option<String>) {
        let e = zxcvbn::zxcvbn(password, user_inputs);
        let hint = e.feedback().and_then(|f| {
            f.warning()
                .map(|w| w.to_string())
                .or_else(|| f.suggestions().first().map(|s| s.to_string()))
        });
        (u8::from(e.score()), hint)
    }
}

/// UUID v7 ids (time-ordered, index-friendly) and 256-bit OS-random secrets.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
    }
    fn secret(&self) -> String {
        let bytes: [u8; 32] = rand::random();
        hex::encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_round_trip() {
        let h = Argon2Hasher.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2"));
        assert!(Argon2Hasher.verify("correct horse", &h).await.unwrap());
        assert!(!Argon2Hasher.verify("wrong", &h).await.unwrap());
        assert!(!Argon2Hasher.verify("x", "not-a-hash").await.unwrap());
    }

    #[test]
    fn ids_are_unique_and_secrets_long() {
        let a = RandomIds.next_id("job");
        assert!(a.starts_with("job-"));
        assert_ne!(a, RandomIds.next_id("job"));
        let s = RandomIds.secret();
        assert_eq!(s.len(), 64);
        assert_ne!(s, RandomIds.secret());
    }
}
