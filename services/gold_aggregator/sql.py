"""Gold SQL, as named constants: how each gold table is computed from silver from scratch
(``scout gold rebuild`` and the reconciliation of ``scout gold verify``), for days, weeks
and months, and the statements of the incremental flush (load state, write rows, add to
the partial sums). The capture table's own statements live in changes.py.

The incremental path keeps exact state in memory (state.py) or exact partial sums in the
database (day_tables.py), and leaves every division, window sum and rank to SQL — the
recomputation's own expressions, or the day-wide views' (schemas/sql/0071) — so the two
agree digit for digit; the reconciliation checks it on every run.
"""

from __future__ import annotations

from collections.abc import Sequence


def _period_of(period: str, column: str) -> str:
    """SQL for the first day of the ``period`` a local-day ``column`` belongs to."""
    return column if period == "day" else f"scout.gold_period_start('{period}', {column})"


def _in_periods(period: str, column: str) -> str:
    """SQL: the local-day ``column`` falls in one of the periods starting on the days in $1
    (with a plain lower bound on the column for its index)."""
    if period == "day":
        return f"{column} = ANY($1::date[])"
    return (f"{_period_of(period, column)} = ANY($1::date[])"
            f" AND {column} >= (SELECT min(x) FROM unnest($1::date[]) AS x)")  # fmt: skip


def _in_group(period: str, column: str) -> str:
    """SQL: ``column`` (a local day) falls in the period that starts on k.date_key."""
    if period == "day":
        return f"{column} = k.date_key"
    return f"{column} >= k.date_key AND {column} < (k.date_key + interval '1 {period}')::date"


def business_fresh(period: str) -> str:
    """The recomputation of (store, period) groups from silver; the groups are given as two
    parallel arrays, $1 text[] of stores and $2 date[] of the periods' first days."""
    return f"""
WITH keys AS (
    SELECT DISTINCT store_id, date_key FROM unnest($1::text[], $2::date[]) AS k(store_id, date_key)
), tx AS (
    SELECT t.store_id, k.date_key, min(t.region) AS region, min(t.city) AS city,
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
    JOIN keys k ON t.store_id = k.store_id AND {_in_group(period, "t.local_date")}
    GROUP BY t.store_id, k.date_key
), foot AS (
    SELECT r.store_id, k.date_key, sum(r.value) AS footfall
    FROM scout.silver_device_readings r
    JOIN keys k ON r.store_id = k.store_id AND {_in_group(period, "r.local_date")}
    WHERE r.kind = 'footfall'
    GROUP BY r.store_id, k.date_key
), spend AS (
    SELECT s.store_id, k.date_key, sum(s.spend) AS campaign_spend
    FROM scout.silver_campaign_spend s
    JOIN keys k ON s.store_id = k.store_id AND {_in_group(period, "s.spend_date")}
    GROUP BY s.store_id, k.date_key
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


BUSINESS_METRICS_FRESH = business_fresh("day")

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

# Incremental maintenance of gold_business_metrics (see incremental.py; the changes are
# taken by changes.claim). Lock the groups and bump their revisions; returns the new
# revision per group.
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

# The same for the (store, week) and (store, month) groups of gold_business_metrics_rollups:
# $3 is the period ('week' or 'month'); groups are (store, first day of the period).
BUMP_ROLLUP_REVISIONS = """
INSERT INTO scout.gold_rollup_revisions AS r (period, store_id, period_start, revision)
SELECT $3, store_id, period_start, 1
FROM unnest($1::text[], $2::date[]) AS k(store_id, period_start)
ON CONFLICT (period, store_id, period_start) DO UPDATE SET revision = r.revision + 1
RETURNING store_id, period_start, revision
"""
# Silver rows of (store, first day, day after the last) ranges, by the range's ordinal.
LOAD_RANGE_TRANSACTIONS = """
SELECT k.i, t.amount, t.customer_key, t.customer_type, t.region, t.city
FROM unnest($1::text[], $2::date[], $3::date[]) WITH ORDINALITY AS k(store_id, first, stop, i)
JOIN scout.silver_transactions_cleaned t
  ON t.store_id = k.store_id AND t.local_date >= k.first AND t.local_date < k.stop
"""
LOAD_RANGE_SUMS = """
SELECT k.i,
       (SELECT coalesce(sum(r.value), 0) FROM scout.silver_device_readings r
        WHERE r.store_id = k.store_id AND r.local_date >= k.first AND r.local_date < k.stop
          AND r.kind = 'footfall') AS footfall,
       (SELECT coalesce(sum(s.spend), 0) FROM scout.silver_campaign_spend s
        WHERE s.store_id = k.store_id AND s.spend_date >= k.first AND s.spend_date < k.stop)
           AS spend
