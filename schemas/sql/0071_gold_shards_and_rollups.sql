-- Gold with N replicas, and weekly and monthly rollups.
--
-- Replicas share the work by shard (scout.gold_shard(store_id), 0070): each takes the
-- changes of the shards Kafka's consumer group gave it (services/gold_aggregator/shards.py)
-- and holds exact state only for those stores.
--
-- Per store: `gold_business_metrics` (days) and the new `gold_business_metrics_rollups`
-- (ISO weeks from Monday, calendar months) are rows of one store's group, kept from the
-- exact state in the owning replica's memory (medians and distinct customers over the
-- whole period, not derived from the days).
--
-- Day-wide grains (customer segment, region x city, category x brand) span every shard.
-- Each replica keeps *partial sums* of its shards in the gold_partial_* tables (one row per
-- period, key and shard: no two replicas ever write the same row), in the transaction that
-- takes the changes; the day-wide tables become views that combine the partial sums of all
-- shards, exactly: a customer's transactions are summed over the shards before a customer
-- is counted (distinct customers, repeat rate), stores are counted per (region, city), and
-- shares and ranks are taken over the combined sums. The views always show every committed
-- flush; nothing combines them in the background, so nothing can lag or race.
--
-- Released migrations are never edited (services/common/migrations.py): this file only
-- adds, drops what is dead, and replaces the three day-wide tables by views of the same
-- names and columns (integer counts become bigint, numbers unconstrained numeric).

-- The first day of the period a local day belongs to, as gold groups it.
CREATE FUNCTION scout.gold_period_start(period text, day date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN period = 'day' THEN day ELSE date_trunc(period, day::timestamp)::date END;

CREATE TABLE scout.gold_partial_segments (
    period        text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start  date NOT NULL,
    segment       text NOT NULL,                  -- customer_type
    customer_key  text NOT NULL,                  -- '' for transactions without a customer
    shard         smallint NOT NULL,
    transactions  bigint NOT NULL,
    revenue       numeric NOT NULL,
    units         bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, period_start, segment, customer_key, shard)
);

CREATE TABLE scout.gold_partial_places (
    period        text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start  date NOT NULL,
    region        text NOT NULL,
    city          text NOT NULL,
    store_id      text NOT NULL,                  -- one store: one shard
    shard         smallint NOT NULL,
    transactions  bigint NOT NULL,
    revenue       numeric NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, period_start, region, city, store_id)
);

CREATE TABLE scout.gold_partial_brands (
    period        text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start  date NOT NULL,
    category      text NOT NULL,
    brand         text NOT NULL,                  -- 'unknown' for SKUs without a brand
    shard         smallint NOT NULL,
    units         bigint NOT NULL,
    revenue       numeric NOT NULL,
    transactions  bigint NOT NULL,                -- distinct transactions with such lines
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, period_start, category, brand, shard)
);

-- The partial sums of what silver holds, less the changes still waiting (gold adds those
-- when it takes them).
INSERT INTO scout.gold_partial_segments
    (period, period_start, segment, customer_key, shard, transactions, revenue, units)
SELECT p.period, scout.gold_period_start(p.period, x.day), x.segment, x.customer_key,
       scout.gold_shard(x.store_id), sum(x.n), sum(x.revenue), sum(x.units)
FROM (
    SELECT local_date, store_id, customer_type, coalesce(customer_key, ''), 1, amount, unit_count
    FROM scout.silver_transactions_cleaned
    UNION ALL
    SELECT date_key, store_id, customer_type, coalesce(customer_key, ''), -sign, -sign * value,
           -sign * units
    FROM scout.gold_silver_changes WHERE kind = 'transaction'
) AS x (day, store_id, segment, customer_key, n, revenue, units)
CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS p (period)
GROUP BY 1, 2, 3, 4, 5 HAVING sum(x.n) <> 0;

INSERT INTO scout.gold_partial_places
    (period, period_start, region, city, store_id, shard, transactions, revenue)
