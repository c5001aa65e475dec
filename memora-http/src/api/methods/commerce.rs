//! Store, purchase requests and access keys.

use memora_core::domain::PurchaseStatus;
use memora_core::ids::*;
use memora_core::services::store::{PurchaseDecision, PurchaseOutcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NoArgs, id, method, opt_id};
use crate::api::de;
use crate::api::dto::*;
use crate::error::ApiError;

method!(
    /// `get_store_items`.
    GetStoreItems = "get_store_items" in "store", User, Read,
    "Items this learner can buy",
    NoArgs => Vec<SalesItemDto>,
    |app, ctx, _req| {
        let v = app.commerce().get_store_items(ctx.actor()?).await?;
        Ok(v.iter().map(SalesItemDto::from).collect())
    }
);

/// Arguments of `request_purchase`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PurchaseArgs {
    /// Store item id (also `item`).
    #[serde(alias = "item", deserialize_with = "de::string")]
    pub item_id: String,
    /// Payment method.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub payment_method: Option<String>,
    /// Transaction reference.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub transaction_id: Option<String>,
}

/// Result of `request_purchase`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRequestedDto {
    /// `success` (created) or `pending` (one was already pending).
    pub status: String,
    /// Human message (Arabic, as the original).
    pub message: String,
    /// Request id.
    pub purchase_id: String,
}

method!(
    /// `request_purchase`.
    RequestPurchase = "request_purchase" in "store", User, Write,
    "Request a purchase (admin approval)",
    PurchaseArgs => PurchaseRequestedDto,
    |app, ctx, req| {
        let item = id(SalesItemId::new(req.item_id))?;
        let out = app
            .commerce()
            .request_purchase(ctx.actor()?, &item, req.payment_method, req.transaction_id)
            .await?;
        Ok(match out {
            PurchaseOutcome::Created(r) => PurchaseRequestedDto {
                status: "success".into(),
                message: "تم إرسال طلبك! سيتم تفعيل الاشتراك بعد مراجعة الإدارة.".into(),
                purchase_id: r.id.as_str().to_owned(),
            },
            PurchaseOutcome::AlreadyPending(r) => PurchaseRequestedDto {
                status: "pending".into(),
                message: "لديك طلب قيد المراجعة لهذه الباقة بالفعل.".into(),
                purchase_id: r.id.as_str().to_owned(),
            },
        })
    }
);

/// A purchase request status filter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum StatusFilter {
    /// Awaiting a decision.
    #[serde(alias = "pending", alias = "PENDING")]
    Pending,
    /// Approved.
    #[serde(alias = "approved", alias = "APPROVED")]
    Approved,
    /// Rejected.
    #[serde(alias = "rejected", alias = "REJECTED")]
    Rejected,
}

/// Arguments of `list_purchase_requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListPurchasesArgs {
    /// Only this status.
    #[serde(default)]
    pub status: Option<StatusFilter>,
}

method!(
    /// `list_purchase_requests`.
    ListPurchaseRequests = "list_purchase_requests" in "store", Admin, Read,
    "Purchase requests",
    ListPurchasesArgs => Vec<PurchaseDto>,
    |app, ctx, req| {
        let status = req.status.map(|s| match s {
            StatusFilter::Pending => PurchaseStatus::Pending,
            StatusFilter::Approved => PurchaseStatus::Approved,
            StatusFilter::Rejected => PurchaseStatus::Rejected,
        });
        let v = app.commerce().list_purchase_requests(ctx.actor()?, status).await?;
        Ok(v.iter().map(PurchaseDto::from).collect())
    }
);

/// Arguments naming a purchase request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestArg {
    /// Purchase request id (also `name`).
    #[serde(alias = "name", deserialize_with = "de::string")]
    pub request_id: String,
}

/// Result of a purchase decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionDto {
    /// New status.
    pub status: String,
    /// The request.
    pub request: PurchaseDto,
    /// Subscription granted (approvals).
    pub subscription_id: Option<String>,
}

