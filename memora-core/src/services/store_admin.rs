//! Store administration (System Manager only; every change audited): sales
//! items — created, updated and unpublished, never deleted, because purchase
//! requests and subscriptions refer to them — and subscriptions — granted,
//! suspended, resumed, expired and listed.
//!
//! Access follows a change at once: access keys are read from the store on
//! every check ([`CommerceService::access_keys`]), and the served-set checks
//! of answers and lesson plays use them, so a suspended or expired
//! subscription opens nothing from the next request on.

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::ports::SubscriptionQuery;

use super::CommerceService;
use super::content::ContentIndex;

/// Largest page of `list_subscriptions`.
pub const MAX_SUBSCRIPTION_PAGE: usize = 500;

/// Fields of a new store item.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesItemInput {
    /// Id (generated if absent).
    pub id: Option<SalesItemId>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price in minor units (≥ 0).
    pub price: i64,
    /// Discounted price (0 ≤ discount ≤ price).
    pub discounted_price: Option<i64>,
    /// Image URL.
    pub image: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// Season the access belongs to (must exist, not archived).
    pub season: SeasonId,
    /// Only shown to this grade.
    pub target_grade: Option<GradeId>,
    /// Only shown to these streams.
    pub target_streams: Vec<StreamId>,
    /// What it opens (existing subjects / tracks, at least one).
    pub contents: Vec<AccessGrant>,
    /// On sale right away.
    pub is_active: bool,
}

/// Changes to a store item: `None` keeps a field; for optional fields
/// `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SalesItemPatch {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<Option<String>>,
    /// Price.
    pub price: Option<i64>,
    /// Discounted price.
    pub discounted_price: Option<Option<i64>>,
    /// Image.
    pub image: Option<Option<String>>,
    /// SKU.
    pub sku: Option<Option<String>>,
    /// Season.
    pub season: Option<SeasonId>,
    /// Target grade.
    pub target_grade: Option<Option<GradeId>>,
    /// Target streams (replaced as a whole).
    pub target_streams: Option<Vec<StreamId>>,
    /// Contents (replaced as a whole).
    pub contents: Option<Vec<AccessGrant>>,
    /// On sale.
    pub is_active: Option<bool>,
}

/// What an admin grant opens.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantScope {
    /// The season and contents of a store item (no purchase request).
    Item(SalesItemId),
    /// Everything, in a season.
    Global(SeasonId),
    /// The listed subjects / tracks, in a season.
    Specific(SeasonId, Vec<AccessGrant>),
}

/// An admin grant of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionGrant {
    /// The learner (an existing account).
    pub user: UserId,
    /// What it opens.
    pub scope: GrantScope,
    /// Last day of access (default: the season's last day); not in the
    /// past, not after the season's end.
    pub ends_on: Option<NaiveDate>,
}

/// A subscription and whether it opens content today.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionView {
    /// The subscription.
    pub subscription: Subscription,
    /// Active, its season running and its end date not passed.
    pub in_force: bool,
}

/// A subscription status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// Active → Suspended.
    Suspend,
    /// Suspended → Active.
    Resume,
    /// Active or Suspended → Expired (final).
    Expire,
}

impl StatusChange {
    fn rule(
        self,
    ) -> (
        &'static [SubscriptionStatus],
        SubscriptionStatus,
        &'static str,
    ) {
        use SubscriptionStatus::*;
        match self {
            StatusChange::Suspend => (&[Active], Suspended, "suspend"),
            StatusChange::Resume => (&[Suspended], Active, "resume"),
            StatusChange::Expire => (&[Active, Suspended], Expired, "expire"),
        }
    }
}

fn check_opt_text(field: &str, v: &Option<String>, max: usize) -> CoreResult<()> {
    match v {
        Some(s) => crate::text::check_text(field, s, max),
        None => Ok(()),
    }
}

