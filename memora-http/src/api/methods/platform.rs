//! Institutions (`memora.api.platform.*`): the platform operator creates,
//! lists, suspends and resumes them; every user can ask which institution
//! they belong to. See `docs/ARCHITECTURE.md`, "Institutions".

use memora_core::domain::{Institution, InstitutionId, InstitutionStatus};
use memora_core::ids::UserId;
use memora_core::services::platform::NewManager;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, id, method};
use crate::api::de;
use crate::error::ApiError;

/// An institution.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionDto {
    /// Id (`default` is the home institution).
    pub institution: String,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// When it was created (RFC 3339; absent for the home institution of a
    /// server that hosts a single one).
    #[schema(nullable)]
    pub created_at: Option<String>,
}

impl From<Institution> for InstitutionDto {
    fn from(i: Institution) -> Self {
        InstitutionDto {
            institution: i.id.as_str().to_owned(),
            name: i.name,
            status: i.status.as_str().to_owned(),
            created_at: Some(i.created_at.to_rfc3339()),
        }
    }
}

/// Arguments of `create_institution`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInstitutionArgs {
    /// Id: 2–32 characters of `a–z`, `0–9` and `-`, starting with a letter.
    #[serde(deserialize_with = "de::string")]
    pub institution: String,
    /// Display name.
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// The first manager's account name (an e-mail address; unique across
    /// the platform).
    #[serde(deserialize_with = "de::string")]
    pub manager: String,
    /// The manager's display name.
    #[serde(deserialize_with = "de::string")]
    pub manager_full_name: String,
    /// The manager's initial password (in the body, never in the URL;
    /// checked for strength).
    pub manager_password: String,
}

method!(
    /// `create_institution`.
    CreateInstitution = "create_institution" in "platform", Operator, Write,
    "Create an institution and its first manager (platform operator)",
    CreateInstitutionArgs => InstitutionDto,
    |_app, ctx, req| {
        if crate::args::Args::query_names(ctx.query.as_deref(), &["manager_password"]) {
            return Err(ApiError::bad(
                "send the password in the request body, never in the URL",
            ));
        }
        let platform = ctx.platform()?;
        let inst = id(InstitutionId::new(req.institution.trim()))?;
        let manager = NewManager {
            user: id(UserId::new(req.manager.trim()))?,
            full_name: req.manager_full_name,
            password: req.manager_password,
        };
        // Run to the end even if the request is cancelled (client gone,
        // request timeout): a creation stopped half-way would leave an
        // institution without its manager.
        let platform = std::sync::Arc::clone(platform);
        let actor = ctx.actor()?.clone();
        let from = ctx.institution.clone();
        let created = tokio::spawn(async move {
            platform
                .create_institution(&actor, &from, inst, &req.name, manager)
                .await
        })
        .await
        .map_err(|e| ApiError::Core(memora_core::CoreError::Internal(format!("creating the institution: {e}"))))??;
        Ok(created.into())
    }
);

method!(
    /// `get_institutions`.
    GetInstitutions = "get_institutions" in "platform", Operator, Read,
    "Every institution of the platform (platform operator)",
    NoArgs => Vec<InstitutionDto>,
    |_app, ctx, _req| {
        let list = ctx
            .platform()?
            .list_institutions(ctx.actor()?, &ctx.institution)
            .await?;
        Ok(list.into_iter().map(Into::into).collect())
    }
);

/// Arguments naming one institution.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InstitutionArg {
    /// Institution id.
    #[serde(deserialize_with = "de::string")]
    pub institution: String,
}

/// Suspends or resumes the institution `req` names (the operator).
async fn set_status(
    ctx: &crate::api::Ctx,
    req: &InstitutionArg,
    status: InstitutionStatus,
) -> Result<InstitutionDto, ApiError> {
    let inst = id(InstitutionId::new(req.institution.trim()))?;
    let i = ctx
        .platform()?
        .set_status(ctx.actor()?, &ctx.institution, &inst, status)
        .await?;
    Ok(i.into())
}

method!(
    /// `suspend_institution`.
    SuspendInstitution = "suspend_institution" in "platform", Operator, Write,
    "Suspend an institution: its users' logins and calls are refused, its data kept (platform operator)",
    InstitutionArg => InstitutionDto,
    |_app, ctx, req| { set_status(ctx, &req, InstitutionStatus::Suspended).await }
);

method!(
    /// `resume_institution`.
    ResumeInstitution = "resume_institution" in "platform", Operator, Write,
    "Resume a suspended institution (platform operator)",
    InstitutionArg => InstitutionDto,
    |_app, ctx, req| { set_status(ctx, &req, InstitutionStatus::Active).await }
);

method!(
    /// `get_my_institution`.
    GetMyInstitution = "get_my_institution" in "platform", User, Read,
    "The caller's institution",
    NoArgs => InstitutionDto,
    |_app, ctx, _req| {
        ctx.actor()?;
        let found = match &ctx.platform {
            Some(p) => p
                .directory()
                .list_institutions()
                .await
                .map_err(memora_core::CoreError::from)?
                .into_iter()
                .find(|i| i.id == ctx.institution),
            None => None,
        };
        Ok(match found {
            Some(i) => i.into(),
            None => InstitutionDto {
                institution: ctx.institution.as_str().to_owned(),
                name: if ctx.institution.is_home() {
                    "Home institution".into()
                } else {
                    ctx.institution.as_str().to_owned()
                },
                status: "active".into(),
                created_at: None,
            },
        })
    }
);
