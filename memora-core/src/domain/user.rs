//! Users, roles and the authenticated caller ([`Actor`]).

use crate::error::CoreError;
use crate::ids::UserId;
use chrono::{DateTime, Utc};

/// The two roles Memora knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A learner: sees only their own data.
    Student,
    /// An administrator ("System Manager" in Frappe terms).
    SystemManager,
}

impl Role {
    /// The Frappe role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "Student",
            Role::SystemManager => "System Manager",
        }
    }
    /// Parses a Frappe role name (case-insensitive; "admin" accepted).
    pub fn parse(s: &str) -> Result<Role, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "student" => Ok(Role::Student),
            "system manager" | "system_manager" | "admin" => Ok(Role::SystemManager),
            other => Err(CoreError::invalid(format!("unknown role '{other}'"))),
        }
    }
}

/// A user account (without secrets: those stay in the auth store).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Login identity.
    pub id: UserId,
    /// Display name.
    pub full_name: String,
    /// Granted roles.
    pub roles: Vec<Role>,
    /// Disabled users cannot log in and are hidden from leaderboards.
    pub enabled: bool,
}

/// The user id of [`Actor::system`]: the server itself (CLI commands,
/// scheduled jobs, internal bookkeeping). The angle brackets make it
/// impossible to confuse with an account (accounts are e-mail addresses or
/// plain names, and `create_user` refuses this id), so audit records show
/// the system caller distinctly.
pub const SYSTEM_USER_ID: &str = "<system>";

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// Who is calling.
    pub user: UserId,
    /// Their roles.
    pub roles: Vec<Role>,
}

impl Actor {
    /// A caller with the Student role.
    pub fn student(user: UserId) -> Self {
        Actor {
            user,
            roles: vec![Role::Student],
        }
    }
    /// A caller with the System Manager role.
    pub fn admin(user: UserId) -> Self {
        Actor {
            user,
            roles: vec![Role::SystemManager],
        }
    }
    /// The server itself: CLI commands, scheduled jobs and internal
    /// bookkeeping. It has the System Manager role, so admin checks are
    /// performed (never skipped) and pass; its user id is the reserved
    /// [`SYSTEM_USER_ID`], which no account can have, so audit records name
    /// it distinctly. Authentication never yields it.
    pub fn system() -> Self {
        Actor {
            user: UserId::system(),
            roles: vec![Role::SystemManager],
        }
    }
    /// True for [`Actor::system`].
    pub fn is_system(&self) -> bool {
        self.user.is_system()
    }
    /// True for System Managers.
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::SystemManager)
    }
    /// Fails with 403 unless the caller is a System Manager.
    pub fn require_admin(&self) -> Result<(), CoreError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(CoreError::forbidden(
                "this action requires the System Manager role",
            ))
        }
    }
    /// Fails with 403 unless the caller is `user` or an admin.
    pub fn require_self_or_admin(&self, user: &UserId) -> Result<(), CoreError> {
        if &self.user == user || self.is_admin() {
            Ok(())
        } else {
            Err(CoreError::forbidden(
                "students may only access their own data",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_caller_is_an_admin_with_a_reserved_id() {
        let s = Actor::system();
        assert!(s.is_system());
        assert!(s.is_admin());
        assert!(s.require_admin().is_ok());
        assert_eq!(s.user.as_str(), SYSTEM_USER_ID);
        let a = Actor::admin(UserId::new("admin@x").expect("id"));
        assert!(!a.is_system());
        assert!(!Actor::student(UserId::new("s@x").expect("id")).is_system());
    }
}

/// The kind of a player's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A computer.
    Desktop,
}

impl DeviceKind {
    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeviceKind::Mobile => "mobile",
            DeviceKind::Tablet => "tablet",
            DeviceKind::Desktop => "desktop",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "mobile" => Ok(DeviceKind::Mobile),
            "tablet" => Ok(DeviceKind::Tablet),
            "desktop" => Ok(DeviceKind::Desktop),
            other => Err(CoreError::invalid(format!(
                "device_type '{other}': expected mobile, tablet or desktop"
            ))),
        }
    }
}

/// A device a player signs in from (the spec's Game Player Device).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Owner.
    pub user: UserId,
    /// The client's id of the device (1–128 of `A-Z a-z 0-9 . _ : -`),
    /// unique per user.
    pub device_id: String,
    /// Kind.
    pub kind: DeviceKind,
    /// A name the player recognises ("Sara's phone").
    pub name: Option<String>,
    /// First registration.
    pub registered_at: DateTime<Utc>,
    /// Last sign-in or request from it (kept to within a few minutes).
    pub last_active: DateTime<Utc>,
}

/// What happens when a player registers one device too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLimitAction {
    /// The least recently active device is removed and signed out.
    SignOutOldest,
    /// The new device (and its login) is refused until one is revoked.
    Refuse,
}

/// How many devices a player may have, and what a new one beyond that does.
#[derive(Debug, Clone, PartialEq)]
pub struct DevicePolicy {
    /// At most this many registered devices per player (≥ 1).
    pub max_devices: usize,
    /// What a new device beyond the limit does.
    pub on_limit: DeviceLimitAction,
}

impl Default for DevicePolicy {
    /// Five devices; a sixth signs the least recently active one out.
    fn default() -> Self {
        DevicePolicy {
            max_devices: 5,
            on_limit: DeviceLimitAction::SignOutOldest,
        }
    }
}

impl DeviceLimitAction {
    /// The configuration and API spelling (`sign-out-oldest`, `refuse`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceLimitAction::SignOutOldest => "sign-out-oldest",
            DeviceLimitAction::Refuse => "refuse",
        }
    }

    /// Parses [`DeviceLimitAction::as_str`]'s spelling.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s.trim() {
            "sign-out-oldest" => Ok(DeviceLimitAction::SignOutOldest),
            "refuse" => Ok(DeviceLimitAction::Refuse),
            other => Err(CoreError::invalid(format!(
                "on_limit {other:?} must be sign-out-oldest or refuse"
            ))),
        }
    }
}
