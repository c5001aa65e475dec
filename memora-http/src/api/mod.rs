//! The Frappe-compatible method API: `/api/method/memora.api.<module>.<fn>`
//! and `/api/method/memora.api.<fn>` (GET or POST), plus Frappe's own auth
//! methods. Each handler parses arguments, calls one core use case and
//! renders the result; no business rule lives here.

pub mod handlers;
pub mod views;

use crate::args::Args;
use crate::error::ApiError;
use memora_core::domain::Actor;

/// Which callers a method accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Guest,
    /// Any logged-in user.
    User,
    /// System Managers only.
    Admin,
}

/// One API method.
#[derive(Debug, Clone, Copy)]
pub struct MethodSpec {
    /// Function name.
    pub name: &'static str,
    /// Module (for the long path and the OpenAPI document).
    pub module: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Argument names (documentation).
    pub params: &'static [&'static str],
    /// One-line description.
    pub summary: &'static str,
    /// Changes state: POST only (405 otherwise), and cookie-authenticated
    /// calls need the CSRF header and a JSON or form body.
    pub mutates: bool,
}

impl MethodSpec {
    /// The HTTP methods accepted (the `Allow` header of a 405).
    pub fn allow(&self) -> &'static str {
        if self.mutates { "POST" } else { "GET, POST" }
    }
}

