-- Gold keeps its tables incrementally: instead of recomputing a (store, day) group, or a whole
-- day for the day-wide tables, from all of its silver rows on every flush (a cost that grows
-- with the day), the aggregator holds each group's and each day's exact state (sorted
-- amounts, customer multisets, sums) and applies the changes silver made since the last flush.
--
-- The changes are captured by statement triggers on the silver tables, as signed rows
-- (-1 = the old row's contribution, +1 = the new row's), in the transaction that makes the
-- change: nothing silver commits can be missed, and nothing rolled back is seen. Silver needs
-- no privilege on gold: the trigger functions run as their owner (SECURITY DEFINER).

CREATE TABLE scout.gold_silver_deltas (
    kind             text NOT NULL CHECK (kind IN ('transaction', 'footfall', 'spend', 'items')),
    sign             smallint NOT NULL CHECK (sign IN (-1, 1)),
    store_id         text NOT NULL,      -- '' for 'items' (a day's lines of one brand)
    date_key         date NOT NULL,
    value            numeric NOT NULL,   -- amount, people counted, spend, or line amounts
    customer_key     text,               -- transactions only
    customer_type    text,
    region           text,
    city             text,
    units            integer,            -- transactions: unit_count; items: sum of qty
    category         text,               -- items only
    brand            text,
    transactions     integer,            -- items: distinct transactions with such lines
    kafka_timestamp  timestamptz,        -- source time of the change (transactions, spend)
    captured_at      timestamptz NOT NULL DEFAULT now()  -- silver's transaction
);
CREATE INDEX gold_silver_deltas_group_idx ON scout.gold_silver_deltas (store_id, date_key);
-- Every row is deleted within a second of its insert: vacuum after a fixed number of dead
-- rows rather than a share of a table that is nearly empty most of the time.
ALTER TABLE scout.gold_silver_deltas SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000);

-- Bumped by every write of a group's state (the aggregator's flush, `scout gold rebuild`).
-- A worker trusts the state it holds in memory only if the revision is still the one it
-- wrote; otherwise (another worker, a rebuild, a restart) it reloads the group from silver.
CREATE TABLE scout.gold_group_revisions (
    store_id  text NOT NULL,
    date_key  date NOT NULL,
    revision  bigint NOT NULL,
    PRIMARY KEY (store_id, date_key)
);

-- The same for the day-wide tables (customer insights, geography, products), per local day.
CREATE TABLE scout.gold_day_revisions (
    date_key  date PRIMARY KEY,
    revision  bigint NOT NULL
);

CREATE FUNCTION scout.gold_capture_transactions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Only rows whose contribution to gold changed (a re-enrichment that changes no
        -- gold column, or a newer version with the same amount and customer, is no change).
        INSERT INTO scout.gold_silver_deltas
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region, city,
             units, kafka_timestamp)
        SELECT 'transaction', s.sign, s.store_id, s.local_date, s.amount, s.customer_key,
               s.customer_type, s.region, s.city, s.unit_count, s.kafka_timestamp
        FROM old_rows o JOIN new_rows n USING (transaction_id)
        CROSS JOIN LATERAL (VALUES
            (-1, o.store_id, o.local_date, o.amount, o.customer_key, o.customer_type, o.region,
             o.city, o.unit_count, n.kafka_timestamp),
            (1, n.store_id, n.local_date, n.amount, n.customer_key, n.customer_type, n.region,
             n.city, n.unit_count, n.kafka_timestamp)
        ) AS s (sign, store_id, local_date, amount, customer_key, customer_type, region, city,
                unit_count, kafka_timestamp)
        WHERE (o.store_id, o.local_date, o.amount, o.customer_key, o.customer_type, o.region,
               o.city, o.unit_count)
              IS DISTINCT FROM
              (n.store_id, n.local_date, n.amount, n.customer_key, n.customer_type, n.region,
               n.city, n.unit_count);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO scout.gold_silver_deltas
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region, city,
             units, kafka_timestamp)
        SELECT 'transaction', 1, store_id, local_date, amount, customer_key, customer_type,
               region, city, unit_count, kafka_timestamp
        FROM new_rows;
    ELSE
        INSERT INTO scout.gold_silver_deltas
            (kind, sign, store_id, date_key, value, customer_key, customer_type, region, city,
             units)
        SELECT 'transaction', -1, store_id, local_date, amount, customer_key, customer_type,
               region, city, unit_count
        FROM old_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION scout.gold_capture_footfall() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    -- Readings without a local day (store still unknown) count nowhere yet.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_deltas (kind, sign, store_id, date_key, value)
        SELECT 'footfall', -1, store_id, local_date, value FROM old_rows
        WHERE kind = 'footfall' AND local_date IS NOT NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_deltas (kind, sign, store_id, date_key, value)
        SELECT 'footfall', 1, store_id, local_date, value FROM new_rows
        WHERE kind = 'footfall' AND local_date IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION scout.gold_capture_spend() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_deltas (kind, sign, store_id, date_key, value)
        SELECT 'spend', -1, store_id, spend_date, spend FROM old_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_deltas (kind, sign, store_id, date_key, value,
                                              kafka_timestamp)
        SELECT 'spend', 1, store_id, spend_date, spend, kafka_timestamp FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION scout.gold_capture_items() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    -- One row per (day, category, brand) and statement, not per line: silver writes all lines
    -- of a transaction in one statement (and deletes them in one), so the distinct
    -- transactions of a statement's rows are exactly what each adds to (or removes from)
    -- gold_product_performance.transaction_count.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO scout.gold_silver_deltas
            (kind, sign, store_id, date_key, value, units, category, brand, transactions)
        SELECT 'items', -1, '', local_date, sum(line_amount), sum(qty), category,
               coalesce(brand, 'unknown'), count(DISTINCT transaction_id)
        FROM old_rows GROUP BY local_date, category, coalesce(brand, 'unknown');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO scout.gold_silver_deltas
            (kind, sign, store_id, date_key, value, units, category, brand, transactions)
        SELECT 'items', 1, '', local_date, sum(line_amount), sum(qty), category,
               coalesce(brand, 'unknown'), count(DISTINCT transaction_id)
        FROM new_rows GROUP BY local_date, category, coalesce(brand, 'unknown');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER gold_capture_insert AFTER INSERT ON scout.silver_transactions_cleaned
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_transactions();
CREATE TRIGGER gold_capture_update AFTER UPDATE ON scout.silver_transactions_cleaned
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_transactions();
CREATE TRIGGER gold_capture_delete AFTER DELETE ON scout.silver_transactions_cleaned
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_transactions();

