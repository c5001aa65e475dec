-- Memora: permanent numbers for subjects and topics (CatalogNumbers port,
-- label methods), a number space of their own. The Redis schedule names a
-- card's subject and topic by these numbers, so a learner's schedule keeps
-- no dictionary. `label` is `s:<subject id>` or `t:<topic id>`; a number,
-- once given, is never given to another label. Additive.
CREATE TABLE label_numbers (
    num   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label text NOT NULL UNIQUE
);
