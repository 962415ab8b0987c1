"""Gold SQL, as named constants: how each gold table is computed from silver from scratch
(``scout gold rebuild`` and the reconciliation of ``scout gold verify``), and the statements
of the incremental flush (claim the captured changes, load state, write rows).

The incremental path keeps exact state in memory (state.py, day_state.py) and leaves every
division, window sum and rank to the same SQL expressions as the recomputation, so the two
agree digit for digit; the reconciliation checks it on every run.
"""

from __future__ import annotations

# (store, local day) groups given as two parallel arrays: $1 text[], $2 date[].
BUSINESS_METRICS_FRESH = """
WITH keys AS (
    SELECT DISTINCT store_id, date_key FROM unnest($1::text[], $2::date[]) AS k(store_id, date_key)
), tx AS (
    SELECT t.store_id, t.local_date AS date_key, min(t.region) AS region, min(t.city) AS city,
           count(*)::bigint AS transaction_count,
           sum(t.amount) AS daily_revenue,
           round(avg(t.amount), 4) AS avg_transaction,
           count(DISTINCT t.customer_key)::bigint AS unique_customers,
           -- Exact median: the mean of the lower and upper middle values (equal when odd).
           round((percentile_disc(0.5) WITHIN GROUP (ORDER BY t.amount)
                  + percentile_disc(0.5) WITHIN GROUP (ORDER BY t.amount DESC)) / 2, 4)
               AS median_amount,
           round(stddev_samp(t.amount), 4) AS amount_stddev,
           (count(DISTINCT t.customer_key) FILTER (WHERE t.customer_type = 'new'))::bigint
               AS new_customers,
           (count(DISTINCT t.customer_key) FILTER (WHERE t.customer_type = 'regular'))::bigint
               AS returning_customers
    FROM scout.silver_transactions_cleaned t
    JOIN keys k ON t.store_id = k.store_id AND t.local_date = k.date_key
    GROUP BY t.store_id, t.local_date
), foot AS (
    SELECT r.store_id, r.local_date AS date_key, sum(r.value) AS footfall
    FROM scout.silver_device_readings r
    JOIN keys k ON r.store_id = k.store_id AND r.local_date = k.date_key
    WHERE r.kind = 'footfall'
    GROUP BY r.store_id, r.local_date
), spend AS (
    SELECT s.store_id, s.spend_date AS date_key, sum(s.spend) AS campaign_spend
    FROM scout.silver_campaign_spend s
    JOIN keys k ON s.store_id = k.store_id AND s.spend_date = k.date_key
    GROUP BY s.store_id, s.spend_date
)
SELECT tx.store_id, tx.date_key, tx.region, tx.city, tx.transaction_count, tx.daily_revenue,
       tx.avg_transaction, tx.unique_customers, tx.median_amount, tx.amount_stddev,
       tx.new_customers, tx.returning_customers,
       coalesce(foot.footfall, 0)::bigint AS footfall,
       CASE WHEN foot.footfall > 0 THEN round(tx.transaction_count / foot.footfall, 4) END
           AS conversion_rate,
       coalesce(spend.campaign_spend, 0) AS campaign_spend
FROM tx
LEFT JOIN foot USING (store_id, date_key)
LEFT JOIN spend USING (store_id, date_key)
"""

BUSINESS_COLUMNS = (
    "store_id", "date_key", "region", "city", "transaction_count", "daily_revenue",
    "avg_transaction", "unique_customers", "median_amount", "amount_stddev", "new_customers",
    "returning_customers", "footfall", "conversion_rate", "campaign_spend",
)  # fmt: skip
_BUSINESS_VALUES = ", ".join(BUSINESS_COLUMNS)
_BUSINESS_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in BUSINESS_COLUMNS[2:])
_BUSINESS_CHANGED = ", ".join(f"g.{c}" for c in BUSINESS_COLUMNS[2:])
_BUSINESS_NEW = ", ".join(f"EXCLUDED.{c}" for c in BUSINESS_COLUMNS[2:])

