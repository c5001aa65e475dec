//! Store, purchase requests and access keys; the System Manager's store
//! items and subscriptions.

use memora_core::domain::{
    AccessGrant, PurchaseStatus, SalesItem, SubscriptionKind, SubscriptionStatus,
};
use memora_core::ids::*;
use memora_core::ports::SubscriptionQuery;
use memora_core::services::store::{PurchaseDecision, PurchaseOutcome};
use memora_core::services::store_admin::{
    GrantScope, SalesItemInput, SalesItemPatch, StatusChange, SubscriptionGrant, SubscriptionView,
};
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

// ───────────────────────── store administration ─────────────────────────

/// Kind of a grant.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum GrantKindArg {
    /// A whole subject (except tracks sold separately).
    #[serde(alias = "subject", alias = "SUBJECT")]
    Subject,
    /// One track.
    #[serde(alias = "track", alias = "TRACK")]
    Track,
}

/// One subject or track a store item or subscription opens.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct GrantArg {
    /// `Subject` or `Track`.
    #[serde(rename = "type")]
    pub kind: GrantKindArg,
    /// Subject or track id (also `subject` / `track`, as listed).
    #[serde(alias = "subject", alias = "track")]
    pub id: String,
}

fn grants(v: Vec<GrantArg>) -> Result<Vec<AccessGrant>, ApiError> {
    v.into_iter()
        .map(|g| {
            Ok(match g.kind {
                GrantKindArg::Subject => AccessGrant::Subject(id(SubjectId::new(g.id))?),
                GrantKindArg::Track => AccessGrant::Track(id(TrackId::new(g.id))?),
            })
        })
        .collect()
}

/// A store item as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreItemDto {
    /// Item id.
    pub id: String,
    /// Item id (Frappe `name`).
    pub name: String,
    /// Display name.
    pub item_name: String,
    /// Description.
    pub description: Option<String>,
    /// Price (minor units).
    pub price: i64,
    /// Discounted price.
    pub discounted_price: Option<i64>,
    /// Image URL.
    pub image: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// Season of the access it sells.
    pub season: String,
    /// Only shown to this grade.
    pub target_grade: Option<String>,
    /// Only shown to these streams.
    pub target_streams: Vec<String>,
    /// What it opens.
    pub contents: Vec<GrantDto>,
    /// On sale.
    pub is_active: bool,
}

impl From<&SalesItem> for StoreItemDto {
    fn from(i: &SalesItem) -> Self {
        StoreItemDto {
            id: i.id.as_str().to_owned(),
            name: i.id.as_str().to_owned(),
            item_name: i.name.clone(),
            description: i.description.clone(),
            price: i.price,
            discounted_price: i.discounted_price,
            image: i.image.clone(),
            sku: i.sku.clone(),
            season: i.season.as_str().to_owned(),
            target_grade: i.target_grade.as_ref().map(|g| g.as_str().to_owned()),
            target_streams: i
                .target_streams
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            contents: i.contents.iter().map(GrantDto::from).collect(),
            is_active: i.is_active,
        }
    }
}

method!(
    /// `list_store_items`.
    ListStoreItems = "list_store_items" in "store", Admin, Read,
    "Every store item, on sale or not (price ascending)",
    NoArgs => Vec<StoreItemDto>,
    |app, ctx, _req| {
        let v = app.commerce().list_sales_items(ctx.actor()?).await?;
        Ok(v.iter().map(StoreItemDto::from).collect())
    }
);

/// Arguments of `create_store_item`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateItemArgs {
    /// Item id (generated if absent).
    #[serde(default, alias = "name", deserialize_with = "de::opt_string")]
    pub item_id: Option<String>,
    /// Display name.
    #[serde(deserialize_with = "de::string")]
    pub item_name: String,
    /// Description.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Price in minor units (≥ 0).
    #[serde(deserialize_with = "de::opt_i64")]
    #[schema(value_type = i64)]
    pub price: Option<i64>,
    /// Discounted price (0 ≤ discount ≤ price).
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub discounted_price: Option<i64>,
    /// Image URL.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub image: Option<String>,
    /// SKU.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub sku: Option<String>,
    /// Season of the access (also `linked_season`).
    #[serde(alias = "linked_season", deserialize_with = "de::string")]
    pub season: String,
    /// Only shown to this grade.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub target_grade: Option<String>,
    /// Only shown to these streams.
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub target_streams: Option<Vec<String>>,
    /// What it opens (also `bundle_contents`).
    #[serde(alias = "bundle_contents", deserialize_with = "de::json_or_string")]
    pub contents: Vec<GrantArg>,
    /// On sale right away (default true).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_active: Option<bool>,
}

