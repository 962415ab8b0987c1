-- Differential privacy analysts can use (issue 17): every released value carries its error,
-- suppressed groups are rows marked as suppressed (not missing), and the ledger keeps only
-- what was released with noise plus the parameters (issue 13, item 6).

ALTER TABLE scout.platinum_anonymized_analytics
    ALTER COLUMN transaction_count DROP NOT NULL,
    ALTER COLUMN avg_amount DROP NOT NULL,
    ADD COLUMN suppressed boolean NOT NULL DEFAULT false,
    ADD COLUMN confidence double precision,
    ADD COLUMN transaction_count_error double precision,
    ADD COLUMN avg_amount_lower double precision,
    ADD COLUMN avg_amount_upper double precision,
    ADD CONSTRAINT platinum_anonymized_suppressed_check CHECK (
        suppressed = (transaction_count IS NULL) AND suppressed = (avg_amount IS NULL));

COMMENT ON COLUMN scout.platinum_anonymized_analytics.transaction_count IS
    'noisy estimate of the transactions of the week (each customer-week counted up to the '
    'bound max_contributions of its release); NULL when suppressed';
COMMENT ON COLUMN scout.platinum_anonymized_analytics.transaction_count_error IS
    'half-width of the interval transaction_count ± error at the stated confidence (noise only)';
COMMENT ON COLUMN scout.platinum_anonymized_analytics.avg_amount IS
    'noisy sum / noisy count of the bounded contributions; NULL when suppressed';
COMMENT ON COLUMN scout.platinum_anonymized_analytics.avg_amount_lower IS
    'interval of avg_amount at the stated confidence, from both noise scales (union bound)';
COMMENT ON COLUMN scout.platinum_anonymized_analytics.suppressed IS
    'true when the noisy count was too small for its error: a decision on noisy values only';

-- Earlier releases recorded the exact number of groups with data (groups_in): remove it.
UPDATE scout.platinum_privacy_ledger SET parameters = parameters - 'groups_in'
 WHERE parameters ? 'groups_in';