SELECT p.period, scout.gold_period_start(p.period, x.day), x.region, x.city, x.store_id,
       scout.gold_shard(x.store_id), sum(x.n), sum(x.revenue)
FROM (
    SELECT local_date, region, city, store_id, 1, amount FROM scout.silver_transactions_cleaned
    UNION ALL
    SELECT date_key, region, city, store_id, -sign, -sign * value
    FROM scout.gold_silver_changes WHERE kind = 'transaction'
) AS x (day, region, city, store_id, n, revenue)
CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS p (period)
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(x.n) <> 0;

INSERT INTO scout.gold_partial_brands
    (period, period_start, category, brand, shard, units, revenue, transactions)
SELECT p.period, scout.gold_period_start(p.period, x.day), x.category, x.brand,
       scout.gold_shard(x.store_id), sum(x.units), sum(x.revenue), sum(x.n)
FROM (
    SELECT local_date, category, coalesce(brand, 'unknown'), store_id, qty, line_amount,
           -- distinct transactions per (store, day, brand): counted on the first line
           (row_number() OVER (PARTITION BY transaction_id, category,
                                            coalesce(brand, 'unknown') ORDER BY line_no) = 1)::int
    FROM scout.silver_transaction_items
    UNION ALL
    SELECT date_key, category, brand, store_id, -sign * units, -sign * value,
           -sign * transactions
    FROM scout.gold_silver_changes WHERE kind = 'items'
) AS x (day, category, brand, store_id, units, revenue, n)
CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS p (period)
GROUP BY 1, 2, 3, 4, 5 HAVING sum(x.n) <> 0;

