-- One channel from silver to gold, with one name: the change.
--
-- Silver handed data to gold twice: statement triggers into `gold_silver_deltas` (gold's
-- real input) and the `silver-changes` Kafka topic (read only by the rolling windows, with
-- fields nobody read), while gold's input had three names (delta, change, pending). From
-- here on there is one channel: the capture triggers write *changes* into
-- `gold_silver_changes`, in silver's own transaction, and gold takes them in the
-- transaction that writes gold. The topic is no longer written or read.
--
-- The change record's shape is mirrored once in Python: services/gold_aggregator/changes.py
-- (`Change`, `COLUMNS`). Change both together, with a new migration.
--
-- What this migration changes:
--   * the table is renamed `gold_silver_changes` (its rows are kept);
--   * each change carries its `shard` (scout.gold_shard(store_id), see below): gold
--     replicas take the changes of the shards Kafka's consumer group assigned to them;
--   * `rebuilt` marks what a rebuild already counted (see below and 0071);
--   * each transaction change carries `occurred_at` (the transaction's event time), which
--     the rolling windows bucket by, so a correction moves a sale instead of adding one;
--   * line items are captured per (store, day, category, brand) instead of per (day,
--     category, brand), so the product table's partial sums belong to one store's shard;
--   * `gold_pending_groups` (empty since 0040) is dropped, and the quality view no longer
--     reads it.

-- A store's shard: 64 fixed shards, a function of the store id that never changes (md5's
-- first byte; 256 is a multiple of 64, so the shards are even). Kafka partitions of the
-- gold-shards topic own shards by `shard % partitions` (services/gold_aggregator/shards.py).
CREATE FUNCTION scout.gold_shard(store_id text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (get_byte(decode(md5(store_id), 'hex'), 0) % 64)::smallint;

ALTER TABLE scout.gold_silver_deltas RENAME TO gold_silver_changes;
ALTER INDEX scout.gold_silver_deltas_group_idx RENAME TO gold_silver_changes_group_idx;
ALTER TABLE scout.gold_silver_changes
    -- Always the store's: computed by the database on every insert, whoever inserts.
    ADD COLUMN shard smallint NOT NULL GENERATED ALWAYS AS (scout.gold_shard(store_id)) STORED,
    ADD COLUMN occurred_at timestamptz,   -- transactions: event time of the row contributing
    -- Periods (bit mask: 1 day, 2 week, 4 month) whose partial sums already contain this
    -- change: `scout gold rebuild` recomputes them from silver while the change waits
    -- (0071); gold then applies it to the (store, period) groups only.
    ADD COLUMN rebuilt smallint NOT NULL DEFAULT 0;
CREATE INDEX gold_silver_changes_shard_idx ON scout.gold_silver_changes (shard, date_key);
COMMENT ON TABLE scout.gold_silver_changes IS
    'silver -> gold: signed changes captured by triggers in silver''s transactions; '
    'mirrored by services/gold_aggregator/changes.py';

CREATE OR REPLACE FUNCTION scout.gold_capture_transactions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Only rows whose contribution to gold changed (a re-enrichment that changes no
        -- gold column, or a newer version with the same values, is no change).
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region,
             city, units, occurred_at, kafka_timestamp)
        SELECT 'transaction', s.sign, s.store_id, s.local_date,
               s.amount, s.customer_key, s.customer_type, s.region, s.city, s.unit_count,
               s.occurred_at, s.kafka_timestamp
        FROM old_rows o JOIN new_rows n USING (transaction_id)
        CROSS JOIN LATERAL (VALUES
            (-1, o.store_id, o.local_date, o.amount, o.customer_key, o.customer_type, o.region,
             o.city, o.unit_count, o.transaction_date, n.kafka_timestamp),
            (1, n.store_id, n.local_date, n.amount, n.customer_key, n.customer_type, n.region,
             n.city, n.unit_count, n.transaction_date, n.kafka_timestamp)
        ) AS s (sign, store_id, local_date, amount, customer_key, customer_type, region, city,
                unit_count, occurred_at, kafka_timestamp)
        WHERE (o.store_id, o.local_date, o.amount, o.customer_key, o.customer_type, o.region,
               o.city, o.unit_count, o.transaction_date)
              IS DISTINCT FROM
              (n.store_id, n.local_date, n.amount, n.customer_key, n.customer_type, n.region,
               n.city, n.unit_count, n.transaction_date);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region,
             city, units, occurred_at, kafka_timestamp)
        SELECT 'transaction', 1, store_id, local_date, amount,
               customer_key, customer_type, region, city, unit_count, transaction_date,
               kafka_timestamp
        FROM new_rows;
    ELSE
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region,
             city, units, occurred_at)
        SELECT 'transaction', -1, store_id, local_date, amount,
               customer_key, customer_type, region, city, unit_count, transaction_date
        FROM old_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION scout.gold_capture_footfall() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    -- Readings without a local day (store still unknown) count nowhere yet.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_changes (kind, sign, store_id, date_key, value)
        SELECT 'footfall', -1, store_id, local_date, value
        FROM old_rows WHERE kind = 'footfall' AND local_date IS NOT NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_changes (kind, sign, store_id, date_key, value)
        SELECT 'footfall', 1, store_id, local_date, value
        FROM new_rows WHERE kind = 'footfall' AND local_date IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION scout.gold_capture_spend() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_changes (kind, sign, store_id, date_key, value)
        SELECT 'spend', -1, store_id, spend_date, spend
        FROM old_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, kafka_timestamp)
        SELECT 'spend', 1, store_id, spend_date, spend,
               kafka_timestamp
        FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION scout.gold_capture_items() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    -- One row per (store, day, category, brand) and statement, not per line: silver writes
    -- all lines of a transaction in one statement (and deletes them in one), so the distinct
    -- transactions of a statement's rows are exactly what each adds to (or removes from)
    -- gold_product_performance.transaction_count; a transaction has one store, so the
    -- counts of different stores (and shards) add up.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, units, category, brand, transactions)
        SELECT 'items', -1, store_id, local_date, sum(line_amount),
               sum(qty), category, coalesce(brand, 'unknown'), count(DISTINCT transaction_id)
        FROM old_rows GROUP BY store_id, local_date, category, coalesce(brand, 'unknown');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_changes
            (kind, sign, store_id, date_key, value, units, category, brand, transactions)
        SELECT 'items', 1, store_id, local_date, sum(line_amount),
               sum(qty), category, coalesce(brand, 'unknown'), count(DISTINCT transaction_id)
        FROM new_rows GROUP BY store_id, local_date, category, coalesce(brand, 'unknown');
    END IF;
    RETURN NULL;
