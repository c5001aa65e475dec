//! Store and access: sales items (bundles), purchase requests, subscriptions
//! and the access keys derived from them.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::{
    GradeId, PurchaseRequestId, SalesItemId, SeasonId, StreamId, SubjectId, SubscriptionId,
    TrackId, UserId,
};

/// One thing a bundle or subscription opens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccessGrant {
    /// A whole subject (except tracks sold separately).
    Subject(SubjectId),
    /// One track.
    Track(TrackId),
}

/// A store item.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesItem {
    /// Id.
    pub id: SalesItemId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price in minor units (e.g. fils/cents).
    pub price: i64,
    /// Discounted price in minor units, if any.
    pub discounted_price: Option<i64>,
    /// Image.
    pub image: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// The season the access it sells belongs to.
    pub season: SeasonId,
    /// Only shown to this grade, if set.
    pub target_grade: Option<GradeId>,
    /// Only shown to these streams, if non-empty.
    pub target_streams: Vec<StreamId>,
    /// What the bundle opens.
    pub contents: Vec<AccessGrant>,
    /// On sale: listed to learners and purchasable. Unpublishing clears it;
    /// the item stays (purchase requests and subscriptions refer to it).
    pub is_active: bool,
}

impl SalesItem {
    /// The price a buyer pays now.
    pub fn effective_price(&self) -> i64 {
        match self.discounted_price {
            Some(p) if p > 0 => p,
            _ => self.price,
        }
    }
}

/// State of a purchase request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    /// Waiting for an admin.
    Pending,
    /// Approved: a subscription was granted.
    Approved,
    /// Rejected.
    Rejected,
}

impl PurchaseStatus {
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "Pending",
            PurchaseStatus::Approved => "Approved",
            PurchaseStatus::Rejected => "Rejected",
        }
    }
}

/// A request to buy a sales item (manual payment verification by an admin).
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseRequest {
    /// Id.
    pub id: PurchaseRequestId,
    /// Buyer.
    pub user: UserId,
    /// Item.
    pub item: SalesItemId,
    /// Status.
    pub status: PurchaseStatus,
    /// Price at request time.
    pub price: i64,
    /// Payment method named by the buyer.
    pub payment_method: Option<String>,
    /// Payment reference.
    pub transaction_id: Option<String>,
    /// When requested.
    pub created_at: DateTime<Utc>,
    /// When approved/rejected.
    pub decided_at: Option<DateTime<Utc>>,
    /// Admin who decided.
    pub decided_by: Option<UserId>,
}

/// Kind of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// Everything.
    Global,
    /// Only the listed grants.
    Specific,
}

/// Subscription status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// In force (while its season has not ended).
    Active,
    /// Paused by an admin.
    Suspended,
    /// Ended.
    Expired,
}

impl SubscriptionStatus {
    /// Stable lowercase name (`active`, `suspended`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Expired => "expired",
        }
    }

    /// Parses [`SubscriptionStatus::as_str`] (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            SubscriptionStatus::Active,
            SubscriptionStatus::Suspended,
            SubscriptionStatus::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// A player's subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Id.
    pub id: SubscriptionId,
    /// Subscriber.
    pub user: UserId,
    /// Season it is valid for.
    pub season: SeasonId,
    /// Kind.
    pub kind: SubscriptionKind,
    /// Status.
    pub status: SubscriptionStatus,
    /// Grants (for `Specific`).
    pub grants: Vec<AccessGrant>,
    /// The purchase request that created it, if any (one subscription per request).
    pub source_request: Option<PurchaseRequestId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last day of access when it ends before its season does (admin
    /// grants); `None` = the season's end.
    pub ends_on: Option<NaiveDate>,
}

impl Subscription {
    /// Whether it opens content on `today` given its season: active, the
    /// season has started and not ended, and its own end date not passed.
    pub fn in_force(&self, season: Option<&crate::domain::Season>, today: NaiveDate) -> bool {
        self.status == SubscriptionStatus::Active
            && season.is_some_and(|s| s.id == self.season && s.covers(today))
            && self.ends_on.is_none_or(|end| today <= end)
    }
}

/// What a user may open right now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessKeys {
    /// Global access.
    pub is_global: bool,
    /// Subjects opened (sorted).
    pub subjects: Vec<SubjectId>,
    /// Tracks opened (sorted).
    pub tracks: Vec<TrackId>,
}

impl AccessKeys {
    /// Whether (subject, track) is covered. A subject grant does not open a
    /// track that is sold separately (the original ignored that flag).
    pub fn covers(&self, subject: &SubjectId, track: Option<(&TrackId, bool)>) -> bool {
        if self.is_global {
            return true;
        }
        if let Some((t, _)) = track {
            if self.tracks.contains(t) {
                return true;
            }
        }
        let sold_separately = track.map(|(_, s)| s).unwrap_or(false);
        !sold_separately && self.subjects.contains(subject)
    }
}