fn opt_ids<T>(
    v: Option<Vec<String>>,
    f: fn(String) -> Result<T, memora_core::CoreError>,
) -> Result<Option<Vec<T>>, ApiError> {
    v.map(|v| v.into_iter().map(|s| id(f(s))).collect())
        .transpose()
}

method!(
    /// `create_store_item`.
    CreateStoreItem = "create_store_item" in "store", Admin, Write,
    "Create a store item (validated; audited)",
    CreateItemArgs => StoreItemDto,
    |app, ctx, req| {
        let price = req
            .price
            .ok_or_else(|| ApiError::bad("missing required argument `price`"))?;
        let input = SalesItemInput {
            id: opt_id(req.item_id, SalesItemId::new)?,
            name: req.item_name,
            description: req.description,
            price,
            discounted_price: req.discounted_price,
            image: req.image,
            sku: req.sku,
            season: id(SeasonId::new(req.season))?,
            target_grade: opt_id(req.target_grade, GradeId::new)?,
            target_streams: opt_ids(req.target_streams, StreamId::new)?.unwrap_or_default(),
            contents: grants(req.contents)?,
            is_active: req.is_active.unwrap_or(true),
        };
        let item = app.commerce().create_sales_item(ctx.actor()?, input).await?;
        Ok(StoreItemDto::from(&item))
    }
);

/// Fields `update_store_item` can clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClearableField {
    /// Description.
    Description,
    /// Discounted price.
    DiscountedPrice,
    /// Image.
    Image,
    /// SKU.
    Sku,
    /// Target grade.
    TargetGrade,
    /// Target streams.
    TargetStreams,
}

/// Arguments of `update_store_item`: only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateItemArgs {
    /// Item id (also `name`).
    #[serde(alias = "name", deserialize_with = "de::string")]
    pub item_id: String,
    /// Display name.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub item_name: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Price.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub price: Option<i64>,
    /// Discounted price.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub discounted_price: Option<i64>,
    /// Image URL.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub image: Option<String>,
    /// SKU.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub sku: Option<String>,
    /// Season (also `linked_season`).
    #[serde(default, alias = "linked_season", deserialize_with = "de::opt_string")]
    pub season: Option<String>,
    /// Target grade.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub target_grade: Option<String>,
    /// Target streams (replaced).
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub target_streams: Option<Vec<String>>,
    /// Contents (replaced; also `bundle_contents`).
    #[serde(
        default,
        alias = "bundle_contents",
        deserialize_with = "de::opt_json_or_string"
    )]
    pub contents: Option<Vec<GrantArg>>,
    /// On sale.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_active: Option<bool>,
    /// Optional fields to clear (empty values count as not sent).
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub clear: Option<Vec<ClearableField>>,
}

method!(
    /// `update_store_item`.
    UpdateStoreItem = "update_store_item" in "store", Admin, Write,
    "Change a store item (validated as a whole; audited)",
    UpdateItemArgs => StoreItemDto,
    |app, ctx, req| {
        let item = id(SalesItemId::new(req.item_id))?;
        let clear = req.clear.unwrap_or_default();
        let clears = |f: ClearableField| clear.contains(&f);
        let pick = |clear: bool, v: Option<String>| if clear { Some(None) } else { v.map(Some) };
        let patch = SalesItemPatch {
            name: req.item_name,
            description: pick(clears(ClearableField::Description), req.description),
            price: req.price,
            discounted_price: if clears(ClearableField::DiscountedPrice) {
                Some(None)
            } else {
                req.discounted_price.map(Some)
            },
            image: pick(clears(ClearableField::Image), req.image),
            sku: pick(clears(ClearableField::Sku), req.sku),
            season: opt_id(req.season, SeasonId::new)?,
            target_grade: if clears(ClearableField::TargetGrade) {
                Some(None)
            } else {
                opt_id(req.target_grade, GradeId::new)?.map(Some)
            },
            target_streams: if clears(ClearableField::TargetStreams) {
                Some(Vec::new())
            } else {
                opt_ids(req.target_streams, StreamId::new)?
            },
            contents: req.contents.map(grants).transpose()?,
            is_active: req.is_active,
        };
        let item = app.commerce().update_sales_item(ctx.actor()?, &item, patch).await?;
        Ok(StoreItemDto::from(&item))
    }
);

