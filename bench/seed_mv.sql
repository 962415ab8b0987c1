-- The seed's approach to gold (seed/medallion-architecture.md, "Gold Layer"): a materialized
-- view over silver, refreshed by cron every 30 minutes with REFRESH MATERIALIZED VIEW
-- CONCURRENTLY. Used by bench/gold.py only (created in the bench's throw-away database).
--
-- To compare like with like it computes exactly gold_business_metrics' columns, the way
-- services/gold_aggregator/sql.py does (BUSINESS_METRICS_FRESH), but for every group: the
-- seed's own view (DATE_TRUNC on UTC time, PERCENTILE_CONT, raw customer_id) would be
-- both cheaper and wrong. The unique index is what REFRESH ... CONCURRENTLY requires.

CREATE MATERIALIZED VIEW scout.bench_seed_business_metrics AS
WITH tx AS (
    SELECT t.store_id, t.local_date AS date_key, min(t.region) AS region, min(t.city) AS city,
           count(*)::integer AS transaction_count,
           sum(t.amount) AS daily_revenue,
           round(avg(t.amount), 4) AS avg_transaction,
           count(DISTINCT t.customer_key)::integer AS unique_customers,
           round((percentile_disc(0.5) WITHIN GROUP (ORDER BY t.amount)
                  + percentile_disc(0.5) WITHIN GROUP (ORDER BY t.amount DESC)) / 2, 4)
               AS median_amount,
           round(stddev_samp(t.amount), 4) AS amount_stddev,
           (count(DISTINCT t.customer_key) FILTER (WHERE t.customer_type = 'new'))::integer
               AS new_customers,
           (count(DISTINCT t.customer_key) FILTER (WHERE t.customer_type = 'regular'))::integer
               AS returning_customers
    FROM scout.silver_transactions_cleaned t
    GROUP BY t.store_id, t.local_date
), foot AS (
    SELECT r.store_id, r.local_date AS date_key, sum(r.value) AS footfall
    FROM scout.silver_device_readings r
    WHERE r.kind = 'footfall'
    GROUP BY r.store_id, r.local_date
), spend AS (
    SELECT s.store_id, s.spend_date AS date_key, sum(s.spend) AS campaign_spend
    FROM scout.silver_campaign_spend s
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
WITH DATA;

CREATE UNIQUE INDEX bench_seed_business_metrics_key
    ON scout.bench_seed_business_metrics (store_id, date_key);