/// Every grant names an existing subject or track, once.
fn check_grants(idx: &ContentIndex, field: &str, grants: &[AccessGrant]) -> CoreResult<()> {
    if grants.is_empty() {
        return Err(CoreError::invalid(format!(
            "{field} must list at least one subject or track"
        )));
    }
    let mut seen = HashSet::new();
    for g in grants {
        let missing = match g {
            AccessGrant::Subject(s) => idx.subject(s).is_none().then(|| format!("subject {s}")),
            AccessGrant::Track(t) => idx.track(t).is_none().then(|| format!("track {t}")),
        };
        if let Some(what) = missing {
            return Err(CoreError::invalid(format!(
                "{field}: {what} does not exist"
            )));
        }
        if !seen.insert(g) {
            return Err(CoreError::invalid(format!("{field} lists an entry twice")));
        }
    }
    Ok(())
}

impl CommerceService {
    async fn live_season(&self, id: &SeasonId) -> CoreResult<Season> {
        let season = self
            .shared
            .seasons()
            .await?
            .iter()
            .find(|s| &s.id == id)
            .cloned()
            .ok_or_else(|| CoreError::invalid(format!("season {id} does not exist")))?;
        if season.archived {
            return Err(CoreError::invalid_state(format!("season {id} is archived")));
        }
        Ok(season)
    }

    /// The whole item is valid: text, prices, season, targets, contents.
    async fn check_item(&self, item: &SalesItem) -> CoreResult<()> {
        if item.name.trim().is_empty() {
            return Err(CoreError::invalid("item_name must not be empty"));
        }
        crate::text::check_text("item_name", &item.name, 140)?;
        if let Some(d) = &item.description {
            crate::text::check_text_with("description", d, 4000, true)?;
        }
        check_opt_text("image", &item.image, 1000)?;
        check_opt_text("sku", &item.sku, 140)?;
        if item.price < 0 {
            return Err(CoreError::invalid(format!(
                "price must not be negative (got {})",
                item.price
            )));
        }
        if let Some(d) = item.discounted_price {
            if !(0..=item.price).contains(&d) {
                return Err(CoreError::invalid(format!(
                    "discounted_price must be between 0 and the price {} (got {d})",
                    item.price
                )));
            }
        }
        self.live_season(&item.season).await?;
        let idx = self.shared.catalog().await?;
        if let Some(g) = &item.target_grade {
            if idx.grade(g).is_none() {
                return Err(CoreError::invalid(format!(
                    "target_grade: grade {g} does not exist"
                )));
            }
        }
        for s in &item.target_streams {
            if !idx.catalog().streams.iter().any(|x| &x.id == s) {
                return Err(CoreError::invalid(format!(
                    "target_streams: stream {s} does not exist"
                )));
            }
        }
        check_grants(&idx, "contents", &item.contents)
    }

    /// Admin: every store item, on sale or not, price ascending.
    pub async fn list_sales_items(&self, actor: &Actor) -> CoreResult<Vec<SalesItem>> {
        actor.require_admin()?;
        Ok(self.commerce.list_sales_items().await?)
    }

    /// Admin: creates a store item (`Conflict` if the id exists).
    pub async fn create_sales_item(
        &self,
        actor: &Actor,
        input: SalesItemInput,
    ) -> CoreResult<SalesItem> {
        actor.require_admin()?;
        let id = match input.id {
            Some(id) => id,
            None => SalesItemId::new(self.shared.ids.next_id("ITEM"))?,
        };
        let item = SalesItem {
            id,
            name: input.name,
            description: input.description,
            price: input.price,
            discounted_price: input.discounted_price,
            image: input.image,
            sku: input.sku,
            season: input.season,
            target_grade: input.target_grade,
            target_streams: input.target_streams,
            contents: input.contents,
            is_active: input.is_active,
        };
        self.check_item(&item).await?;
        self.commerce.create_sales_item(&item).await?;
        self.shared
            .audit(
                actor,
                "store_item.create",
                serde_json::json!({
                    "item": item.id.as_str(),
                    "price": item.price,
                    "season": item.season.as_str(),
                    "active": item.is_active,
                }),
            )
            .await;
        Ok(item)
    }

