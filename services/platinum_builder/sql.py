"""SQL of the platinum builder: reads of gold and silver, the run history, the ledger.

Writes go through ``copy_records_to_table`` after a scoped DELETE, in the job's transaction.
"""

from __future__ import annotations

GOLD_DAYS = """
SELECT store_id, date_key, region, city, daily_revenue, transaction_count, avg_transaction,
       unique_customers, returning_customers, conversion_rate, campaign_spend
  FROM scout.gold_business_metrics
 WHERE date_key BETWEEN $1 AND $2
"""

FIRST_DAYS = """
SELECT store_id, min(date_key) AS first_day FROM scout.gold_business_metrics
 WHERE date_key <= $1 GROUP BY store_id
"""

BASKET_UNITS = """
SELECT store_id, local_date, sum(unit_count)::float8 / count(*) AS units
  FROM scout.silver_transactions_cleaned
 WHERE local_date BETWEEN $1 AND $2
 GROUP BY store_id, local_date
"""

DELETE_FEATURES = "DELETE FROM scout.platinum_ml_features WHERE date_key BETWEEN $1 AND $2"

KPIS = """
SELECT coalesce(sum(daily_revenue), 0) AS total_revenue,
       count(DISTINCT store_id) FILTER (WHERE transaction_count > 0) AS active_stores
  FROM scout.gold_business_metrics
 WHERE date_key BETWEEN $1 AND $2
"""

# Trend on a real day axis (days since the window start), over daily totals.
TRENDS = """
WITH daily AS (
    SELECT date_key, sum(daily_revenue)::float8 AS revenue
      FROM scout.gold_business_metrics WHERE date_key BETWEEN $1 AND $2 GROUP BY date_key
)
SELECT (SELECT regr_slope(revenue, (date_key - $1::date)::float8) FROM daily) AS trend,
       (SELECT corr(daily_revenue::float8, campaign_spend::float8)
          FROM scout.gold_business_metrics WHERE date_key BETWEEN $1 AND $2) AS correlation
"""

DAILY_TOTALS = """
SELECT date_key, sum(daily_revenue)::float8 AS revenue
  FROM scout.gold_business_metrics WHERE date_key BETWEEN $1 AND $2 GROUP BY date_key
"""

REGION_DAILY = """
SELECT region, date_key, sum(daily_revenue)::float8 AS revenue
  FROM scout.gold_business_metrics WHERE date_key BETWEEN $1 AND $2 GROUP BY region, date_key
"""

CAMPAIGN_SPEND = """
SELECT campaign_id, store_id, spend_date, sum(spend) AS spend
  FROM scout.silver_campaign_spend WHERE spend_date <= $1
 GROUP BY campaign_id, store_id, spend_date
"""

STORE_REVENUE = """
SELECT store_id, date_key, daily_revenue::float8 AS revenue
  FROM scout.gold_business_metrics WHERE date_key BETWEEN $1 AND $2
"""

ALL_STORES = "SELECT DISTINCT store_id FROM scout.gold_business_metrics WHERE date_key <= $1"

ATTRIBUTED = """
SELECT campaign_id, sum(amount) AS revenue FROM scout.silver_transactions_cleaned
 WHERE campaign_id IS NOT NULL AND local_date <= $1 GROUP BY campaign_id
"""

# Weeks (Monday of the local week) with silver data, complete by the as-of day.
RELEASABLE_WEEKS = """
SELECT DISTINCT date_trunc('week', local_date)::date AS week
  FROM scout.silver_transactions_cleaned
 WHERE local_date >= $1 AND local_date <= $2
   AND date_trunc('week', local_date)::date + 6 <= $2
 ORDER BY week
"""

# One row per kept (privacy unit, group) of the week: the unit's transactions and spend in
# the group. The unit is the customer-week (the transaction for a walk-in); a unit keeps its
# first $3 groups of the week. Only these values leave the query, never the key.
UNIT_CONTRIBUTIONS = """
WITH per_group AS (
    SELECT coalesce(customer_key, 'tx:' || transaction_id::text) AS unit, region, city,
           count(*)::float8 AS n, sum(amount)::float8 AS s, min(transaction_date) AS first_at
      FROM scout.silver_transactions_cleaned
     WHERE local_date >= $1 AND local_date < $2
     GROUP BY 1, region, city
),
kept AS (
    SELECT region, city, n, s,
           row_number() OVER (PARTITION BY unit ORDER BY first_at, region, city) AS pn
      FROM per_group
)
SELECT region, city, n, s FROM kept WHERE pn <= $3
"""

# The public groups of a week: (region, city) of the stores in master data open by its end.
PUBLIC_GROUPS = """
SELECT DISTINCT region, city FROM scout.silver_master_stores
 WHERE opened_on IS NULL OR opened_on <= $1 ORDER BY region, city
"""

LEDGER_LOCK = "SELECT pg_advisory_xact_lock(hashtext('scout.platinum_privacy_ledger'))"
LEDGER_RELEASED = "SELECT period, epsilon FROM scout.platinum_privacy_ledger WHERE release = $1"
LEDGER_REPORT = """
SELECT release_id, period, epsilon, delta, mechanism, parameters, released_at
  FROM scout.platinum_privacy_ledger WHERE release = $1 ORDER BY period DESC LIMIT $2
"""
LEDGER_INSERT = """
INSERT INTO scout.platinum_privacy_ledger (release, period, epsilon, delta, mechanism, parameters)
VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING release_id
"""

RUN_START = """
INSERT INTO scout.platinum_job_runs (job, period, attempt, status) VALUES ($1, $2, $3, 'running')
RETURNING run_id
"""
RUN_FINISH = """
UPDATE scout.platinum_job_runs SET finished_at = clock_timestamp(), status = $2, rows = $3,
       error = $4
 WHERE run_id = $1
"""
LAST_SUCCESS = """
SELECT DISTINCT ON (job) job, period, started_at FROM scout.platinum_job_runs
 WHERE status = 'succeeded' ORDER BY job, started_at DESC
"""
# Failed attempts of each job since its last success, and when the last one ended: a job that
# keeps failing on its data is retried with growing pauses, then left for an operator.
FAILURES_SINCE_SUCCESS = """
SELECT r.job, count(*) AS failures, max(coalesce(r.finished_at, r.started_at)) AS last_failed
  FROM scout.platinum_job_runs r
 WHERE r.status = 'failed'
   AND r.started_at > coalesce((SELECT max(s.started_at) FROM scout.platinum_job_runs s
                                 WHERE s.job = r.job AND s.status = 'succeeded'), '-infinity')
 GROUP BY r.job
"""
# Run rows still 'running' while this worker holds the job's lock: a worker was killed in the
# middle of them.
REAP_ABANDONED = """
UPDATE scout.platinum_job_runs
   SET status = 'failed', finished_at = clock_timestamp(),
       error = 'abandoned: the worker stopped during the run'
 WHERE job = $1 AND status = 'running'
"""
JOB_LOCK = "SELECT pg_try_advisory_lock(hashtext('scout.platinum:' || $1))"
JOB_UNLOCK = "SELECT pg_advisory_unlock(hashtext('scout.platinum:' || $1))"
