//! Institutions: the tenants of one Memora platform (a district or a company
//! hosting several schools).
//!
//! Every learner, admin, season, catalog item, store item, subscription,
//! leaderboard, quest claim, cache key and queue entry belongs to exactly one
//! institution. Isolation is by construction: each institution is served by
//! its own [`crate::Memora`] over its own ports (its own PostgreSQL schema
//! and Redis key namespace), so a use case of institution A holds no handle
//! through which it could read or write B's data. The only state the
//! institutions share is the platform directory
//! ([`crate::ports::InstitutionDirectory`]): the institutions themselves and
//! which institution each account name belongs to (account names are unique
//! across the platform, so a login needs no institution argument).

use chrono::{DateTime, Utc};

use crate::error::CoreError;

/// The id of an institution: 2–32 characters, lowercase ASCII letters,
/// digits and `-`, starting with a letter (it names a PostgreSQL schema and
/// a Redis key namespace, and prefixes session ids and API keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstitutionId(String);

/// The id of the home institution: where a single-school installation's data
/// has always lived, and whose System Managers operate the platform.
pub const HOME_INSTITUTION: &str = "default";

/// Separates the institution from the rest of a session id or API key
/// (`northside~3f9a…`). Home-institution credentials carry no prefix, so
/// existing sessions and keys keep working.
pub const CREDENTIAL_SEPARATOR: char = '~';

impl InstitutionId {
    /// Validates an institution id.
    pub fn new(raw: &str) -> Result<Self, CoreError> {
        let ok_len = (2..=32).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let ok_start = raw.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_end = !raw.ends_with('-');
        if !(ok_len && ok_chars && ok_start && ok_end) {
            const RULE: &str = "must be 2–32 characters of a–z, 0–9 and '-', start with a letter and not end with '-'";
            // Echo only what is short and printable (never a megabyte of
            // input, never control characters).
            let shown = if raw.chars().count() <= 40 && !raw.chars().any(char::is_control) {
                format!("institution id {raw:?}")
            } else {
                "the institution id".to_owned()
            };
            return Err(CoreError::invalid(format!("{shown} {RULE}")));
        }
        Ok(InstitutionId(raw.to_owned()))
    }

    /// The home institution.
    pub fn home() -> Self {
        InstitutionId(HOME_INSTITUTION.to_owned())
    }

    /// Whether this is the home institution.
    pub fn is_home(&self) -> bool {
        self.0 == HOME_INSTITUTION
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What this institution's session ids and API keys start with (empty
    /// for the home institution).
    pub fn credential_prefix(&self) -> String {
        if self.is_home() {
            String::new()
        } else {
            format!("{}{CREDENTIAL_SEPARATOR}", self.0)
        }
    }

    /// The institution a session id or API key belongs to: its prefix, or
    /// the home institution when it has none. A malformed prefix yields
    /// `None` (the credential is then simply invalid).
    pub fn of_credential(credential: &str) -> Option<Self> {
        match credential.split_once(CREDENTIAL_SEPARATOR) {
            None => Some(Self::home()),
            Some((prefix, _)) => Self::new(prefix).ok().filter(|i| !i.is_home()),
        }
    }
}

impl std::fmt::Display for InstitutionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an institution's users may use the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstitutionStatus {
    /// In service.
    Active,
    /// Suspended by the platform operator: logins and every authenticated
    /// call of its users are refused (403); its data is kept.
    Suspended,
}

impl InstitutionStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstitutionStatus::Active => "active",
            InstitutionStatus::Suspended => "suspended",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "active" => Ok(InstitutionStatus::Active),
            "suspended" => Ok(InstitutionStatus::Suspended),
            other => Err(CoreError::invalid(format!(
                "unknown institution status {other:?} (active or suspended)"
            ))),
        }
    }
}

/// One institution of the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Institution {
    /// Its id.
    pub id: InstitutionId,
    /// Display name.
    pub name: String,
    /// In service or suspended.
    pub status: InstitutionStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its own device policy (`None`: the server default).
    pub device_policy: Option<super::DevicePolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_slugs() {
        for ok in ["ab", "north-side", "school42", "a1-b2"] {
            assert!(InstitutionId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Ab",
            "1ab",
            "-ab",
            "ab-",
            "a b",
            "a~b",
            "a_b",
            "x".repeat(33).as_str(),
        ] {
            assert!(InstitutionId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_name_their_institution() {
        let north = InstitutionId::new("north").unwrap();
        let sid = format!("{}abc", north.credential_prefix());
        assert_eq!(sid, "north~abc");
        assert_eq!(InstitutionId::of_credential(&sid), Some(north));
        assert_eq!(
            InstitutionId::of_credential("abc"),
            Some(InstitutionId::home())
        );
        assert_eq!(InstitutionId::home().credential_prefix(), "");
        // A home credential never carries a prefix, and a bad prefix is no
        // institution.
        assert_eq!(InstitutionId::of_credential("default~abc"), None);
        assert_eq!(InstitutionId::of_credential("Bad~abc"), None);
    }
}