-- The day-wide tables, for every period, combined over the shards.
CREATE VIEW scout.gold_customer_insights_periods AS
WITH per_customer AS (
    SELECT period, period_start, segment, customer_key, sum(transactions) AS n,
           sum(revenue) AS revenue, sum(units) AS units, max(updated_at) AS updated_at
    FROM scout.gold_partial_segments
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

CREATE VIEW scout.gold_geographic_performance_periods AS
WITH per_city AS (
    SELECT period, period_start, region, city, sum(revenue) AS revenue,
           sum(transactions)::bigint AS transaction_count,
           (count(*) FILTER (WHERE transactions <> 0))::bigint AS active_stores,
           max(updated_at) AS updated_at
    FROM scout.gold_partial_places
    GROUP BY period, period_start, region, city
    HAVING sum(transactions) <> 0
)
SELECT period, period_start, region, city, revenue, transaction_count, active_stores,
       round(revenue / nullif(sum(revenue) OVER (PARTITION BY period, period_start), 0), 6)
           AS share_of_total,
       updated_at
FROM per_city;

CREATE VIEW scout.gold_product_performance_periods AS
WITH per_brand AS (
    SELECT period, period_start, category, brand, sum(units)::bigint AS units,
           sum(revenue) AS revenue, sum(transactions)::bigint AS transaction_count,
           max(updated_at) AS updated_at
    FROM scout.gold_partial_brands
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

DROP TABLE scout.gold_customer_insights, scout.gold_geographic_performance,
    scout.gold_product_performance, scout.gold_day_revisions;

CREATE VIEW scout.gold_customer_insights AS
SELECT segment, period_start AS date_key, transaction_count, revenue, customers,
       avg_basket_size, avg_basket_value, repeat_rate, updated_at
FROM scout.gold_customer_insights_periods WHERE period = 'day';

CREATE VIEW scout.gold_geographic_performance AS
SELECT region, city, period_start AS date_key, revenue, transaction_count, active_stores,
       share_of_total, updated_at
FROM scout.gold_geographic_performance_periods WHERE period = 'day';

CREATE VIEW scout.gold_product_performance AS
SELECT category, brand, period_start AS date_key, units, revenue, transaction_count,
       share_within_category, rank_in_category, updated_at
FROM scout.gold_product_performance_periods WHERE period = 'day';

CREATE VIEW scout.gold_customer_insights_rollups AS
SELECT period, period_start, segment, transaction_count, revenue, customers, avg_basket_size,
       avg_basket_value, repeat_rate, updated_at
FROM scout.gold_customer_insights_periods WHERE period IN ('week', 'month');

CREATE VIEW scout.gold_geographic_performance_rollups AS
SELECT period, period_start, region, city, revenue, transaction_count, active_stores,
       share_of_total, updated_at
FROM scout.gold_geographic_performance_periods WHERE period IN ('week', 'month');

CREATE VIEW scout.gold_product_performance_rollups AS
SELECT period, period_start, category, brand, units, revenue, transaction_count,
       share_within_category, rank_in_category, updated_at
FROM scout.gold_product_performance_periods WHERE period IN ('week', 'month');

-- Per store and week or month: the columns of gold_business_metrics (whatever types earlier
-- migrations gave them), `date_key` as `period_start`, `daily_revenue` as `revenue`.
CREATE TABLE scout.gold_business_metrics_rollups
    (LIKE scout.gold_business_metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE scout.gold_business_metrics_rollups RENAME COLUMN date_key TO period_start;
ALTER TABLE scout.gold_business_metrics_rollups RENAME COLUMN daily_revenue TO revenue;
ALTER TABLE scout.gold_business_metrics_rollups
    ADD COLUMN period text NOT NULL CHECK (period IN ('week', 'month')),
    ADD PRIMARY KEY (period, store_id, period_start);
CREATE INDEX gold_business_metrics_rollups_start_idx
    ON scout.gold_business_metrics_rollups (period, period_start);

-- As gold_group_revisions, for the (store, week) and (store, month) groups.
CREATE TABLE scout.gold_rollup_revisions (
    period        text NOT NULL,
    store_id      text NOT NULL,
    period_start  date NOT NULL,
    revision      bigint NOT NULL,
    PRIMARY KEY (period, store_id, period_start)
);

-- Every (store, week) and (store, month) silver already has: a change of nothing (spend 0,
-- as 0040 did for the pending groups), so the first flush loads each group from silver and
-- writes its row.
INSERT INTO scout.gold_silver_changes (kind, sign, store_id, date_key, value)
SELECT DISTINCT 'spend', 1, t.store_id,
       scout.gold_period_start(p.period, t.local_date), 0
FROM scout.silver_transactions_cleaned t CROSS JOIN (VALUES ('week'), ('month')) AS p (period);

GRANT SELECT, INSERT, UPDATE, DELETE ON scout.gold_partial_segments, scout.gold_partial_places,
    scout.gold_partial_brands, scout.gold_business_metrics_rollups TO scout_gold_aggregator;
GRANT SELECT, INSERT, UPDATE ON scout.gold_rollup_revisions TO scout_gold_aggregator;
-- `scout gold rebuild` marks the waiting changes it counted (0070's `rebuilt`), and locks
-- the table against new ones meanwhile.
GRANT UPDATE (rebuilt) ON scout.gold_silver_changes TO scout_gold_aggregator;
GRANT SELECT ON scout.gold_customer_insights, scout.gold_geographic_performance,
    scout.gold_product_performance, scout.gold_business_metrics_rollups,
    scout.gold_customer_insights_rollups, scout.gold_geographic_performance_rollups,
    scout.gold_product_performance_rollups TO scout_platinum_builder, scout_reader;
GRANT SELECT ON scout.gold_customer_insights_periods, scout.gold_geographic_performance_periods,
    scout.gold_product_performance_periods, scout.gold_customer_insights,
    scout.gold_geographic_performance, scout.gold_product_performance,
    scout.gold_customer_insights_rollups, scout.gold_geographic_performance_rollups,
    scout.gold_product_performance_rollups TO scout_gold_aggregator;
