-- Memora: store and subscription administration, audit log reads.
--
-- Additive only; earlier migrations are never edited. The new columns have
-- constant defaults or are nullable, so adding them rewrites no table.

-- An item can be taken off sale without deleting it: purchase requests and
-- subscriptions keep referring to it. Existing items stay on sale.
ALTER TABLE sales_items
    ADD COLUMN is_active boolean NOT NULL DEFAULT true;

-- Last day of access of an admin grant that ends before its season does
-- (NULL = the season's end). Access also needs status 'active' and the
-- season running; the core decides, this only stores.
ALTER TABLE subscriptions
    ADD COLUMN ends_on date;

-- The admin listing filters by status and pages by id (keyset). The table
-- holds one row per purchase or grant, small enough for a plain (locking)
-- index build.
CREATE INDEX subscriptions_status_idx ON subscriptions (status, id);
CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id, id);

-- The audit reader pages newest first by id (the primary key) and filters
-- by actor often enough to index it. Audit rows are admin actions and rare
-- failures: a plain index build is brief.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
