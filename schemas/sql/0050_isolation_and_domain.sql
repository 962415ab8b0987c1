-- Never stop on a record (issue 12): identities that cannot collide, and derived columns that
-- hold every value valid silver can produce.
--
-- 1. The bronze error log keeps one row per refused record, not per Kafka record: two refused
--    records of one API batch are two rows (record_index), and a topic that is deleted and
--    re-created (offsets start again at 0) is told apart by the Kafka timestamp, as bronze
--    rows already are. The same for the API batch book-keeping.
ALTER TABLE scout.bronze_error_log ADD COLUMN record_index integer NOT NULL DEFAULT 0;
ALTER TABLE scout.bronze_error_log ALTER COLUMN kafka_timestamp SET NOT NULL;
ALTER TABLE scout.bronze_error_log DROP CONSTRAINT bronze_error_log_pkey;
ALTER TABLE scout.bronze_error_log
    ADD PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset, record_index, kafka_timestamp);

-- Rows from before this migration get -infinity (their timestamp was not kept).
ALTER TABLE scout.bronze_ingestion_batches
    ADD COLUMN kafka_timestamp timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE scout.bronze_ingestion_batches ALTER COLUMN kafka_timestamp DROP DEFAULT;
ALTER TABLE scout.bronze_ingestion_batches DROP CONSTRAINT bronze_ingestion_batches_pkey;
ALTER TABLE scout.bronze_ingestion_batches
    ADD PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp);

-- 2. Gold and platinum: sums and counts over any number of valid silver rows. Silver bounds
--    one amount (< 1e8) and one line's units (<= 1e6, services/common/events/types.py); a day
--    may hold any number of them, so counts are bigint, sums of money numeric(32,2) (a bigint
--    count of maximal amounts), and ratios that can grow with a count numeric(32, scale). The
--    scales stay as they were (the recomputation rounds the same way); averages, medians and
--    deviations of single amounts stay bounded by the amounts and keep their types. The
--    quality view reads some of these columns: it is dropped and re-created as it was.
DO $$
DECLARE
    quality_view text := pg_get_viewdef('scout.data_quality_dashboard'::regclass);
BEGIN
    DROP VIEW scout.data_quality_dashboard;

    ALTER TABLE scout.gold_silver_deltas
        ALTER COLUMN units TYPE bigint,
        ALTER COLUMN transactions TYPE bigint;

    ALTER TABLE scout.gold_business_metrics
        ALTER COLUMN transaction_count TYPE bigint,
        ALTER COLUMN daily_revenue TYPE numeric(32, 2),
        ALTER COLUMN unique_customers TYPE bigint,
        ALTER COLUMN new_customers TYPE bigint,
        ALTER COLUMN returning_customers TYPE bigint,
        ALTER COLUMN conversion_rate TYPE numeric(32, 4),
        ALTER COLUMN campaign_spend TYPE numeric(32, 2);
    ALTER TABLE scout.gold_customer_insights
        ALTER COLUMN transaction_count TYPE bigint,
        ALTER COLUMN revenue TYPE numeric(32, 2),
        ALTER COLUMN customers TYPE bigint,
        ALTER COLUMN avg_basket_size TYPE numeric(32, 4);
    ALTER TABLE scout.gold_geographic_performance
        ALTER COLUMN revenue TYPE numeric(32, 2),
        ALTER COLUMN transaction_count TYPE bigint,
        ALTER COLUMN active_stores TYPE bigint;
    ALTER TABLE scout.gold_product_performance
        ALTER COLUMN units TYPE bigint,
        ALTER COLUMN revenue TYPE numeric(32, 2),
        ALTER COLUMN transaction_count TYPE bigint;

    ALTER TABLE scout.platinum_ml_features
        ALTER COLUMN daily_revenue TYPE numeric(32, 2),
        ALTER COLUMN transaction_count TYPE bigint,
        ALTER COLUMN revenue_7d_ma TYPE numeric(32, 4),
        ALTER COLUMN revenue_30d_ma TYPE numeric(32, 4),
        ALTER COLUMN wow_growth TYPE numeric(32, 6),
        ALTER COLUMN day_of_week_index TYPE numeric(32, 6),
        ALTER COLUMN basket_units TYPE numeric(32, 4),
        ALTER COLUMN footfall_conversion TYPE numeric(32, 4);
    ALTER TABLE scout.platinum_executive_summary
        ALTER COLUMN total_revenue TYPE numeric(32, 2),
        ALTER COLUMN active_stores TYPE bigint,
        ALTER COLUMN avg_store_revenue TYPE numeric(32, 4);
    ALTER TABLE scout.platinum_campaign_insights
        ALTER COLUMN spend TYPE numeric(32, 2),
        ALTER COLUMN revenue_during TYPE numeric(32, 2),
        ALTER COLUMN baseline_revenue TYPE numeric(32, 2),
        ALTER COLUMN revenue_lift TYPE numeric(32, 2),
        ALTER COLUMN attributed_revenue TYPE numeric(32, 2);

    EXECUTE 'CREATE VIEW scout.data_quality_dashboard AS ' || quality_view;
END
$$;
GRANT SELECT ON scout.data_quality_dashboard TO scout_reader, scout_platinum_builder;