FROM unnest($1::text[], $2::date[], $3::date[]) WITH ORDINALITY AS k(store_id, first, stop, i)
"""
ROLLUP_COLUMNS = ("store_id", "period_start", "region", "city", "transaction_count", "revenue",
                  *BUSINESS_COLUMNS[6:])  # fmt: skip
_ROLLUP_VALUES = ", ".join(ROLLUP_COLUMNS)
_ROLLUP_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in ROLLUP_COLUMNS[2:])
_ROLLUP_CHANGED = ", ".join(f"g.{c}" for c in ROLLUP_COLUMNS[2:])
_ROLLUP_NEW = ", ".join(f"EXCLUDED.{c}" for c in ROLLUP_COLUMNS[2:])
UPSERT_BUSINESS_ROLLUPS = f"""
INSERT INTO scout.gold_business_metrics_rollups AS g (period, {_ROLLUP_VALUES})
SELECT $16, * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[],
                     $6::numeric[], $7::numeric[], $8::bigint[], $9::numeric[], $10::numeric[],
                     $11::bigint[], $12::bigint[], $13::bigint[], $14::numeric[], $15::numeric[])
ON CONFLICT (period, store_id, period_start) DO UPDATE SET {_ROLLUP_SET}, updated_at = now()
WHERE ({_ROLLUP_CHANGED}) IS DISTINCT FROM ({_ROLLUP_NEW})
"""
DELETE_BUSINESS_ROLLUPS = """
DELETE FROM scout.gold_business_metrics_rollups g
USING unnest($1::text[], $2::date[]) AS k(store_id, period_start)
WHERE g.period = $3 AND g.store_id = k.store_id AND g.period_start = k.period_start
"""


def refresh_business_rollups(period: str) -> str:
    """Upsert the recomputed (store, period) groups in $1, $2 and drop those left empty."""
    return f"""
WITH fresh AS ({business_fresh(period)}),
gone AS (
    DELETE FROM scout.gold_business_metrics_rollups g
    USING unnest($1::text[], $2::date[]) AS k(store_id, date_key)
    WHERE g.period = '{period}' AND g.store_id = k.store_id AND g.period_start = k.date_key
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.store_id = g.store_id
                      AND f.date_key = g.period_start)
    RETURNING 1
), written AS (
    INSERT INTO scout.gold_business_metrics_rollups AS g (period, {_ROLLUP_VALUES})
    SELECT '{period}', {_BUSINESS_VALUES} FROM fresh
    ON CONFLICT (period, store_id, period_start) DO UPDATE SET {_ROLLUP_SET}, updated_at = now()
    WHERE ({_ROLLUP_CHANGED}) IS DISTINCT FROM ({_ROLLUP_NEW})
    RETURNING 1
)
SELECT (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM gone) AS deleted
"""


# The day-wide grains' partial sums per (period, key, shard) (day_tables.py): add signed
# sums, then drop the rows left at zero. One row per key and statement (summed before).
UPSERT_PARTIAL_SEGMENTS = """
INSERT INTO scout.gold_partial_segments AS p (period, period_start, segment, customer_key, shard,
    transactions, revenue, units)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::smallint[],
                     $6::bigint[], $7::numeric[], $8::bigint[])
ON CONFLICT (period, period_start, segment, customer_key, shard) DO UPDATE SET
    transactions = p.transactions + EXCLUDED.transactions,
    revenue = p.revenue + EXCLUDED.revenue, units = p.units + EXCLUDED.units, updated_at = now()
"""
UPSERT_PARTIAL_PLACES = """
INSERT INTO scout.gold_partial_places AS p (period, period_start, region, city, store_id, shard,
    transactions, revenue)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::smallint[],
                     $7::bigint[], $8::numeric[])
ON CONFLICT (period, period_start, region, city, store_id) DO UPDATE SET
    transactions = p.transactions + EXCLUDED.transactions,
    revenue = p.revenue + EXCLUDED.revenue, updated_at = now()
"""
UPSERT_PARTIAL_BRANDS = """
INSERT INTO scout.gold_partial_brands AS p (period, period_start, category, brand, shard, units,
    revenue, transactions)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::smallint[],
                     $6::bigint[], $7::numeric[], $8::bigint[])
ON CONFLICT (period, period_start, category, brand, shard) DO UPDATE SET
    units = p.units + EXCLUDED.units, revenue = p.revenue + EXCLUDED.revenue,
    transactions = p.transactions + EXCLUDED.transactions, updated_at = now()
