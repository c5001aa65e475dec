//! The commerce store: sales items, purchase requests (one pending request
//! per user and item, enforced by a partial unique index) and subscriptions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::*;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::*;
use memora_core::ports::{CommerceStore, SubscriptionQuery};
use sqlx::{PgConnection, Row};

use crate::error::port;
use crate::rows::{grant_kind, grant_of, id, opt_id};
use crate::{PgStore, PgStoreError, Result};

fn status_of(s: &str) -> Result<PurchaseStatus> {
    match s {
        "Pending" => Ok(PurchaseStatus::Pending),
        "Approved" => Ok(PurchaseStatus::Approved),
        "Rejected" => Ok(PurchaseStatus::Rejected),
        o => Err(PgStoreError::Corrupt(format!("purchase status {o}"))),
    }
}

fn sub_kind(k: SubscriptionKind) -> &'static str {
    match k {
        SubscriptionKind::Global => "global",
        SubscriptionKind::Specific => "specific",
    }
}

fn sub_status(s: SubscriptionStatus) -> &'static str {
    s.as_str()
}

const ITEM_SQL: &str = "SELECT i.id, i.name, i.description, i.price, i.discounted_price, \
    i.image, i.sku, i.season_id, i.target_grade, i.target_streams, i.is_active, \
    coalesce((SELECT array_agg(c.kind ORDER BY c.position) FROM sales_item_contents c \
              WHERE c.item_id = i.id), '{}') AS kinds, \
    coalesce((SELECT array_agg(c.target_id ORDER BY c.position) FROM sales_item_contents c \
              WHERE c.item_id = i.id), '{}') AS targets \
    FROM sales_items i";

fn item_of(r: &sqlx::postgres::PgRow) -> Result<SalesItem> {
    let kinds: Vec<String> = r.try_get("kinds")?;
    let targets: Vec<String> = r.try_get("targets")?;
    let streams: Vec<String> = r.try_get("target_streams")?;
    Ok(SalesItem {
        id: id(r.try_get("id")?, SalesItemId::new)?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        price: r.try_get("price")?,
        discounted_price: r.try_get("discounted_price")?,
        image: r.try_get("image")?,
        sku: r.try_get("sku")?,
        season: id(r.try_get("season_id")?, SeasonId::new)?,
        target_grade: opt_id(r.try_get("target_grade")?, GradeId::new)?,
        target_streams: streams
            .iter()
            .map(|s| id(s, StreamId::new))
            .collect::<Result<_>>()?,
        contents: kinds
            .iter()
            .zip(&targets)
            .map(|(k, t)| grant_of(k, t))
            .collect::<Result<_>>()?,
        is_active: r.try_get("is_active")?,
    })
}

const REQUEST_COLS: &str = "id, user_id, item_id, status, price, payment_method, \
    transaction_id, created_at, decided_at, decided_by";

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    user_id: String,
    item_id: String,
    status: String,
    price: i64,
    payment_method: Option<String>,
    transaction_id: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
}

impl RequestRow {
    fn into_domain(self) -> Result<PurchaseRequest> {
        Ok(PurchaseRequest {
            id: id(&self.id, PurchaseRequestId::new)?,
            user: id(&self.user_id, UserId::new)?,
            item: id(&self.item_id, SalesItemId::new)?,
            status: status_of(&self.status)?,
            price: self.price,
            payment_method: self.payment_method,
            transaction_id: self.transaction_id,
            created_at: self.created_at,
            decided_at: self.decided_at,
            decided_by: opt_id(self.decided_by.as_deref(), UserId::new)?,
        })
    }
}

async fn insert_subscription(conn: &mut PgConnection, s: &Subscription) -> PortResult<()> {
    sqlx::query(
        "INSERT INTO subscriptions (id, user_id, season_id, kind, status, source_request, \
             created_at, ends_on) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
    )
    .bind(s.id.as_str())
    .bind(s.user.as_str())
    .bind(s.season.as_str())
    .bind(sub_kind(s.kind))
    .bind(sub_status(s.status))
    .bind(s.source_request.as_ref().map(|x| x.as_str()))
    .bind(s.created_at)
    .bind(s.ends_on)
    .execute(crate::trips::one(&mut *conn))
    .await
    .map_err(|e| match port(e) {
        PortError::Conflict(_) => PortError::Conflict(format!("subscription {} exists", s.id)),
        other => other,
    })?;
    let (kinds, targets): (Vec<&str>, Vec<&str>) = s.grants.iter().map(grant_kind).unzip();
    sqlx::query(
        "INSERT INTO subscription_grants (subscription_id, position, kind, target_id) \
         SELECT $1, g.ord::int4 - 1, g.kind, g.target \
         FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS g(kind, target, ord)",
    )
    .bind(s.id.as_str())
    .bind(&kinds)
    .bind(&targets)
    .execute(crate::trips::one(&mut *conn))
    .await
    .map_err(port)?;
    Ok(())
}

