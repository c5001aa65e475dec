//! Store, purchases, subscriptions and access keys.
//!
//! Fixes over the original (§7 #28–#29): a subscription counts only while
//! its season has started and not ended; a subject grant does not open a
//! track sold separately; items of ended seasons are not listed; a bundle is
//! hidden only when *everything* in it is already owned; a request can be
//! approved once (double approval is a 409), and approval grants the
//! subscription in the same transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::domain::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::ports::{AuthStore, CommerceStore, Ports};

use super::shared::{Profiles, Shared};

/// Result of `request_purchase`.
#[derive(Debug, Clone, PartialEq)]
pub enum PurchaseOutcome {
    /// A new pending request.
    Created(PurchaseRequest),
    /// The user already has a pending request for the item.
    AlreadyPending(PurchaseRequest),
}

/// An admin's decision on a purchase request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseDecision {
    /// Approve and grant access.
    Approve,
    /// Reject.
    Reject,
}

/// Store, purchases, subscriptions and access keys, and their
/// administration ([`super::store_admin`]). Holds the commerce store and,
/// to check the users admins grant to, the account store; the review and
/// learning services read access keys through it.
pub struct CommerceService {
    pub(crate) shared: Arc<Shared>,
    pub(crate) profiles: Profiles,
    pub(crate) commerce: Arc<dyn CommerceStore>,
    /// Accounts (an admin grant must name an existing user).
    pub(crate) users: Arc<dyn AuthStore>,
}

impl CommerceService {
    pub(crate) fn new(ports: &Ports, shared: &Arc<Shared>, profiles: Profiles) -> Self {
        CommerceService {
            shared: Arc::clone(shared),
            profiles,
            commerce: Arc::clone(&ports.commerce),
            users: Arc::clone(&ports.auth),
        }
    }

    /// Access keys of a user: subscriptions in force today (active, season
    /// started and not ended, own end date not passed). Read from the store
    /// on every call, so a suspension or expiry takes effect at once.
    pub async fn access_keys(&self, user: &UserId) -> CoreResult<AccessKeys> {
        let subs = self.commerce.subscriptions_of(user).await?;
        if subs.is_empty() {
            return Ok(AccessKeys::default());
        }
        let seasons = self.shared.seasons().await?;
        let today = self.shared.now().date_naive();
        let mut keys = AccessKeys::default();
        let mut subjects = BTreeSet::new();
        let mut tracks = BTreeSet::new();
        for s in &subs {
            if !s.in_force(seasons.iter().find(|x| x.id == s.season), today) {
                continue;
            }
            match s.kind {
                SubscriptionKind::Global => keys.is_global = true,
                SubscriptionKind::Specific => {
                    for g in &s.grants {
                        match g {
                            AccessGrant::Subject(x) => {
                                subjects.insert(x.clone());
                            }
                            AccessGrant::Track(x) => {
                                tracks.insert(x.clone());
                            }
                        }
                    }
                }
            }
        }
        if !keys.is_global {
            keys.subjects = subjects.into_iter().collect();
            keys.tracks = tracks.into_iter().collect();
        }
        Ok(keys)
    }

    /// `get_user_access_keys`: access keys plus the learner's plan version.
    pub async fn get_user_access_keys(&self, actor: &Actor) -> CoreResult<(AccessKeys, i64)> {
        let keys = self.access_keys(&actor.user).await?;
        let version = self.student_plan_version(&actor.user).await?;
        Ok((keys, version))
    }

    async fn student_plan_version(&self, user: &UserId) -> CoreResult<i64> {
        let profile = self.profiles.or_default(user).await?;
        let idx = self.shared.catalog().await?;
        Ok(match (&profile.grade, &profile.season) {
            (Some(g), Some(s)) => idx
                .plan_for(g, profile.stream.as_ref(), s)
                .map(|p| p.version.max(1))
                .unwrap_or(1),
            _ => 1,
        })
    }

    /// `get_student_plan_version`: a student may only ask about themself.
    pub async fn get_student_plan_version(&self, actor: &Actor, user: &UserId) -> CoreResult<i64> {
        actor.require_self_or_admin(user)?;
        self.student_plan_version(user).await
    }

    /// `get_plan_version` for explicit (grade, season, stream?); 1 if no plan.
    pub async fn get_plan_version(
        &self,
        grade: &GradeId,
        season: &SeasonId,
        stream: Option<&StreamId>,
    ) -> CoreResult<i64> {
        let idx = self.shared.catalog().await?;
        Ok(idx
            .plan_for(grade, stream, season)
            .map(|p| p.version.max(1))
            .unwrap_or(1))
    }

    fn owns_all(idx: &super::ContentIndex, keys: &AccessKeys, item: &SalesItem) -> bool {
        !item.contents.is_empty()
            && item.contents.iter().all(|g| match g {
                AccessGrant::Subject(s) => keys.is_global || keys.subjects.contains(s),
                AccessGrant::Track(t) => {
                    let subject_and_sold =
                        idx.track(t).map(|tr| (&tr.subject, tr.is_sold_separately));
                    keys.is_global
                        || keys.tracks.contains(t)
                        || subject_and_sold
                            .is_some_and(|(s, sold)| !sold && keys.subjects.contains(s))
                }
            })
    }