"""


# Rows a flush brought to zero transactions, by their keys (the keys of UPSERT_PARTIAL_*
# whose transactions did not go up): one index look-up each, not a scan of every customer's
# row of the period per shard. Only a flush makes a row zero (a rebuild writes counts of
# silver rows, at least 1), so no zero row outlives the flush that made it. (The views skip
# zero rows anyway, `HAVING sum(transactions) <> 0`: this is housekeeping, not correctness.)
def _drop_zero(table: str, keys: Sequence[tuple[str, str]]) -> str:
    """DELETE of ``table``'s rows at zero transactions among the keys given ($1…: one array
    per (column, type) of ``keys``; ``period_start`` is matched to the column ``start``)."""
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(keys, 1))
    names = ", ".join(name for name, _ in keys)
    match = " AND ".join(
        f"p.{'period_start' if name == 'start' else name} = k.{name}" for name, _ in keys
    )
    return f"""
DELETE FROM scout.{table} p USING unnest({arrays}) AS k({names})
WHERE {match} AND p.transactions = 0
"""


_PERIOD_KEY = (("period", "text"), ("start", "date"))
_SHARD = ("shard", "smallint")
DROP_EMPTY_SEGMENTS = _drop_zero(
    "gold_partial_segments", (*_PERIOD_KEY, ("segment", "text"), ("customer_key", "text"), _SHARD)
)
DROP_EMPTY_PLACES = _drop_zero(
    "gold_partial_places",
    (*_PERIOD_KEY, ("region", "text"), ("city", "text"), ("store_id", "text"), _SHARD),
)
DROP_EMPTY_BRANDS = _drop_zero(
    "gold_partial_brands", (*_PERIOD_KEY, ("category", "text"), ("brand", "text"), _SHARD)
)

# `scout gold rebuild` of the partial sums ($1 the period they are kept for, 'day' since
# 0072; $2 its first days, $3 first day of all, $4 the day after the last): lock the capture
# table first (no change can be captured or taken meanwhile), recompute from silver, and
# mark the changes still waiting as counted for that period ($5 its bit).
LOCK_CHANGES = "LOCK TABLE scout.gold_silver_changes IN SHARE ROW EXCLUSIVE MODE"
CLEAR_PARTIALS = tuple(
    f"DELETE FROM scout.{table} WHERE period = $1 AND period_start = ANY($2::date[])"
    for table in ("gold_partial_segments", "gold_partial_places", "gold_partial_brands")
)
_SILVER_IN_PERIODS = """local_date >= $3 AND local_date < $4
      AND scout.gold_period_start($1, local_date) = ANY($2::date[])"""
REBUILD_PARTIALS = (
    f"""
INSERT INTO scout.gold_partial_segments (period, period_start, segment, customer_key, shard,
    transactions, revenue, units)
SELECT $1, scout.gold_period_start($1, local_date), customer_type, coalesce(customer_key, ''),
       scout.gold_shard(store_id), count(*), sum(amount), sum(unit_count)
FROM scout.silver_transactions_cleaned WHERE {_SILVER_IN_PERIODS}
GROUP BY 2, 3, 4, 5
""",
    f"""
INSERT INTO scout.gold_partial_places (period, period_start, region, city, store_id, shard,
    transactions, revenue)
SELECT $1, scout.gold_period_start($1, local_date), region, city, store_id,
       scout.gold_shard(store_id), count(*), sum(amount)
FROM scout.silver_transactions_cleaned WHERE {_SILVER_IN_PERIODS}
GROUP BY 2, 3, 4, 5
""",
    f"""
INSERT INTO scout.gold_partial_brands (period, period_start, category, brand, shard, units,
    revenue, transactions)
SELECT $1, scout.gold_period_start($1, local_date), category, coalesce(brand, 'unknown'),
       scout.gold_shard(store_id), sum(qty), sum(line_amount), count(DISTINCT transaction_id)
FROM scout.silver_transaction_items WHERE {_SILVER_IN_PERIODS}
GROUP BY 2, 3, 4, 5
""",
)
MARK_REBUILT = """
UPDATE scout.gold_silver_changes SET rebuilt = rebuilt | $5
WHERE date_key >= $3 AND date_key < $4 AND rebuilt & $5 = 0
  AND scout.gold_period_start($1, date_key) = ANY($2::date[])
"""


# The day-wide tables recomputed from silver for the periods whose first days are in
# $1 date[] (`scout gold verify`); `period` is 'day', 'week' or 'month'.
def customer_insights_fresh(period: str) -> str:
    day = _period_of(period, "t.local_date")
    return f"""