END
$$;

-- The quality view's gold layer, as in 0040, without the pending-group queue (replaced
-- before the table is dropped: the old view depends on it).
CREATE OR REPLACE VIEW scout.data_quality_dashboard AS
WITH
bronze AS (
    SELECT
        (SELECT count(*) FROM scout.bronze_transactions_raw
          WHERE ingested_at >= now() - interval '24 hours')
      + (SELECT count(*) FROM scout.bronze_error_log
          WHERE logged_at >= now() - interval '24 hours') AS total,
        (SELECT count(*) FROM scout.bronze_transactions_raw
          WHERE ingested_at >= now() - interval '24 hours') AS valid,
        (SELECT extract(epoch FROM max(ingested_at - kafka_timestamp))
           FROM scout.bronze_transactions_raw
          WHERE ingested_at >= now() - interval '15 minutes') AS freshness
),
silver AS (
    SELECT
        l.total, l.valid,
        greatest(
            (SELECT extract(epoch FROM max(updated_at - kafka_timestamp))
               FROM scout.silver_transactions_cleaned
              WHERE updated_at >= now() - interval '15 minutes'),
            (SELECT extract(epoch FROM now() - min(b.ingested_at))
               FROM scout.bronze_transactions_raw b
              WHERE b.ingested_at >= now() - interval '1 hour'
                AND NOT EXISTS (SELECT 1 FROM scout.silver_lineage sl WHERE sl.bronze_id = b.id)),
            (SELECT freshness FROM bronze)
        ) AS freshness
    FROM (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE target <> 'silver_quarantine') AS valid
          FROM scout.silver_lineage
         WHERE processed_at >= now() - interval '24 hours'
    ) l
),
gold_groups AS (
    SELECT coalesce(g.store_id, s.store_id) AS store_id,
           coalesce(g.date_key, s.local_date) AS date_key,
           g.transaction_count IS NOT DISTINCT FROM s.n
             AND g.daily_revenue IS NOT DISTINCT FROM s.revenue AS balanced
      FROM (SELECT store_id, date_key, transaction_count, daily_revenue
              FROM scout.gold_business_metrics
             WHERE date_key >= current_date - 1) g
      FULL JOIN (SELECT store_id, local_date, count(*)::integer AS n, sum(amount) AS revenue
                   FROM scout.silver_transactions_cleaned
                  WHERE local_date >= current_date - 1
                  GROUP BY store_id, local_date) s
        ON s.store_id = g.store_id AND s.local_date = g.date_key
),
gold AS (
    SELECT
        count(*) AS total,
        count(*) FILTER (WHERE gg.balanced OR EXISTS (
            SELECT 1 FROM scout.gold_silver_changes d
             WHERE d.store_id = gg.store_id AND d.date_key = gg.date_key
               AND d.captured_at >= now() - interval '30 minutes')) AS valid,
        greatest(
            (SELECT extract(epoch FROM now() - min(coalesce(kafka_timestamp, captured_at)))
               FROM scout.gold_silver_changes),
            (SELECT freshness FROM silver)
        ) AS freshness
    FROM gold_groups gg
),
platinum_features AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE daily_revenue >= 0 AND revenue_7d_ma >= 0
                              AND revenue_30d_ma >= 0 AND store_percentile BETWEEN 0 AND 1
                              AND (day_of_week_index IS NULL OR day_of_week_index >= 0)) AS valid
      FROM scout.platinum_ml_features
     WHERE as_of = (SELECT max(as_of) FROM scout.platinum_ml_features)
),
platinum_private AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM scout.platinum_privacy_ledger l
                                           WHERE l.release_id = a.release_id)) AS valid
      FROM scout.platinum_anonymized_analytics a
),
platinum AS (
    SELECT
        f.total + p.total AS total,
        CASE WHEN EXISTS (
                SELECT 1 FROM information_schema.columns
                 WHERE table_schema = 'scout' AND table_name LIKE 'platinum%'
                   AND column_name ~ '^(customer(_(key|id|name))?|.*(phone|e_?mail).*)$')
             THEN 0 ELSE f.valid + p.valid END AS valid,
        (SELECT extract(epoch FROM now() - min(last_success))
           FROM (SELECT max(finished_at) AS last_success
                   FROM scout.platinum_job_runs
                  WHERE status = 'succeeded' GROUP BY job) j) AS freshness
    FROM platinum_features f, platinum_private p
),
layers (position, layer, total_records, valid_records, score_gate, freshness_seconds,
        sla_seconds, window_description) AS (
    SELECT 1, 'bronze', total, valid, NULL::numeric, freshness, 60, 'last 24 h' FROM bronze
    UNION ALL
    SELECT 2, 'silver', total, valid, 95, freshness, 300, 'last 24 h' FROM silver
    UNION ALL
    SELECT 3, 'gold', total, valid, 99, freshness, 1800, 'last 2 days' FROM gold
    UNION ALL
    SELECT 4, 'platinum', total, valid, 100, freshness, 7200, 'latest builds' FROM platinum
),
scored AS (
    SELECT *,
           round(100.0 * valid_records / nullif(total_records, 0), 3) AS quality_score
      FROM layers
)
SELECT
    layer,
    total_records,
    valid_records,
    quality_score,
    score_gate,
    round(freshness_seconds::numeric, 3) AS freshness_seconds,
    sla_seconds,
    coalesce(score_gate IS NULL OR quality_score >= score_gate, false) AS score_met,
    (freshness_seconds IS NOT NULL AND freshness_seconds < sla_seconds) AS sla_met,
    coalesce(score_gate IS NULL OR quality_score >= score_gate, false)
        AND freshness_seconds IS NOT NULL AND freshness_seconds < sla_seconds AS gate_met,
    window_description,
    now() AS measured_at
FROM scored
ORDER BY position;

DROP TABLE scout.gold_pending_groups;