/// Inserts an item (replacing an existing one when `replace`, else
/// `Conflict`) and its contents, in one transaction.
async fn write_item(pool: &sqlx::PgPool, item: &SalesItem, replace: bool) -> PortResult<()> {
    let mut tx = crate::trips::begin(pool).await.map_err(port)?;
    let streams: Vec<&str> = item.target_streams.iter().map(|s| s.as_str()).collect();
    let on_conflict = if replace {
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
         description = EXCLUDED.description, price = EXCLUDED.price, \
         discounted_price = EXCLUDED.discounted_price, image = EXCLUDED.image, \
         sku = EXCLUDED.sku, season_id = EXCLUDED.season_id, \
         target_grade = EXCLUDED.target_grade, target_streams = EXCLUDED.target_streams, \
         is_active = EXCLUDED.is_active"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO sales_items (id, name, description, price, discounted_price, image, sku, \
             season_id, target_grade, target_streams, is_active) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) {on_conflict}"
    );
    sqlx::query(&sql)
        .bind(item.id.as_str())
        .bind(&item.name)
        .bind(&item.description)
        .bind(item.price)
        .bind(item.discounted_price)
        .bind(&item.image)
        .bind(&item.sku)
        .bind(item.season.as_str())
        .bind(item.target_grade.as_ref().map(|g| g.as_str()))
        .bind(&streams)
        .bind(item.is_active)
        .execute(crate::trips::one(&mut *tx))
        .await
        .map_err(|e| match port(e) {
            PortError::Conflict(_) => PortError::Conflict(format!("store item {} exists", item.id)),
            other => other,
        })?;
    sqlx::query("DELETE FROM sales_item_contents WHERE item_id = $1")
        .bind(item.id.as_str())
        .execute(crate::trips::one(&mut *tx))
        .await
        .map_err(port)?;
    let (kinds, targets): (Vec<&str>, Vec<&str>) = item.contents.iter().map(grant_kind).unzip();
    sqlx::query(
        "INSERT INTO sales_item_contents (item_id, position, kind, target_id) \
         SELECT $1, g.ord::int4 - 1, g.kind, g.target \
         FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS g(kind, target, ord)",
    )
    .bind(item.id.as_str())
    .bind(&kinds)
    .bind(&targets)
    .execute(crate::trips::one(&mut *tx))
    .await
    .map_err(port)?;
    crate::trips::commit(tx).await.map_err(port)?;
    Ok(())
}

const SUBSCRIPTION_SQL: &str = "SELECT s.id, s.user_id, s.season_id, s.kind, s.status, \
       s.source_request, s.created_at, s.ends_on, \
       coalesce((SELECT array_agg(g.kind ORDER BY g.position) FROM subscription_grants g \
                 WHERE g.subscription_id = s.id), '{}') AS kinds, \
       coalesce((SELECT array_agg(g.target_id ORDER BY g.position) \
                 FROM subscription_grants g WHERE g.subscription_id = s.id), '{}') AS targets \
     FROM subscriptions s";

fn subscription_of(r: &sqlx::postgres::PgRow) -> Result<Subscription> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let kinds: Vec<String> = r.try_get("kinds")?;
    let targets: Vec<String> = r.try_get("targets")?;
    Ok(Subscription {
        id: id(r.try_get("id")?, SubscriptionId::new)?,
        user: id(r.try_get("user_id")?, UserId::new)?,
        season: id(r.try_get("season_id")?, SeasonId::new)?,
        kind: match kind.as_str() {
            "global" => SubscriptionKind::Global,
            "specific" => SubscriptionKind::Specific,
            o => return Err(PgStoreError::Corrupt(format!("subscription kind {o}"))),
        },
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| PgStoreError::Corrupt(format!("subscription status {status}")))?,
        grants: kinds
            .iter()
            .zip(&targets)
            .map(|(k, t)| grant_of(k, t))
            .collect::<Result<_>>()?,
        source_request: opt_id(r.try_get("source_request")?, PurchaseRequestId::new)?,
        created_at: r.try_get("created_at")?,
        ends_on: r.try_get("ends_on")?,
    })
}