    /// `get_store_items`: what this learner can buy now, price ascending.
    pub async fn get_store_items(&self, actor: &Actor) -> CoreResult<Vec<SalesItem>> {
        let keys = self.access_keys(&actor.user).await?;
        if keys.is_global {
            return Ok(Vec::new());
        }
        let profile = self.profiles.or_default(&actor.user).await?;
        let pending: Vec<SalesItemId> = self
            .commerce
            .list_purchase_requests(Some(&actor.user), Some(PurchaseStatus::Pending))
            .await?
            .into_iter()
            .map(|r| r.item)
            .collect();
        let seasons = self.shared.seasons().await?;
        let today = self.shared.now().date_naive();
        let idx = self.shared.catalog().await?;
        let mut items: Vec<SalesItem> = self
            .commerce
            .list_sales_items()
            .await?
            .into_iter()
            .filter(|i| i.is_active)
            .filter(|i| !pending.contains(&i.id))
            .filter(|i| !Self::owns_all(&idx, &keys, i))
            .filter(|i| {
                seasons
                    .iter()
                    .find(|s| s.id == i.season)
                    .is_some_and(|s| s.end_date >= today && !s.archived)
            })
            .filter(|i| i.target_grade.is_none() || i.target_grade == profile.grade)
            .filter(|i| {
                i.target_streams.is_empty()
                    || profile
                        .stream
                        .as_ref()
                        .is_some_and(|s| i.target_streams.contains(s))
            })
            .collect();
        items.sort_by(|a, b| (a.effective_price(), &a.id).cmp(&(b.effective_price(), &b.id)));
        Ok(items)
    }

    /// `request_purchase`.
    pub async fn request_purchase(
        &self,
        actor: &Actor,
        item: &SalesItemId,
        payment_method: Option<String>,
        transaction_id: Option<String>,
    ) -> CoreResult<PurchaseOutcome> {
        let item = self
            .commerce
            .get_sales_item(item)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("store item {item} not found")))?;
        if !item.is_active {
            return Err(CoreError::invalid_state(format!(
                "store item {} is not on sale",
                item.id
            )));
        }
        for (name, v) in [
            ("payment_method", &payment_method),
            ("transaction_id", &transaction_id),
        ] {
            if let Some(s) = v {
                crate::text::check_text(name, s, 140)?;
            }
        }
        if let Some(existing) = self
            .commerce
            .list_purchase_requests(Some(&actor.user), Some(PurchaseStatus::Pending))
            .await?
            .into_iter()
            .find(|r| r.item == item.id)
        {
            return Ok(PurchaseOutcome::AlreadyPending(existing));
        }
        let keys = self.access_keys(&actor.user).await?;
        let idx = self.shared.catalog().await?;
        if keys.is_global || Self::owns_all(&idx, &keys, &item) {
            return Err(CoreError::conflict(
                "you already have access to everything in this item",
            ));
        }
        let req = PurchaseRequest {
            id: PurchaseRequestId::new(self.shared.ids.next_id("PUR-REQ"))?,
            user: actor.user.clone(),
            item: item.id.clone(),
            status: PurchaseStatus::Pending,
            price: item.effective_price(),
            payment_method,
            transaction_id,
            created_at: self.shared.now(),
            decided_at: None,
            decided_by: None,
        };
        match self.commerce.create_purchase_request(&req).await {
            Ok(()) => Ok(PurchaseOutcome::Created(req)),
            Err(crate::error::PortError::Conflict(_)) => {
                // A concurrent request won the race: report the pending one.
                let existing = self
                    .commerce
                    .list_purchase_requests(Some(&actor.user), Some(PurchaseStatus::Pending))
                    .await?
                    .into_iter()
                    .find(|r| r.item == item.id)
                    .ok_or_else(|| CoreError::conflict("a purchase request is already pending"))?;
                Ok(PurchaseOutcome::AlreadyPending(existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Admin: purchase requests, optionally by status.
    pub async fn list_purchase_requests(
        &self,
        actor: &Actor,
        status: Option<PurchaseStatus>,
    ) -> CoreResult<Vec<PurchaseRequest>> {
        actor.require_admin()?;
        Ok(self.commerce.list_purchase_requests(None, status).await?)
    }

    /// Admin: approve (granting a subscription for the item's season and
    /// contents) or reject a pending request.
    pub async fn decide_purchase(
        &self,
        actor: &Actor,
        request: &PurchaseRequestId,
        decision: PurchaseDecision,
    ) -> CoreResult<(PurchaseRequest, Option<Subscription>)> {
        actor.require_admin()?;
        let mut req = self
            .commerce
            .get_purchase_request(request)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("purchase request {request} not found")))?;
        if req.status != PurchaseStatus::Pending {
            return Err(CoreError::conflict(format!(
                "purchase request {request} was already {}",
                req.status.as_str().to_lowercase()
            )));
        }
        let now = self.shared.now();
        req.decided_at = Some(now);
        req.decided_by = Some(actor.user.clone());
        let grant = match decision {
            PurchaseDecision::Reject => {
                req.status = PurchaseStatus::Rejected;
                None
            }
            PurchaseDecision::Approve => {
                req.status = PurchaseStatus::Approved;
                let item = self
                    .commerce
                    .get_sales_item(&req.item)
                    .await?
                    .ok_or_else(|| {
                        CoreError::invalid_state("the requested item no longer exists")
                    })?;
                Some(Subscription {
                    id: SubscriptionId::new(self.shared.ids.next_id("SUB"))?,
                    user: req.user.clone(),
                    season: item.season.clone(),
                    kind: SubscriptionKind::Specific,
                    status: SubscriptionStatus::Active,
                    grants: item.contents.clone(),
                    source_request: Some(req.id.clone()),
                    created_at: now,
                    ends_on: None,
                })
            }
        };
        self.commerce.decide_purchase(&req, grant.as_ref()).await?;
        self.shared
            .audit(
                actor,
                "purchase.decide",
                serde_json::json!({"request": req.id.as_str(), "status": req.status.as_str()}),
            )
            .await;
        Ok((req, grant))
    }
}
