-- Memora: the platform directory of institutions (multi-tenancy).
--
-- Each institution's data lives in its own schema (created by the server
-- when the institution is created; every migration runs there too). These
-- two tables are read and written only in the home institution's schema:
-- the institutions themselves, and which institution each account name
-- belongs to (account names are unique across the platform, so a login
-- needs no institution). In other schemas they are unused (they hold the
-- copy of the home row below, nothing else).
CREATE TABLE institutions (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL,
    -- The institution's device policy (NULL: the server's default).
    max_devices integer CHECK (max_devices BETWEEN 1 AND 1000),
    device_limit text CHECK (device_limit IN ('sign-out-oldest', 'refuse')),
    CHECK ((max_devices IS NULL) = (device_limit IS NULL))
);

CREATE TABLE institution_accounts (
    user_id      text COLLATE "C" PRIMARY KEY,
    institution  text COLLATE "C" NOT NULL
);
-- One account name per platform whatever its case: `Bob@x.org` cannot be
-- created next to `bob@x.org` (a look-alike, and the login throttle keys
-- on the lowercased name).
CREATE UNIQUE INDEX institution_accounts_lower_idx ON institution_accounts (lower(user_id));

-- Every account of an installation that predates institutions belongs to
-- the home institution.
INSERT INTO institution_accounts (user_id, institution)
SELECT id, 'default' FROM users
ON CONFLICT DO NOTHING;

-- The home institution: where this schema's data has always lived.
INSERT INTO institutions (id, name, status, created_at)
VALUES ('default', 'Home institution', 'active', now())
ON CONFLICT DO NOTHING;