#[async_trait]
impl CommerceStore for PgStore {
    async fn list_sales_items(&self) -> PortResult<Vec<SalesItem>> {
        let sql = format!("{ITEM_SQL} ORDER BY i.price, i.id");
        let rows = sqlx::query(&sql)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.iter()
            .map(item_of)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn get_sales_item(&self, sid: &SalesItemId) -> PortResult<Option<SalesItem>> {
        let sql = format!("{ITEM_SQL} WHERE i.id = $1");
        let row = sqlx::query(&sql)
            .bind(sid.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(row.as_ref().map(item_of).transpose()?)
    }

    async fn upsert_sales_item(&self, item: &SalesItem) -> PortResult<()> {
        write_item(&self.pool, item, true).await
    }

    async fn create_purchase_request(&self, r: &PurchaseRequest) -> PortResult<()> {
        sqlx::query(
            "INSERT INTO purchase_requests (id, user_id, item_id, status, price, payment_method, \
                 transaction_id, created_at, decided_at, decided_by) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
        )
        .bind(r.id.as_str())
        .bind(r.user.as_str())
        .bind(r.item.as_str())
        .bind(r.status.as_str())
        .bind(r.price)
        .bind(&r.payment_method)
        .bind(&r.transaction_id)
        .bind(r.created_at)
        .bind(r.decided_at)
        .bind(r.decided_by.as_ref().map(|u| u.as_str()))
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(|e| match port(e) {
            PortError::Conflict(_) => PortError::Conflict(
                "the request exists or a pending request for this item already exists".into(),
            ),
            other => other,
        })?;
        Ok(())
    }

    async fn get_purchase_request(
        &self,
        rid: &PurchaseRequestId,
    ) -> PortResult<Option<PurchaseRequest>> {
        let sql = format!("SELECT {REQUEST_COLS} FROM purchase_requests WHERE id = $1");
        let row: Option<RequestRow> = sqlx::query_as(&sql)
            .bind(rid.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(row.map(RequestRow::into_domain).transpose()?)
    }

    async fn list_purchase_requests(
        &self,
        user: Option<&UserId>,
        status: Option<PurchaseStatus>,
    ) -> PortResult<Vec<PurchaseRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLS} FROM purchase_requests \
             WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2) \
             ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<RequestRow> = sqlx::query_as(&sql)
            .bind(user.map(|u| u.as_str()))
            .bind(status.map(|s| s.as_str()))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.into_iter()
            .map(RequestRow::into_domain)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn decide_purchase(
        &self,
        d: &PurchaseRequest,
        grant: Option<&Subscription>,
    ) -> PortResult<()> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        // Only a row still pending is updated: the WHERE clause is the
        // guard against double decisions (the row lock serialises racers).
        let r = sqlx::query(
            "UPDATE purchase_requests SET user_id = $2, item_id = $3, status = $4, price = $5, \
                 payment_method = $6, transaction_id = $7, created_at = $8, decided_at = $9, \
                 decided_by = $10 \
             WHERE id = $1 AND status = 'Pending'",
        )
        .bind(d.id.as_str())
        .bind(d.user.as_str())
        .bind(d.item.as_str())
        .bind(d.status.as_str())
        .bind(d.price)
        .bind(&d.payment_method)
        .bind(&d.transaction_id)
        .bind(d.created_at)
        .bind(d.decided_at)
        .bind(d.decided_by.as_ref().map(|u| u.as_str()))
        .execute(crate::trips::one(&mut *tx))
        .await
        .map_err(port)?;
        if r.rows_affected() == 0 {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM purchase_requests WHERE id = $1)")
                    .bind(d.id.as_str())
                    .fetch_one(crate::trips::one(&mut *tx))
                    .await
                    .map_err(port)?;
            return Err(if exists {
                PortError::Conflict(format!("request {} is no longer pending", d.id))
            } else {
                PortError::Rejected(format!("request {} does not exist", d.id))
            });
        }
        if let Some(g) = grant {
            insert_subscription(&mut tx, g).await?;
        }
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }

    async fn subscriptions_of(&self, user: &UserId) -> PortResult<Vec<Subscription>> {
        let sql = format!("{SUBSCRIPTION_SQL} WHERE s.user_id = $1 ORDER BY s.created_at, s.id");
        let rows = sqlx::query(&sql)
            .bind(user.as_str())
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.iter()
            .map(subscription_of)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn create_subscription(&self, s: &Subscription) -> PortResult<()> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        insert_subscription(&mut tx, s).await?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }

    async fn create_sales_item(&self, item: &SalesItem) -> PortResult<()> {
        write_item(&self.pool, item, false).await
    }

    async fn get_subscription(&self, sid: &SubscriptionId) -> PortResult<Option<Subscription>> {
        let sql = format!("{SUBSCRIPTION_SQL} WHERE s.id = $1");
        let row = sqlx::query(&sql)
            .bind(sid.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(row.as_ref().map(subscription_of).transpose()?)
    }

    async fn list_subscriptions(&self, q: &SubscriptionQuery) -> PortResult<Vec<Subscription>> {
        let sql = format!(
            "{SUBSCRIPTION_SQL} WHERE ($1::text IS NULL OR s.user_id = $1) \
             AND ($2::text IS NULL OR s.status = $2) AND ($3::text IS NULL OR s.id > $3) \
             ORDER BY s.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(q.user.as_ref().map(|u| u.as_str()))
            .bind(q.status.map(sub_status))
            .bind(q.after.as_ref().map(|a| a.as_str()))
            .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.iter()
            .map(subscription_of)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn set_subscription_status(
        &self,
        sid: &SubscriptionId,
        from: SubscriptionStatus,
        to: SubscriptionStatus,
    ) -> PortResult<bool> {
        // The WHERE clause is the compare-and-set: a concurrent change
        // leaves no row to update.
        let r = sqlx::query("UPDATE subscriptions SET status = $3 WHERE id = $1 AND status = $2")
            .bind(sid.as_str())
            .bind(sub_status(from))
            .bind(sub_status(to))
            .execute(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        if r.rows_affected() == 1 {
            return Ok(true);
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = $1)")
                .bind(sid.as_str())
                .fetch_one(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        if exists {
            Ok(false)
        } else {
            Err(PortError::Rejected(format!(
                "subscription {sid} does not exist"
            )))
        }
    }
}
