-- Memora: how well each learner's last FSRS fit did (shown by the
-- console's learning insight). Additive; NULL for fits made before.
ALTER TABLE fsrs_params
    ADD COLUMN loss_before double precision,
    ADD COLUMN loss_after  double precision,
    ADD COLUMN fell_back   boolean;
