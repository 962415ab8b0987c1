-- A rebuild of the same period must leave identical rows: the build time lives in
-- platinum_job_runs, not in the product.
ALTER TABLE scout.platinum_executive_summary DROP COLUMN built_at;