CREATE TRIGGER gold_capture_insert AFTER INSERT ON scout.silver_device_readings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_footfall();
CREATE TRIGGER gold_capture_update AFTER UPDATE ON scout.silver_device_readings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_footfall();
CREATE TRIGGER gold_capture_delete AFTER DELETE ON scout.silver_device_readings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_footfall();

CREATE TRIGGER gold_capture_insert AFTER INSERT ON scout.silver_campaign_spend
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_spend();
CREATE TRIGGER gold_capture_update AFTER UPDATE ON scout.silver_campaign_spend
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_spend();
CREATE TRIGGER gold_capture_delete AFTER DELETE ON scout.silver_campaign_spend
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_spend();

CREATE TRIGGER gold_capture_insert AFTER INSERT ON scout.silver_transaction_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_items();
CREATE TRIGGER gold_capture_update AFTER UPDATE ON scout.silver_transaction_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_items();
CREATE TRIGGER gold_capture_delete AFTER DELETE ON scout.silver_transaction_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.gold_capture_items();

-- Groups that changed before this migration: queue them, so the first flush loads them.
INSERT INTO scout.gold_silver_deltas (kind, sign, store_id, date_key, value)
SELECT 'spend', 1, store_id, date_key, 0 FROM scout.gold_pending_groups
WHERE kind = 'store_day';
INSERT INTO scout.gold_silver_deltas
    (kind, sign, store_id, date_key, value, units, category, brand, transactions)
SELECT 'items', 1, '', date_key, 0, 0, '', '', 0 FROM scout.gold_pending_groups
WHERE kind = 'day';
DELETE FROM scout.gold_pending_groups;

GRANT SELECT, DELETE ON scout.gold_silver_deltas TO scout_gold_aggregator;
GRANT SELECT, INSERT, UPDATE ON scout.gold_group_revisions, scout.gold_day_revisions
    TO scout_gold_aggregator;

-- The quality view's gold layer: a group that does not balance with silver yet is valid while
-- its changes wait in gold_silver_deltas (captured within the SLA), as it was for the pending
-- queue; freshness = age of the oldest change not yet applied (source time when known).
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
            SELECT 1 FROM scout.gold_silver_deltas d
             WHERE d.store_id = gg.store_id AND d.date_key = gg.date_key
               AND d.captured_at >= now() - interval '30 minutes')) AS valid,
        greatest(
            (SELECT extract(epoch FROM now() - min(coalesce(kafka_timestamp, captured_at)))
               FROM scout.gold_silver_deltas),
            (SELECT extract(epoch FROM now() - min(oldest_event_at))
               FROM scout.gold_pending_groups),
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