WITH per_segment AS MATERIALIZED (
    SELECT t.customer_type AS segment, {day} AS date_key,
           count(*)::bigint AS transaction_count,
           sum(t.amount) AS revenue,
           count(DISTINCT t.customer_key)::bigint AS customers,
           round(avg(t.unit_count), 4) AS avg_basket_size,
           round(avg(t.amount), 4) AS avg_basket_value
    FROM scout.silver_transactions_cleaned t
    WHERE {_in_periods(period, "t.local_date")}
    GROUP BY 1, 2
), repeaters AS MATERIALIZED (
    -- Customers with 2+ transactions in the period, per segment. Both sides are small
    -- aggregates; MATERIALIZED keeps the planner from re-running this per transaction row.
    SELECT segment, date_key, count(*) FILTER (WHERE n >= 2) AS repeat_customers,
           count(*) AS customers
    FROM (SELECT t.customer_type AS segment, {day} AS date_key, t.customer_key,
                 count(*) AS n
          FROM scout.silver_transactions_cleaned t
          WHERE {_in_periods(period, "t.local_date")} AND t.customer_key IS NOT NULL
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


def geographic_fresh(period: str) -> str:
    day = _period_of(period, "t.local_date")
    return f"""
WITH per_city AS (
    SELECT t.region, t.city, {day} AS date_key, sum(t.amount) AS revenue,
           count(*)::bigint AS transaction_count,
           count(DISTINCT t.store_id)::bigint AS active_stores
    FROM scout.silver_transactions_cleaned t
    WHERE {_in_periods(period, "t.local_date")}
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


def product_fresh(period: str) -> str:
    day = _period_of(period, "i.local_date")
    return f"""
WITH per_brand AS (
    SELECT i.category, coalesce(i.brand, 'unknown') AS brand, {day} AS date_key,
           sum(i.qty)::bigint AS units, sum(i.line_amount) AS revenue,
           count(DISTINCT i.transaction_id)::bigint AS transaction_count
    FROM scout.silver_transaction_items i
    WHERE {_in_periods(period, "i.local_date")}
    GROUP BY 1, 2, 3
)
SELECT category, brand, date_key, units, revenue, transaction_count,
       round(revenue / nullif(sum(revenue) OVER (PARTITION BY category, date_key), 0), 6)
           AS share_within_category,
       rank() OVER (PARTITION BY category, date_key ORDER BY revenue DESC, brand)::bigint
           AS rank_in_category
FROM per_brand
"""


PRODUCT_COLUMNS = (
    "category", "brand", "date_key", "units", "revenue", "transaction_count",
    "share_within_category", "rank_in_category",
)  # fmt: skip
CUSTOMER_INSIGHTS_FRESH = customer_insights_fresh("day")
GEOGRAPHIC_FRESH = geographic_fresh("day")
PRODUCT_FRESH = product_fresh("day")

# (table, recomputation, columns) of the day-wide tables (views over the partial sums).
DAY_TABLES = (
    ("gold_customer_insights", customer_insights_fresh, CUSTOMER_COLUMNS),
    ("gold_geographic_performance", geographic_fresh, GEOGRAPHIC_COLUMNS),
    ("gold_product_performance", product_fresh, PRODUCT_COLUMNS),
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
SELECT DISTINCT period_start FROM scout.gold_partial_segments
WHERE period = 'day' AND period_start >= $1
UNION
SELECT DISTINCT period_start FROM scout.gold_partial_brands
WHERE period = 'day' AND period_start >= $1
"""
# The (store, period) groups and the periods ($2) that exist in silver or gold from a day
# on ($1): the first period is the one containing that day.
ALL_STORE_PERIODS = """
SELECT store_id, scout.gold_period_start($2, local_date) AS date_key
FROM scout.silver_transactions_cleaned
WHERE local_date >= scout.gold_period_start($2, $1) GROUP BY 1, 2
UNION
SELECT store_id, period_start FROM scout.gold_business_metrics_rollups
WHERE period = $2 AND period_start >= scout.gold_period_start($2, $1)
"""
ALL_PERIODS = """
SELECT DISTINCT scout.gold_period_start($2, local_date) AS date_key
FROM scout.silver_transactions_cleaned WHERE local_date >= scout.gold_period_start($2, $1)
UNION
SELECT DISTINCT period_start FROM scout.gold_partial_segments
WHERE period = $2 AND period_start >= scout.gold_period_start($2, $1)
UNION
SELECT DISTINCT period_start FROM scout.gold_partial_brands
WHERE period = $2 AND period_start >= scout.gold_period_start($2, $1)
"""