async fn decide(
    app: &memora_core::Memora,
    ctx: &crate::api::Ctx,
    req: RequestArg,
    decision: PurchaseDecision,
) -> Result<DecisionDto, ApiError> {
    let request = id(PurchaseRequestId::new(req.request_id))?;
    let (r, sub) = app
        .commerce()
        .decide_purchase(ctx.actor()?, &request, decision)
        .await?;
    Ok(DecisionDto {
        status: r.status.as_str().to_owned(),
        request: PurchaseDto::from(&r),
        subscription_id: sub.as_ref().map(|s| s.id.as_str().to_owned()),
    })
}

method!(
    /// `approve_purchase_request`.
    ApprovePurchaseRequest = "approve_purchase_request" in "store", Admin, Write,
    "Approve and grant the subscription",
    RequestArg => DecisionDto,
    |app, ctx, req| { decide(app, ctx, req, PurchaseDecision::Approve).await }
);

method!(
    /// `reject_purchase_request`.
    RejectPurchaseRequest = "reject_purchase_request" in "store", Admin, Write,
    "Reject a purchase request",
    RequestArg => DecisionDto,
    |app, ctx, req| { decide(app, ctx, req, PurchaseDecision::Reject).await }
);

/// Result of `get_user_access_keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessKeysDto {
    /// Subjects the learner may open.
    pub subjects: Vec<String>,
    /// Tracks the learner may open.
    pub tracks: Vec<String>,
    /// 1 when everything is open (staff).
    pub is_global: u8,
    /// Plan version (changes when access changes).
    pub plan_version: i64,
}

method!(
    /// `get_user_access_keys`.
    GetUserAccessKeys = "get_user_access_keys" in "user_access", User, Read,
    "Subjects/tracks the learner may open",
    NoArgs => AccessKeysDto,
    |app, ctx, _req| {
        let (keys, version) = app.commerce().get_user_access_keys(ctx.actor()?).await?;
        Ok(AccessKeysDto {
            subjects: keys.subjects.iter().map(|s| s.as_str().to_owned()).collect(),
            tracks: keys.tracks.iter().map(|t| t.as_str().to_owned()).collect(),
            is_global: u8::from(keys.is_global),
            plan_version: version,
        })
    }
);

/// Arguments of `get_student_plan_version`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OptUserArg {
    /// Student (the caller if absent; others need the admin role).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub user: Option<String>,
}

method!(
    /// `get_student_plan_version`.
    GetStudentPlanVersion = "get_student_plan_version" in "user_access", User, Read,
    "Plan version of a student (self or admin)",
    OptUserArg => i64,
    |app, ctx, req| {
        let who = ctx.actor()?;
        let user = opt_id(req.user, UserId::new)?.unwrap_or_else(|| who.user.clone());
        Ok(app.commerce().get_student_plan_version(who, &user).await?)
    }
);

/// Arguments of `get_plan_version`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanArgs {
    /// Grade id.
    #[serde(deserialize_with = "de::string")]
    pub grade: String,
    /// Season id (also `academic_year`).
    #[serde(alias = "academic_year", deserialize_with = "de::string")]
    pub season: String,
    /// Stream id.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub stream: Option<String>,
}

/// Result of `get_plan_version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanVersionDto {
    /// Version.
    pub version: i64,
}

method!(
    /// `get_plan_version`.
    GetPlanVersion = "get_plan_version" in "user_access", Guest, Read,
    "Plan version for grade/season/stream",
    PlanArgs => PlanVersionDto,
    |app, _ctx, req| {
        let grade = id(GradeId::new(req.grade))?;
        let season = id(SeasonId::new(req.season))?;
        let stream = opt_id(req.stream, StreamId::new)?;
        Ok(PlanVersionDto {
            version: app.commerce().get_plan_version(&grade, &season, stream.as_ref()).await?,
        })
    }
);
