-- Memora: a version number for the content catalog.
--
-- Additive only; earlier migrations are never edited.
--
-- One row (the CHECK keeps it single): every content import bumps
-- `version` in the same transaction as its entity writes, so a version
-- names exactly one imported state and the row lock serialises concurrent
-- imports (each gets its own number). Readers compare versions to notice
-- that the catalog changed.
CREATE TABLE catalog_version (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version      bigint NOT NULL CHECK (version >= 0),
    imported_at  timestamptz NOT NULL
);

-- A catalog imported before versions existed is version 1.
INSERT INTO catalog_version (singleton, version, imported_at)
SELECT true, 1, now()
WHERE EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM lessons)
   OR EXISTS (SELECT 1 FROM grades) OR EXISTS (SELECT 1 FROM academic_plans);
