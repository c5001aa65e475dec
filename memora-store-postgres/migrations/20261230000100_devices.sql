-- Memora: players' devices (the spec's Game Player Device) and the device
-- a login session was opened on.
--
-- Additive only; earlier migrations are never edited. The `devices` table
-- of the initial schema was never written, so its new columns take
-- defaults for rows that cannot exist.
ALTER TABLE devices
    ADD COLUMN device_type text NOT NULL DEFAULT 'desktop'
        CHECK (device_type IN ('mobile', 'tablet', 'desktop')),
    ADD COLUMN registered_at timestamptz NOT NULL DEFAULT now();
UPDATE devices SET last_active = registered_at WHERE last_active IS NULL;
ALTER TABLE devices ALTER COLUMN last_active SET NOT NULL;

-- Revoking a device ends the sessions opened on it.
ALTER TABLE login_sessions ADD COLUMN device_id text;
CREATE INDEX login_sessions_device_idx ON login_sessions (user_id, device_id)
    WHERE device_id IS NOT NULL;