    /// Admin: changes a store item; the result is validated as a whole.
    pub async fn update_sales_item(
        &self,
        actor: &Actor,
        id: &SalesItemId,
        patch: SalesItemPatch,
    ) -> CoreResult<SalesItem> {
        actor.require_admin()?;
        let mut item = self.item(id).await?;
        let before = item.clone();
        if let Some(v) = patch.name {
            item.name = v;
        }
        if let Some(v) = patch.description {
            item.description = v;
        }
        if let Some(v) = patch.price {
            item.price = v;
        }
        if let Some(v) = patch.discounted_price {
            item.discounted_price = v;
        }
        if let Some(v) = patch.image {
            item.image = v;
        }
        if let Some(v) = patch.sku {
            item.sku = v;
        }
        if let Some(v) = patch.season {
            item.season = v;
        }
        if let Some(v) = patch.target_grade {
            item.target_grade = v;
        }
        if let Some(v) = patch.target_streams {
            item.target_streams = v;
        }
        if let Some(v) = patch.contents {
            item.contents = v;
        }
        if let Some(v) = patch.is_active {
            item.is_active = v;
        }
        self.check_item(&item).await?;
        self.commerce.upsert_sales_item(&item).await?;
        self.shared
            .audit(
                actor,
                "store_item.update",
                serde_json::json!({
                    "item": item.id.as_str(),
                    "price": [before.price, item.price],
                    "active": [before.is_active, item.is_active],
                    "contents_changed": before.contents != item.contents,
                    "season_changed": before.season != item.season,
                }),
            )
            .await;
        Ok(item)
    }

    /// Admin: takes an item off sale (idempotent). Existing subscriptions
    /// and pending requests are untouched.
    pub async fn unpublish_sales_item(
        &self,
        actor: &Actor,
        id: &SalesItemId,
    ) -> CoreResult<SalesItem> {
        actor.require_admin()?;
        let mut item = self.item(id).await?;
        if item.is_active {
            item.is_active = false;
            self.commerce.upsert_sales_item(&item).await?;
        }
        self.shared
            .audit(
                actor,
                "store_item.unpublish",
                serde_json::json!({"item": item.id.as_str()}),
            )
            .await;
        Ok(item)
    }