# Upsert the recomputed groups and drop the ones left without transactions (a correction
# may move a transaction to another day or store). Returns the number of groups written.
REFRESH_BUSINESS_METRICS = f"""
WITH fresh AS ({BUSINESS_METRICS_FRESH}),
gone AS (
    DELETE FROM scout.gold_business_metrics g
    USING unnest($1::text[], $2::date[]) AS k(store_id, date_key)
    WHERE g.store_id = k.store_id AND g.date_key = k.date_key
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.store_id = g.store_id
                      AND f.date_key = g.date_key)
    RETURNING 1
), written AS (
    INSERT INTO scout.gold_business_metrics AS g ({_BUSINESS_VALUES})
    SELECT {_BUSINESS_VALUES} FROM fresh
    ON CONFLICT (store_id, date_key) DO UPDATE SET {_BUSINESS_SET}, updated_at = now()
    WHERE ({_BUSINESS_CHANGED}) IS DISTINCT FROM ({_BUSINESS_NEW})
    RETURNING 1
)
SELECT (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM gone) AS deleted
"""

# Incremental maintenance of gold_business_metrics (see state.py and schemas/sql/0040).
# Take the captured changes of a set of days — always *all* visible changes of each day
# taken (a group or a day loaded from silver in the same snapshot already contains them).
# The days are listed first; if they are all the days there are (the usual case), everything
# is taken. Both forms cost O(changes) whatever the planner thinks of this table, whose size
# swings between empty and a backlog (a join of a key list with this table, planned on
# statistics taken while it was empty, can become a nested loop over sequential scans:
# quadratic in the backlog, which then grows).
CHANGED_DAYS_UP_TO = "SELECT DISTINCT date_key FROM scout.gold_silver_deltas LIMIT $1"
_CHANGE_COLUMNS = (
    "kind, sign, store_id, date_key, value, customer_key, customer_type, region, city, units, "
    "category, brand, transactions, kafka_timestamp, captured_at"
)
CLAIM_ALL_CHANGES = f"DELETE FROM scout.gold_silver_deltas RETURNING {_CHANGE_COLUMNS}"
CLAIM_CHANGES_OF_DAYS = f"""
DELETE FROM scout.gold_silver_deltas WHERE date_key = ANY($1::date[])
RETURNING {_CHANGE_COLUMNS}
"""
# Lock the groups and bump their revisions; returns the new revision per group.
BUMP_REVISIONS = """
INSERT INTO scout.gold_group_revisions AS r (store_id, date_key, revision)
SELECT store_id, date_key, 1 FROM unnest($1::text[], $2::date[]) AS k(store_id, date_key)
ON CONFLICT (store_id, date_key) DO UPDATE SET revision = r.revision + 1
RETURNING store_id, date_key, revision
"""
# A group's silver rows, to build its state from scratch.
LOAD_TRANSACTIONS = """
SELECT t.store_id, t.local_date AS date_key, t.amount, t.customer_key, t.customer_type,
       t.region, t.city
FROM scout.silver_transactions_cleaned t
JOIN unnest($1::text[], $2::date[]) AS k(store_id, date_key)
  ON t.store_id = k.store_id AND t.local_date = k.date_key
"""
LOAD_SUMS = """
SELECT k.store_id, k.date_key,
       (SELECT coalesce(sum(r.value), 0) FROM scout.silver_device_readings r
        WHERE r.store_id = k.store_id AND r.local_date = k.date_key AND r.kind = 'footfall')
           AS footfall,
       (SELECT coalesce(sum(s.spend), 0) FROM scout.silver_campaign_spend s
        WHERE s.store_id = k.store_id AND s.spend_date = k.date_key) AS spend
FROM unnest($1::text[], $2::date[]) AS k(store_id, date_key)
"""
UPSERT_BUSINESS_METRICS = f"""
INSERT INTO scout.gold_business_metrics AS g ({_BUSINESS_VALUES})
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[],
                     $6::numeric[], $7::numeric[], $8::bigint[], $9::numeric[], $10::numeric[],
                     $11::bigint[], $12::bigint[], $13::bigint[], $14::numeric[], $15::numeric[])
ON CONFLICT (store_id, date_key) DO UPDATE SET {_BUSINESS_SET}, updated_at = now()
WHERE ({_BUSINESS_CHANGED}) IS DISTINCT FROM ({_BUSINESS_NEW})
"""
DELETE_BUSINESS_METRICS = """
DELETE FROM scout.gold_business_metrics g
USING unnest($1::text[], $2::date[]) AS k(store_id, date_key)
WHERE g.store_id = k.store_id AND g.date_key = k.date_key
"""
# min() in the database's collation, as the recomputation compares text.
MIN_TEXT = "SELECT min(x) FROM unnest($1::text[]) AS x"
CHANGED_GROUPS = "SELECT DISTINCT store_id, date_key FROM scout.gold_silver_deltas"