/// Arguments naming a store item.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ItemArg {
    /// Item id (also `name`).
    #[serde(alias = "name", deserialize_with = "de::string")]
    pub item_id: String,
}

method!(
    /// `unpublish_store_item`.
    UnpublishStoreItem = "unpublish_store_item" in "store", Admin, Write,
    "Take a store item off sale (kept for its requests and subscriptions; audited)",
    ItemArg => StoreItemDto,
    |app, ctx, req| {
        let item = id(SalesItemId::new(req.item_id))?;
        let item = app.commerce().unpublish_sales_item(ctx.actor()?, &item).await?;
        Ok(StoreItemDto::from(&item))
    }
);

/// A subscription as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionDto {
    /// Subscription id.
    pub id: String,
    /// Learner.
    pub user: String,
    /// Season.
    pub season: String,
    /// `global` or `specific`.
    pub kind: String,
    /// `active`, `suspended` or `expired`.
    pub status: String,
    /// Whether it opens content today (active, season running, end date
    /// not passed).
    pub in_force: bool,
    /// What it opens (specific subscriptions).
    pub grants: Vec<GrantDto>,
    /// Last day of access, when earlier than the season's end.
    pub end_date: Option<String>,
    /// The purchase request it came from, if any.
    pub source_request: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
}

impl From<&SubscriptionView> for SubscriptionDto {
    fn from(v: &SubscriptionView) -> Self {
        let s = &v.subscription;
        SubscriptionDto {
            id: s.id.as_str().to_owned(),
            user: s.user.as_str().to_owned(),
            season: s.season.as_str().to_owned(),
            kind: match s.kind {
                SubscriptionKind::Global => "global",
                SubscriptionKind::Specific => "specific",
            }
            .to_owned(),
            status: s.status.as_str().to_owned(),
            in_force: v.in_force,
            grants: s.grants.iter().map(GrantDto::from).collect(),
            end_date: s.ends_on.map(|d| d.to_string()),
            source_request: s.source_request.as_ref().map(|r| r.as_str().to_owned()),
            created_at: s.created_at.to_rfc3339(),
        }
    }
}

/// Arguments of `list_subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListSubscriptionsArgs {
    /// Only this learner's.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub user: Option<String>,
    /// Only `active`, `suspended` or `expired` ones.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    /// Page after this subscription id (`next_after` of the previous page).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub after: Option<String>,
    /// Page size (1–500, default 50).
    #[serde(default, deserialize_with = "de::opt_u64")]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPageDto {
    /// Subscriptions by id.
    pub subscriptions: Vec<SubscriptionDto>,
    /// Pass as `after` for the next page (null on the last page).
    pub next_after: Option<String>,
}

fn status_arg(s: &str) -> Result<SubscriptionStatus, ApiError> {
    SubscriptionStatus::parse(s).ok_or_else(|| {
        ApiError::bad(format!(
            "argument 'status': expected active, suspended or expired, got \"{s}\""
        ))
    })
}

method!(
    /// `list_subscriptions`.
    ListSubscriptions = "list_subscriptions" in "store", Admin, Read,
    "Subscriptions by user and/or status (keyset pages)",
    ListSubscriptionsArgs => SubscriptionPageDto,
    |app, ctx, req| {
        let limit = usize::try_from(req.limit.unwrap_or(50)).unwrap_or(usize::MAX);
        let query = SubscriptionQuery {
            user: opt_id(req.user, UserId::new)?,
            status: req.status.as_deref().map(status_arg).transpose()?,
            after: opt_id(req.after, SubscriptionId::new)?,
            limit,
        };
        let v = app.commerce().list_subscriptions(ctx.actor()?, &query).await?;
        let next_after = (v.len() == limit)
            .then(|| v.last().map(|s| s.subscription.id.as_str().to_owned()))
            .flatten();
        Ok(SubscriptionPageDto {
            subscriptions: v.iter().map(SubscriptionDto::from).collect(),
            next_after,
        })
    }
);

