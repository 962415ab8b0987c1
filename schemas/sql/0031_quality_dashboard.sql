-- The live data quality dashboard: one row per layer, computed when read (`scout quality`).
--
-- records / valid_records / quality_score (percent) over a recent window, and freshness in
-- seconds, against the seed's gates (score) and SLAs (freshness):
--   bronze    window 24 h.  records = bronze rows + payloads in the error log; valid = bronze
--             rows. No score gate ("store everything"). Freshness = the largest Kafka-publish
--             → bronze-commit latency of the rows landed in the last 15 minutes. SLA 60 s.
--   silver    window 24 h.  records = bronze records silver processed (silver_lineage);
--             valid = those not quarantined. Gate >= 95 %. Freshness = the larger of the
--             publish → silver latency of the rows changed in the last 15 minutes and the age
--             of the oldest bronze row (last hour) silver has not processed yet, and never
--             below bronze's. SLA 300 s.
--   gold      window: the last 2 local days. records = (store, day) groups in gold or silver;
--             valid = "balanced": the gold row's transaction_count and daily_revenue equal
--             count(*) and sum(amount) of silver for that store and day, or the group waits
--             in gold_pending_groups for less than the SLA. (The full cell-by-cell
--             reconciliation is `scout gold verify`; this is its cheap subset.) Gate >= 99 %.
--             Freshness = age of the oldest pending change, never below silver's. SLA 1800 s.
--   platinum  records = rows of the latest ML features build and of the anonymised analytics;
--             valid = features with sane values, and anonymised rows whose release is in the
--             privacy ledger; the score is 0 when any platinum column is named like a personal
--             identifier. Gate 100 %. Freshness = age of the stalest job's last successful
--             run. SLA 7200 s.
-- A layer with no data in its window shows NULL freshness; its SLA is then not claimed met.

CREATE VIEW scout.data_quality_dashboard AS
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
            SELECT 1 FROM scout.gold_pending_groups p
             WHERE p.kind = 'store_day' AND p.store_id = gg.store_id
               AND p.date_key = gg.date_key
               AND p.enqueued_at >= now() - interval '30 minutes')) AS valid,
        greatest(
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

GRANT SELECT ON scout.data_quality_dashboard TO scout_reader, scout_platinum_builder;
