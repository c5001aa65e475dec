//! Every API method: request type, response type and handler, grouped by
//! area. [`METHODS`] is the registry (see [`super`]).

mod admin;
mod commerce;
mod gamification;
mod learning;
mod platform;
mod queue;
mod reviews;
mod session;

use serde::Deserialize;
use utoipa::ToSchema;

use super::{MethodSpec, spec};

/// Declares one method: a unit type implementing [`super::ApiMethod`].
macro_rules! method {
    (
        $(#[$doc:meta])*
        $ty:ident = $name:literal in $module:literal, $($rest:tt)*
    ) => {
        $crate::api::methods::method!(@impl $(#[$doc])* $ty, $name, $module, None, $($rest)*);
    };
    (
        $(#[$doc:meta])*
        $ty:ident = $name:literal at $path:literal, $($rest:tt)*
    ) => {
        $crate::api::methods::method!(@impl $(#[$doc])* $ty, $name, "auth", Some($path), $($rest)*);
    };
    (
        @impl $(#[$doc:meta])* $ty:ident, $name:literal, $module:literal, $path:expr,
        $access:ident, $verbs:ident,
        $summary:literal,
        $req:ty => $resp:ty,
        |$app:pat_param, $ctx:pat_param, $r:pat_param| $body:block
    ) => {
        $(#[$doc])*
        pub struct $ty;
        impl $crate::api::ApiMethod for $ty {
            const NAME: &'static str = $name;
            const MODULE: &'static str = $module;
            const PATH: Option<&'static str> = $path;
            const ACCESS: $crate::api::Access = $crate::api::Access::$access;
            const VERBS: $crate::api::Verbs = $crate::api::Verbs::$verbs;
            const SUMMARY: &'static str = $summary;
            type Req = $req;
            type Resp = $resp;
            async fn call(
                $app: &std::sync::Arc<memora_core::Memora>,
                $ctx: &$crate::api::Ctx,
                $r: $req,
            ) -> Result<$resp, $crate::error::ApiError> $body
        }
    };
}
pub(crate) use method;

/// Arguments of a method that takes none (stray arguments such as
/// Frappe's `cmd` are ignored).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NoArgs {}

/// Every method the server answers: the one list behind dispatch, roles,
/// CSRF and the OpenAPI document.
pub const METHODS: &[MethodSpec] = &[
    spec::<session::Login>(),
    spec::<session::Logout>(),
    spec::<session::GetLoggedUser>(),
    spec::<learning::GetSubjects>(),
    spec::<learning::GetMySubjects>(),
    spec::<learning::GetGameTracks>(),
    spec::<learning::GetMapData>(),
    spec::<learning::GetTrackDetails>(),
    spec::<learning::GetTopicDetails>(),
    spec::<learning::GetUnitTopics>(),
    spec::<learning::GetLessonDetails>(),
    spec::<learning::SubmitSession>(),
    spec::<reviews::GetReviewSession>(),
    spec::<reviews::SubmitReviewSession>(),
    spec::<reviews::GetPersistenceStatus>(),
    spec::<gamification::GetPlayerProfile>(),
    spec::<gamification::GetFullProfileStats>(),
    spec::<gamification::GetPlayerLoginInfo>(),
    spec::<gamification::SetTimeZone>(),
    spec::<gamification::GetDailyQuests>(),
    spec::<gamification::ClaimQuestReward>(),
    spec::<gamification::GetLeaderboard>(),
    spec::<gamification::GetAcademicMasters>(),
    spec::<gamification::SetAcademicProfile>(),
    spec::<commerce::GetStoreItems>(),
    spec::<commerce::RequestPurchase>(),
    spec::<commerce::ListPurchaseRequests>(),
    spec::<commerce::ApprovePurchaseRequest>(),
    spec::<commerce::RejectPurchaseRequest>(),
    spec::<commerce::GetUserAccessKeys>(),
    spec::<commerce::GetStudentPlanVersion>(),
    spec::<commerce::GetPlanVersion>(),
    spec::<commerce::ListStoreItems>(),
    spec::<commerce::CreateStoreItem>(),
    spec::<commerce::UpdateStoreItem>(),
    spec::<commerce::UnpublishStoreItem>(),
    spec::<commerce::ListSubscriptions>(),
    spec::<commerce::GrantSubscription>(),
    spec::<commerce::SuspendSubscription>(),
    spec::<commerce::ResumeSubscription>(),
    spec::<commerce::ExpireSubscription>(),
    spec::<admin::GetCacheStatus>(),
    spec::<admin::RebuildSeasonCache>(),
    spec::<admin::GetRebuildStatus>(),
    spec::<admin::TriggerReconciliation>(),
    spec::<queue::ListDeadLetters>(),
    spec::<queue::GetDeadLetter>(),
    spec::<queue::ReplayDeadLetters>(),
    spec::<queue::DiscardDeadLetter>(),
    spec::<admin::ArchiveSeason>(),
    spec::<admin::GetArchiveStatus>(),
    spec::<admin::DeleteEligibleArchivedRecords>(),
    spec::<admin::RefitFsrsParams>(),
    spec::<admin::ListSeasons>(),
    spec::<admin::CreateSeason>(),
    spec::<admin::ActivateSeason>(),
    spec::<admin::UpdateSeason>(),
    spec::<admin::ImportContent>(),
    spec::<admin::GetCatalogVersion>(),
    spec::<admin::CreateUser>(),
    spec::<admin::CreateApiKey>(),
    spec::<admin::GetAuditLog>(),
    spec::<admin::GetJobRuns>(),
    spec::<admin::GetLearningInsight>(),
    spec::<admin::AdoptSharedContent>(),
    spec::<admin::GetDevicePolicy>(),
    spec::<admin::SetDevicePolicy>(),
    spec::<session::RegisterDevice>(),
    spec::<session::GetMyDevices>(),
    spec::<session::RevokeDevice>(),
    spec::<platform::CreateInstitution>(),
    spec::<platform::GetInstitutions>(),
    spec::<platform::SuspendInstitution>(),
    spec::<platform::ResumeInstitution>(),
    spec::<platform::GetMyInstitution>(),
];

/// Parses an id newtype, mapping its validation error to a 400.
pub(crate) fn id<T>(r: Result<T, memora_core::CoreError>) -> Result<T, crate::error::ApiError> {
    r.map_err(crate::error::ApiError::from)
}

/// Parses an optional id.
pub(crate) fn opt_id<T>(
    v: Option<String>,
    f: fn(String) -> Result<T, memora_core::CoreError>,
) -> Result<Option<T>, crate::error::ApiError> {
    v.map(f).transpose().map_err(crate::error::ApiError::from)
}