    async fn item(&self, id: &SalesItemId) -> CoreResult<SalesItem> {
        self.commerce
            .get_sales_item(id)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("store item {id} not found")))
    }

    async fn view(&self, subscription: Subscription) -> CoreResult<SubscriptionView> {
        let seasons = self.shared.seasons().await?;
        let today = self.shared.now().date_naive();
        let season = seasons.iter().find(|s| s.id == subscription.season);
        Ok(SubscriptionView {
            in_force: subscription.in_force(season, today),
            subscription,
        })
    }

    /// Admin: subscriptions, optionally of one user and/or status, by id,
    /// a keyset page after `query.after` (`limit` 1–500).
    pub async fn list_subscriptions(
        &self,
        actor: &Actor,
        query: &SubscriptionQuery,
    ) -> CoreResult<Vec<SubscriptionView>> {
        actor.require_admin()?;
        if !(1..=MAX_SUBSCRIPTION_PAGE).contains(&query.limit) {
            return Err(CoreError::invalid(format!(
                "limit must be between 1 and {MAX_SUBSCRIPTION_PAGE}"
            )));
        }
        let mut out = Vec::new();
        for s in self.commerce.list_subscriptions(query).await? {
            out.push(self.view(s).await?);
        }
        Ok(out)
    }

    /// Admin: grants a subscription without a purchase request.
    pub async fn grant_subscription(
        &self,
        actor: &Actor,
        grant: &SubscriptionGrant,
    ) -> CoreResult<SubscriptionView> {
        actor.require_admin()?;
        if self.users.get_user(&grant.user).await?.is_none() {
            return Err(CoreError::not_found(format!(
                "user {} not found",
                grant.user
            )));
        }
        let (season, kind, grants, item) = match &grant.scope {
            GrantScope::Item(id) => {
                let item = self.item(id).await?;
                (
                    item.season,
                    SubscriptionKind::Specific,
                    item.contents,
                    Some(id.as_str()),
                )
            }
            GrantScope::Global(season) => {
                (season.clone(), SubscriptionKind::Global, Vec::new(), None)
            }
            GrantScope::Specific(season, grants) => {
                let idx = self.shared.catalog().await?;
                check_grants(&idx, "grants", grants)?;
                (
                    season.clone(),
                    SubscriptionKind::Specific,
                    grants.clone(),
                    None,
                )
            }
        };
        let season = self.live_season(&season).await?;
        let now = self.shared.now();
        let today = now.date_naive();
        if season.end_date < today {
            return Err(CoreError::invalid_state(format!(
                "season {} ended on {}",
                season.id, season.end_date
            )));
        }
        if let Some(end) = grant.ends_on {
            if end < today {
                return Err(CoreError::invalid(format!("end_date {end} is in the past")));
            }
            if end > season.end_date {
                return Err(CoreError::invalid(format!(
                    "end_date {end} is after the last day of season {} ({})",
                    season.id, season.end_date
                )));
            }
        }
        let sub = Subscription {
            id: SubscriptionId::new(self.shared.ids.next_id("SUB"))?,
            user: grant.user.clone(),
            season: season.id.clone(),
            kind,
            status: SubscriptionStatus::Active,
            grants,
            source_request: None,
            created_at: now,
            ends_on: grant.ends_on,
        };
        self.commerce.create_subscription(&sub).await?;
        self.shared
            .audit(
                actor,
                "subscription.grant",
                serde_json::json!({
                    "subscription": sub.id.as_str(),
                    "user": sub.user.as_str(),
                    "season": sub.season.as_str(),
                    "global": sub.kind == SubscriptionKind::Global,
                    "grants": sub.grants.len(),
                    "item": item,
                    "ends_on": sub.ends_on.map(|d| d.to_string()),
                }),
            )
            .await;
        self.view(sub).await
    }

    /// Admin: suspends, resumes or expires a subscription. Takes effect on
    /// the learner's next request. Refused (409) when the current status
    /// does not allow it or changed concurrently.
    pub async fn change_subscription_status(
        &self,
        actor: &Actor,
        id: &SubscriptionId,
        change: StatusChange,
        reason: Option<&str>,
    ) -> CoreResult<SubscriptionView> {
        actor.require_admin()?;
        if let Some(r) = reason {
            crate::text::check_text("reason", r, 500)?;
        }
        let mut sub = self
            .commerce
            .get_subscription(id)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("subscription {id} not found")))?;
        let (allowed, to, verb) = change.rule();
        if !allowed.contains(&sub.status) {
            return Err(CoreError::invalid_state(format!(
                "subscription {id} is {}: cannot {verb} it",
                sub.status.as_str()
            )));
        }
        if !self
            .commerce
            .set_subscription_status(id, sub.status, to)
            .await?
        {
            return Err(CoreError::conflict(format!(
                "subscription {id} changed meanwhile; reload it"
            )));
        }
        let from = sub.status;
        sub.status = to;
        self.shared
            .audit(
                actor,
                &format!("subscription.{verb}"),
                serde_json::json!({
                    "subscription": id.as_str(),
                    "user": sub.user.as_str(),
                    "from": from.as_str(),
                    "to": to.as_str(),
                    "reason": reason,
                }),
            )
            .await;
        self.view(sub).await
    }
}