/// Arguments of `grant_subscription`: a store item, or a season with
/// `global` or explicit `grants`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GrantArgs {
    /// The learner (e-mail).
    #[serde(deserialize_with = "de::string")]
    pub user: String,
    /// Grant what this store item sells (its season and contents).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub item_id: Option<String>,
    /// Season (without `item_id`).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub season: Option<String>,
    /// Everything in the season (without `item_id`).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub global: Option<bool>,
    /// What it opens (without `item_id` and `global`).
    #[serde(default, deserialize_with = "de::opt_json_or_string")]
    pub grants: Option<Vec<GrantArg>>,
    /// Last day of access (YYYY-MM-DD; default the season's last day).
    #[serde(default)]
    #[schema(format = Date, value_type = Option<String>)]
    pub end_date: Option<chrono::NaiveDate>,
}

method!(
    /// `grant_subscription`.
    GrantSubscription = "grant_subscription" in "store", Admin, Write,
    "Grant a subscription without a purchase (audited)",
    GrantArgs => SubscriptionDto,
    |app, ctx, req| {
        let global = req.global.unwrap_or(false);
        let scope = match (req.item_id, req.season) {
            (Some(item), None) if !global && req.grants.is_none() => {
                GrantScope::Item(id(SalesItemId::new(item))?)
            }
            (Some(_), _) => {
                return Err(ApiError::bad(
                    "item_id grants what the item sells: send it without season, global or grants",
                ));
            }
            (None, Some(season)) => {
                let season = id(SeasonId::new(season))?;
                match (global, req.grants) {
                    (true, None) => GrantScope::Global(season),
                    (false, Some(g)) => GrantScope::Specific(season, grants(g)?),
                    (true, Some(_)) => {
                        return Err(ApiError::bad("global excludes grants"));
                    }
                    (false, None) => {
                        return Err(ApiError::bad("send grants, or global=true"));
                    }
                }
            }
            (None, None) => {
                return Err(ApiError::bad(
                    "send item_id, or season with grants or global=true",
                ));
            }
        };
        let grant = SubscriptionGrant {
            user: id(UserId::new(req.user))?,
            scope,
            ends_on: req.end_date,
        };
        let v = app.commerce().grant_subscription(ctx.actor()?, &grant).await?;
        Ok(SubscriptionDto::from(&v))
    }
);

/// Arguments of a subscription status change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionArg {
    /// Subscription id (also `name`).
    #[serde(alias = "name", deserialize_with = "de::string")]
    pub subscription_id: String,
    /// Why (kept in the audit log).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub reason: Option<String>,
}

async fn change(
    app: &memora_core::Memora,
    ctx: &crate::api::Ctx,
    req: SubscriptionArg,
    change: StatusChange,
) -> Result<SubscriptionDto, ApiError> {
    let sub = id(SubscriptionId::new(req.subscription_id))?;
    let v = app
        .commerce()
        .change_subscription_status(ctx.actor()?, &sub, change, req.reason.as_deref())
        .await?;
    Ok(SubscriptionDto::from(&v))
}

method!(
    /// `suspend_subscription`.
    SuspendSubscription = "suspend_subscription" in "store", Admin, Write,
    "Suspend an active subscription (access stops at once; audited)",
    SubscriptionArg => SubscriptionDto,
    |app, ctx, req| { change(app, ctx, req, StatusChange::Suspend).await }
);

method!(
    /// `resume_subscription`.
    ResumeSubscription = "resume_subscription" in "store", Admin, Write,
    "Resume a suspended subscription (audited)",
    SubscriptionArg => SubscriptionDto,
    |app, ctx, req| { change(app, ctx, req, StatusChange::Resume).await }
);

method!(
    /// `expire_subscription`.
    ExpireSubscription = "expire_subscription" in "store", Admin, Write,
    "End a subscription for good (access stops at once; audited)",
    SubscriptionArg => SubscriptionDto,
    |app, ctx, req| { change(app, ctx, req, StatusChange::Expire).await }
);