# The day-wide tables, incrementally (day_state.py): lock and bump the days' revisions, load
# a day's sums from silver, and write a day's rows from its sums with the recomputation's own
# expressions (the same numeric divisions, window sums and rank).
BUMP_DAY_REVISIONS = """
INSERT INTO scout.gold_day_revisions AS r (date_key, revision)
SELECT d, 1 FROM unnest($1::date[]) AS d
ON CONFLICT (date_key) DO UPDATE SET revision = r.revision + 1
RETURNING date_key, revision
"""
LOAD_DAY_CUSTOMERS = """
SELECT local_date AS date_key, customer_type, customer_key, count(*)::bigint AS n,
       sum(amount) AS revenue, sum(unit_count)::bigint AS units
FROM scout.silver_transactions_cleaned WHERE local_date = ANY($1::date[])
GROUP BY local_date, customer_type, customer_key
"""
LOAD_DAY_STORES = """
SELECT local_date AS date_key, region, city, store_id, count(*)::bigint AS n,
       sum(amount) AS revenue
FROM scout.silver_transactions_cleaned WHERE local_date = ANY($1::date[])
GROUP BY local_date, region, city, store_id
"""
LOAD_DAY_BRANDS = """
SELECT local_date AS date_key, category, coalesce(brand, 'unknown') AS brand,
       sum(qty)::bigint AS units, sum(line_amount) AS revenue,
       count(DISTINCT transaction_id)::bigint AS n
FROM scout.silver_transaction_items WHERE local_date = ANY($1::date[])
GROUP BY 1, 2, 3
"""
WRITE_CUSTOMER_INSIGHTS = """
INSERT INTO scout.gold_customer_insights (segment, date_key, transaction_count, revenue,
    customers, avg_basket_size, avg_basket_value, repeat_rate)
SELECT u.segment, $1::date, u.n, u.revenue, u.customers, round(u.units::numeric / u.n, 4),
       round(u.revenue / u.n, 4), round(u.repeaters::numeric / nullif(u.customers, 0), 4)
FROM unnest($2::text[], $3::bigint[], $4::numeric[], $5::bigint[], $6::bigint[],
            $7::bigint[]) AS u(segment, n, revenue, customers, units, repeaters)
"""
WRITE_GEOGRAPHIC = """
INSERT INTO scout.gold_geographic_performance (region, city, date_key, revenue,
    transaction_count, active_stores, share_of_total)
SELECT u.region, u.city, $1::date, u.revenue, u.n, u.stores,
       round(u.revenue / nullif(sum(u.revenue) OVER (), 0), 6)
FROM unnest($2::text[], $3::text[], $4::numeric[], $5::bigint[], $6::bigint[])
     AS u(region, city, revenue, n, stores)
"""
WRITE_PRODUCTS = """
INSERT INTO scout.gold_product_performance (category, brand, date_key, units, revenue,
    transaction_count, share_within_category, rank_in_category)
SELECT u.category, u.brand, $1::date, u.units, u.revenue, u.n,
       -- 0 when the category's lines were all free that day (no revenue to share)
       coalesce(round(u.revenue / nullif(sum(u.revenue) OVER (PARTITION BY u.category), 0), 6), 0),
       rank() OVER (PARTITION BY u.category ORDER BY u.revenue DESC, u.brand)::bigint
FROM unnest($2::text[], $3::text[], $4::bigint[], $5::numeric[], $6::bigint[])
     AS u(category, brand, units, revenue, n)
"""
CLEAR_DAY = tuple(
    f"DELETE FROM scout.{table} WHERE date_key = $1"
    for table in ("gold_customer_insights", "gold_geographic_performance",
                  "gold_product_performance")
)  # fmt: skip