macro_rules! m {
    ($name:literal, $module:literal, $access:ident, [$($p:literal),*], $summary:literal) => {
        MethodSpec { name: $name, module: $module, access: Access::$access, params: &[$($p),*], summary: $summary, mutates: is_mutating($name) }
    };
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `name` is listed in [`MUTATING`] (const, for the method table).
pub const fn is_mutating(name: &str) -> bool {
    let mut i = 0;
    while i < MUTATING.len() {
        if str_eq(MUTATING[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// The methods that change state (POST only, CSRF-checked for cookie
/// sessions). Everything else only reads (GET or POST).
pub const MUTATING: &[&str] = &[
    "submit_session",
    "submit_review_session",
    "set_time_zone",
    "claim_quest_reward",
    "set_academic_profile",
    "request_purchase",
    "approve_purchase_request",
    "reject_purchase_request",
    "rebuild_season_cache",
    "trigger_reconciliation",
    "archive_season",
    "delete_eligible_archived_records",
    "refit_fsrs_params",
    "create_season",
    "activate_season",
    "update_season",
    "import_content",
    "create_user",
    "create_api_key",
];

/// Every method the server answers.
pub const METHODS: &[MethodSpec] = &[
    m!(
        "get_subjects",
        "subjects",
        User,
        [],
        "Subjects of the learner's academic plan"
    ),
    m!(
        "get_my_subjects",
        "subjects",
        User,
        [],
        "Subjects of the learner's plan with display names"
    ),
    m!(
        "get_game_tracks",
        "subjects",
        User,
        ["subject"],
        "Published tracks of a subject"
    ),
    m!(
        "get_map_data",
        "map_engine",
        User,
        ["subject", "track"],
        "Learning map with statuses"
    ),
    m!(
        "get_track_details",
        "map_engine",
        User,
        ["track", "subject", "is_track_linear"],
        "Units of a track with progress"
    ),
    m!(
        "get_topic_details",
        "map_engine",
        User,
        ["topic_id"],
        "Lessons of a topic with statuses"
    ),
    m!(
        "get_unit_topics",
        "map_engine",
        User,
        ["unit_id", "unit", "subject", "track"],
        "Topics of a unit with progress"
    ),
    m!(
        "get_lesson_details",
        "sessions",
        User,
        ["lesson_id"],
        "Lesson stages (subscription or free preview required)"
    ),
    m!(
        "submit_session",
        "sessions",
        User,
        ["session_meta", "gamification_results", "interactions"],
        "Record a lesson play: XP, score, SRS"
    ),
    m!(
        "get_review_session",
        "reviews",
        User,
        ["subject", "topic_id", "limit"],
        "Due review questions"
    ),
    m!(
        "submit_review_session",
        "reviews",
        User,
        ["session_data", "responses"],
        "Submit review answers"
    ),
    m!(
        "get_persistence_status",
        "reviews",
        User,
        ["job_id"],
        "Status of a persistence job"
    ),
    m!("get_player_profile", "profile", User, [], "Basic profile"),
    m!(
        "get_full_profile_stats",
        "profile",
        User,
        ["subject"],
        "Level, streak, weekly activity, mastery"
    ),
    m!(
        "get_player_login_info",
        "profile",
        User,
        [],
        "Profile summary for the logged-in user"
    ),
    m!(
        "set_time_zone",
        "profile",
        User,
        ["time_zone", "rollover_hour"],
        "Set the learner's time zone and day rollover"
    ),
    m!(
        "get_daily_quests",
        "quests",
        User,
        ["subject"],
        "Today's quests"
    ),
    m!(
        "claim_quest_reward",
        "quests",
        User,
        ["quest_id"],
        "Claim a completed quest's XP once"
    ),
    m!(
        "get_leaderboard",
        "leaderboard",
        User,
        ["subject", "period"],
        "Rankings (daily, weekly, monthly, all_time)"
    ),
    m!(
        "get_academic_masters",
        "onboarding",
        User,
        [],
        "Grades, streams and seasons"
    ),
    m!(
        "set_academic_profile",
        "onboarding",
        User,
        ["grade", "stream", "season", "academic_year"],
        "Set grade, stream and season"
    ),
    m!(
        "get_store_items",
        "store",
        User,
        [],
        "Items this learner can buy"
    ),
    m!(
        "request_purchase",
        "store",
        User,
        ["item_id", "payment_method", "transaction_id"],
        "Request a purchase (admin approval)"
    ),
    m!(
        "list_purchase_requests",
        "store",
        Admin,
        ["status"],
        "Purchase requests"
    ),
    m!(
        "approve_purchase_request",
        "store",
        Admin,
        ["request_id"],
        "Approve and grant the subscription"
    ),
    m!(
        "reject_purchase_request",
        "store",
        Admin,
        ["request_id"],
        "Reject a purchase request"
    ),
    m!(
        "get_user_access_keys",
        "user_access",
        User,
        [],
        "Subjects/tracks the learner may open"
    ),
    m!(
        "get_student_plan_version",
        "user_access",
        User,
        ["user"],
        "Plan version of a student (self or admin)"
    ),
    m!(
        "get_plan_version",
        "user_access",
        Guest,
        ["grade", "season", "stream"],
        "Plan version for grade/season/stream"
    ),
    m!(
        "get_cache_status",
        "srs",
        Admin,
        [],
        "Cache health and key counts"
    ),
    m!(
        "rebuild_season_cache",
        "srs",
        Admin,
        ["season_name", "season"],
        "Rebuild a season's cache in the background"
    ),
    m!(
        "get_rebuild_status",
        "srs",
        Admin,
        ["job_id"],
        "Progress of a cache rebuild"
    ),
    m!(
        "trigger_reconciliation",
        "srs",
        Admin,
        ["sample_size", "season"],
        "Compare cache and database and correct"
    ),
    m!(
        "archive_season",
        "srs",
        Admin,
        ["season_name", "season", "confirm"],
        "Archive a finished season"
    ),
    m!(
        "get_archive_status",
        "srs",
        Admin,
        ["season_name", "season"],
        "Archive counts of a season"
    ),
    m!(
        "delete_eligible_archived_records",
        "srs",
        Admin,
        ["season_name", "confirm"],
        "Delete archived rows past retention"
    ),
    m!(
        "refit_fsrs_params",
        "srs",
        Admin,
        ["user"],
        "Fit a learner's FSRS-6 parameters"
    ),
    m!("list_seasons", "admin", Admin, [], "All seasons"),
    m!(
        "create_season",
        "admin",
        Admin,
        [
            "season_name",
            "title",
            "start_date",
            "end_date",
            "scheduler",
            "desired_retention",
            "auto_archive"
        ],
        "Create a season and its partition"
    ),
    m!(
        "activate_season",
        "admin",
        Admin,
        ["season_name"],
        "Make a season the active one"
    ),
    m!(
        "update_season",
        "admin",
        Admin,
        [
            "season_name",
            "scheduler",
            "desired_retention",
            "enable_redis",
            "auto_archive"
        ],
        "Change season settings"
    ),
    m!(
        "import_content",
        "admin",
        Admin,
        ["bundle"],
        "Import a content bundle (JSON)"
    ),
    m!(
        "create_user",
        "admin",
        Admin,
        ["email", "full_name", "roles", "password"],
        "Create a user"
    ),
    m!(
        "create_api_key",
        "admin",
        Admin,
        ["user"],
        "Create an API key (secret shown once)"
    ),
];

/// Resolves `memora.api.<module>.<fn>` / `memora.api.<fn>` to a method.
pub fn resolve(path: &str) -> Option<&'static MethodSpec> {
    let rest = path.strip_prefix("memora.api.")?;
    let (module, name) = match rest.rsplit_once('.') {
        Some((m, n)) => (Some(m), n),
        None => (None, rest),
    };
    METHODS
        .iter()
        .find(|m| m.name == name && module.is_none_or(|x| x == m.module))
}

/// Checks the caller against the method's access rule.
pub fn authorize(spec: &MethodSpec, actor: Option<&Actor>) -> Result<(), ApiError> {
    match (spec.access, actor) {
        (Access::Guest, _) => Ok(()),
        (_, None) => Err(memora_core::CoreError::Unauthenticated.into()),
        (Access::User, Some(_)) => Ok(()),
        (Access::Admin, Some(a)) => a.require_admin().map_err(ApiError::from),
    }
}

/// Arguments plus caller for a handler.
pub struct Call<'a> {
    /// Arguments.
    pub args: &'a Args,
    /// Caller (None only for Guest methods).
    pub actor: Option<&'a Actor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_long_and_short_paths() {
        assert_eq!(
            resolve("memora.api.reviews.get_review_session")
                .unwrap()
                .name,
            "get_review_session"
        );
        assert_eq!(
            resolve("memora.api.get_review_session").unwrap().name,
            "get_review_session"
        );
        assert!(resolve("memora.api.profile.get_review_session").is_none());
        assert!(resolve("memora.api.nope").is_none());
        assert!(resolve("frappe.client.get").is_none());
        let names: std::collections::HashSet<_> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), METHODS.len(), "method names are unique");
        for m in MUTATING {
            assert!(
                names.contains(m),
                "{m} is listed as mutating but is not a method"
            );
        }
        assert!(resolve("memora.api.admin.create_user").unwrap().mutates);
        assert!(
            !resolve("memora.api.reviews.get_review_session")
                .unwrap()
                .mutates
        );
    }
}
