-- The day-wide grains' partial sums per local day only; weeks and months sum the days.
--
-- 0071 kept a partial-sum row per (period, key, shard) for days, weeks and months alike, so
-- a flush wrote each customer's segment row, each store's place row and each brand's row
-- three times. A week's (or a month's) partial sum of a key and shard is the sum of its
-- days' (a transaction has one local day; a brand's distinct transactions are counted per
-- transaction, so they add up over days too): the views now sum the day rows into weeks
-- and months, and gold writes day rows only (bench/results/chain.md, 2026-12-02, ninth
-- session: a paced flush wrote 3.6 partial-sum rows per transaction, now 1.2). The views
-- keep their names and columns; reading a month sums up to 31 days of rows.
--
-- Rows of weeks and months that 0071's backfill or an older gold worker wrote are deleted
-- here; one an older worker still writes during a rolling upgrade is never read.

DELETE FROM scout.gold_partial_segments WHERE period <> 'day';
DELETE FROM scout.gold_partial_places WHERE period <> 'day';
DELETE FROM scout.gold_partial_brands WHERE period <> 'day';

-- A reader asks for a week or a month by its first day: each table's day rows are indexed
-- by the week and the month they fall in (an update of a row's sums changes no indexed
-- column, so it stays a HOT update).
CREATE INDEX gold_partial_segments_week_idx ON scout.gold_partial_segments
    (scout.gold_period_start('week', period_start)) WHERE period = 'day';
CREATE INDEX gold_partial_segments_month_idx ON scout.gold_partial_segments
    (scout.gold_period_start('month', period_start)) WHERE period = 'day';
CREATE INDEX gold_partial_places_week_idx ON scout.gold_partial_places
    (scout.gold_period_start('week', period_start)) WHERE period = 'day';
CREATE INDEX gold_partial_places_month_idx ON scout.gold_partial_places
    (scout.gold_period_start('month', period_start)) WHERE period = 'day';
CREATE INDEX gold_partial_brands_week_idx ON scout.gold_partial_brands
    (scout.gold_period_start('week', period_start)) WHERE period = 'day';
CREATE INDEX gold_partial_brands_month_idx ON scout.gold_partial_brands
    (scout.gold_period_start('month', period_start)) WHERE period = 'day';

-- Each view: one branch per period over the day rows, so a reader's `period = 'day'` (the
-- day views) or `period IN ('week', 'month')` (the rollups) leaves out the other branches.
CREATE OR REPLACE VIEW scout.gold_customer_insights_periods AS
WITH partials AS (
    SELECT 'day'::text AS period, period_start,
           segment, customer_key, transactions, revenue, units, updated_at
    FROM scout.gold_partial_segments WHERE period = 'day'
    UNION ALL
    SELECT 'week'::text AS period, scout.gold_period_start('week', period_start) AS period_start,
           segment, customer_key, transactions, revenue, units, updated_at
    FROM scout.gold_partial_segments WHERE period = 'day'
    UNION ALL
    SELECT 'month'::text AS period, scout.gold_period_start('month', period_start) AS period_start,
           segment, customer_key, transactions, revenue, units, updated_at
    FROM scout.gold_partial_segments WHERE period = 'day'
), per_customer AS (
    SELECT period, period_start, segment, customer_key, sum(transactions) AS n,
           sum(revenue) AS revenue, sum(units) AS units, max(updated_at) AS updated_at
    FROM partials
    GROUP BY period, period_start, segment, customer_key
    HAVING sum(transactions) <> 0
)
SELECT period, period_start, segment,
       sum(n)::bigint AS transaction_count,
       sum(revenue) AS revenue,
       (count(*) FILTER (WHERE customer_key <> ''))::bigint AS customers,
       round(sum(units) / sum(n), 4) AS avg_basket_size,
       round(sum(revenue) / sum(n), 4) AS avg_basket_value,
       round((count(*) FILTER (WHERE customer_key <> '' AND n >= 2))::numeric
             / nullif(count(*) FILTER (WHERE customer_key <> ''), 0), 4) AS repeat_rate,
       max(updated_at) AS updated_at
FROM per_customer
GROUP BY period, period_start, segment;

CREATE OR REPLACE VIEW scout.gold_geographic_performance_periods AS
WITH partials AS (
    SELECT 'day'::text AS period, period_start,
           region, city, store_id, transactions, revenue, updated_at
    FROM scout.gold_partial_places WHERE period = 'day'
    UNION ALL
    SELECT 'week'::text AS period, scout.gold_period_start('week', period_start) AS period_start,
           region, city, store_id, transactions, revenue, updated_at
    FROM scout.gold_partial_places WHERE period = 'day'
    UNION ALL
    SELECT 'month'::text AS period, scout.gold_period_start('month', period_start) AS period_start,
           region, city, store_id, transactions, revenue, updated_at
    FROM scout.gold_partial_places WHERE period = 'day'
), per_store AS (
    SELECT period, period_start, region, city, store_id, sum(transactions) AS transactions,
           sum(revenue) AS revenue, max(updated_at) AS updated_at
    FROM partials
    GROUP BY period, period_start, region, city, store_id
), per_city AS (
    SELECT period, period_start, region, city, sum(revenue) AS revenue,
           sum(transactions)::bigint AS transaction_count,
           (count(*) FILTER (WHERE transactions <> 0))::bigint AS active_stores,
           max(updated_at) AS updated_at
    FROM per_store
    GROUP BY period, period_start, region, city
    HAVING sum(transactions) <> 0
)
SELECT period, period_start, region, city, revenue, transaction_count, active_stores,
       round(revenue / nullif(sum(revenue) OVER (PARTITION BY period, period_start), 0), 6)
           AS share_of_total,
       updated_at
FROM per_city;

CREATE OR REPLACE VIEW scout.gold_product_performance_periods AS
WITH partials AS (
    SELECT 'day'::text AS period, period_start,
           category, brand, units, revenue, transactions, updated_at
    FROM scout.gold_partial_brands WHERE period = 'day'
    UNION ALL
    SELECT 'week'::text AS period, scout.gold_period_start('week', period_start) AS period_start,
           category, brand, units, revenue, transactions, updated_at
    FROM scout.gold_partial_brands WHERE period = 'day'
    UNION ALL
    SELECT 'month'::text AS period, scout.gold_period_start('month', period_start) AS period_start,
           category, brand, units, revenue, transactions, updated_at
    FROM scout.gold_partial_brands WHERE period = 'day'
), per_brand AS (
    SELECT period, period_start, category, brand, sum(units)::bigint AS units,
           sum(revenue) AS revenue, sum(transactions)::bigint AS transaction_count,
           max(updated_at) AS updated_at
    FROM partials
    GROUP BY period, period_start, category, brand
    HAVING sum(transactions) <> 0
)
SELECT period, period_start, category, brand, units, revenue, transaction_count,
       round(revenue / nullif(sum(revenue) OVER (PARTITION BY period, period_start, category), 0),
             6) AS share_within_category,
       rank() OVER (PARTITION BY period, period_start, category
                    ORDER BY revenue DESC, brand)::integer AS rank_in_category,
       updated_at
FROM per_brand;