# Day-wide tables, for the local days in $1 date[].
CUSTOMER_INSIGHTS_FRESH = """
WITH per_segment AS MATERIALIZED (
    SELECT t.customer_type AS segment, t.local_date AS date_key,
           count(*)::bigint AS transaction_count,
           sum(t.amount) AS revenue,
           count(DISTINCT t.customer_key)::bigint AS customers,
           round(avg(t.unit_count), 4) AS avg_basket_size,
           round(avg(t.amount), 4) AS avg_basket_value
    FROM scout.silver_transactions_cleaned t
    WHERE t.local_date = ANY($1::date[])
    GROUP BY 1, 2
), repeaters AS MATERIALIZED (
    -- Customers with 2+ transactions that day, per segment. Both sides are small aggregates;
    -- MATERIALIZED keeps the planner from re-running this per transaction row.
    SELECT segment, date_key, count(*) FILTER (WHERE n >= 2) AS repeat_customers,
           count(*) AS customers
    FROM (SELECT t.customer_type AS segment, t.local_date AS date_key, t.customer_key,
                 count(*) AS n
          FROM scout.silver_transactions_cleaned t
          WHERE t.local_date = ANY($1::date[]) AND t.customer_key IS NOT NULL
          GROUP BY 1, 2, 3) per_customer
    GROUP BY 1, 2
)
SELECT s.segment, s.date_key, s.transaction_count, s.revenue, s.customers,
       s.avg_basket_size, s.avg_basket_value,
       round(r.repeat_customers::numeric / nullif(r.customers, 0), 4) AS repeat_rate
FROM per_segment s
LEFT JOIN repeaters r USING (segment, date_key)
"""
CUSTOMER_COLUMNS = (
    "segment", "date_key", "transaction_count", "revenue", "customers", "avg_basket_size",
    "avg_basket_value", "repeat_rate",
)  # fmt: skip

GEOGRAPHIC_FRESH = """
WITH per_city AS (
    SELECT t.region, t.city, t.local_date AS date_key, sum(t.amount) AS revenue,
           count(*)::bigint AS transaction_count,
           count(DISTINCT t.store_id)::bigint AS active_stores
    FROM scout.silver_transactions_cleaned t
    WHERE t.local_date = ANY($1::date[])
    GROUP BY 1, 2, 3
)
SELECT region, city, date_key, revenue, transaction_count, active_stores,
       round(revenue / nullif(sum(revenue) OVER (PARTITION BY date_key), 0), 6)
           AS share_of_total
FROM per_city
"""
GEOGRAPHIC_COLUMNS = (
    "region", "city", "date_key", "revenue", "transaction_count", "active_stores",
    "share_of_total",
)  # fmt: skip

PRODUCT_FRESH = """
WITH per_brand AS (
    SELECT i.category, coalesce(i.brand, 'unknown') AS brand, i.local_date AS date_key,
           sum(i.qty)::bigint AS units, sum(i.line_amount) AS revenue,
           count(DISTINCT i.transaction_id)::bigint AS transaction_count
    FROM scout.silver_transaction_items i
    WHERE i.local_date = ANY($1::date[])
    GROUP BY 1, 2, 3
)
SELECT category, brand, date_key, units, revenue, transaction_count,
       coalesce(round(revenue / nullif(sum(revenue) OVER (PARTITION BY category, date_key), 0),
                      6), 0) AS share_within_category,
       rank() OVER (PARTITION BY category, date_key ORDER BY revenue DESC, brand)::bigint
           AS rank_in_category
FROM per_brand
"""
PRODUCT_COLUMNS = (
    "category", "brand", "date_key", "units", "revenue", "transaction_count",
    "share_within_category", "rank_in_category",
)  # fmt: skip

# (table, fresh query, columns) of the day-wide tables: refreshed by replacing the days.
DAY_TABLES = (
    ("gold_customer_insights", CUSTOMER_INSIGHTS_FRESH, CUSTOMER_COLUMNS),
    ("gold_geographic_performance", GEOGRAPHIC_FRESH, GEOGRAPHIC_COLUMNS),
    ("gold_product_performance", PRODUCT_FRESH, PRODUCT_COLUMNS),
)


def refresh_day_table(table: str, fresh: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """Statements that replace the rows of the days in $1 by their recomputation (run both in
    one transaction; one statement cannot delete and re-insert the same key)."""
    cols = ", ".join(columns)
    return (
        f"DELETE FROM scout.{table} WHERE date_key = ANY($1::date[])",
        f"INSERT INTO scout.{table} ({cols}) SELECT {cols} FROM ({fresh}) AS fresh",
    )


# All groups that exist in silver or gold (for rebuild and verify), from a day on ($1).
ALL_STORE_DAYS = """
SELECT store_id, local_date AS date_key FROM scout.silver_transactions_cleaned
WHERE local_date >= $1 GROUP BY 1, 2
UNION
SELECT store_id, date_key FROM scout.gold_business_metrics WHERE date_key >= $1
"""
ALL_DAYS = """
SELECT DISTINCT local_date AS date_key FROM scout.silver_transactions_cleaned
WHERE local_date >= $1
UNION
SELECT date_key FROM scout.gold_customer_insights WHERE date_key >= $1
UNION
SELECT date_key FROM scout.gold_geographic_performance WHERE date_key >= $1
UNION
SELECT date_key FROM scout.gold_product_performance WHERE date_key >= $1
"""
