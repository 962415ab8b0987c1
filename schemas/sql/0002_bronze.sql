-- Bronze: every source record exactly as received, with its Kafka coordinates (lineage).
-- Partitioned by month of the Kafka record timestamp: that timestamp is fixed for a record,
-- so a redelivered record maps to the same partition and the primary key refuses the copy.
CREATE TABLE scout.bronze_transactions_raw (
    id               uuid        NOT NULL,  -- uuid5(topic:partition:offset:record_index)
    raw_data         jsonb       NOT NULL,
    source_system    text        NOT NULL CHECK (source_system IN ('pos', 'api', 'iot')),
    schema_name      text,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    batch_id         text,                  -- API batch id (text: partners send anything)
    record_index     integer     NOT NULL DEFAULT 0,  -- position inside an API batch
    kafka_topic      text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    kafka_timestamp  timestamptz NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset, record_index, kafka_timestamp)
) PARTITION BY RANGE (kafka_timestamp);

CREATE INDEX bronze_transactions_raw_id_idx ON scout.bronze_transactions_raw (id);
CREATE INDEX bronze_transactions_raw_ingested_idx ON scout.bronze_transactions_raw (ingested_at);

CREATE TRIGGER bronze_transactions_raw_immutable
    BEFORE UPDATE OR DELETE ON scout.bronze_transactions_raw
    FOR EACH ROW EXECUTE FUNCTION scout.refuse_change();
CREATE TRIGGER bronze_transactions_raw_no_truncate
    BEFORE TRUNCATE ON scout.bronze_transactions_raw
    FOR EACH STATEMENT EXECUTE FUNCTION scout.refuse_change();

-- Creates the month's partition if missing. SECURITY DEFINER so the bronze writer, which may
-- only INSERT, can still land a record of any month.
CREATE FUNCTION scout.ensure_bronze_partition(p_month date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, scout
SET timezone = 'UTC'
AS $$
DECLARE
    month_start date := date_trunc('month', p_month)::date;
    part_name text := format('bronze_transactions_raw_%s', to_char(month_start, 'YYYYMM'));
BEGIN
    IF to_regclass(format('scout.%I', part_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('scout.' || part_name));
    IF to_regclass(format('scout.%I', part_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE scout.%I PARTITION OF scout.bronze_transactions_raw '
        'FOR VALUES FROM (%L) TO (%L)',
        part_name, month_start::timestamp, (month_start + interval '1 month')::timestamp);
END
$$;
REVOKE ALL ON FUNCTION scout.ensure_bronze_partition(date) FROM PUBLIC;

-- A few months around today exist from the start; others are made on first use.
SELECT scout.ensure_bronze_partition((date_trunc('month', now()) + make_interval(months => m))::date)
FROM generate_series(-2, 3) AS m;

CREATE TABLE scout.bronze_ingestion_batches (
    batch_id         text,                  -- NULL when the envelope carried none
    partner          text,
    record_count     integer     NOT NULL,
    sent_at          timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now(),
    status           text        NOT NULL CHECK (status IN ('landed', 'empty', 'malformed')),
    kafka_topic      text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX bronze_ingestion_batches_batch_idx ON scout.bronze_ingestion_batches (batch_id);

CREATE TABLE scout.bronze_error_log (
    id               uuid        NOT NULL,
    raw_bytes        bytea,
    reason           text        NOT NULL,
    detail           text,
    source_system    text,
    logged_at        timestamptz NOT NULL DEFAULT now(),
    kafka_topic      text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    kafka_timestamp  timestamptz,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX bronze_error_log_logged_idx ON scout.bronze_error_log (logged_at);

CREATE TRIGGER bronze_ingestion_batches_immutable
    BEFORE UPDATE OR DELETE ON scout.bronze_ingestion_batches
    FOR EACH ROW EXECUTE FUNCTION scout.refuse_change();
CREATE TRIGGER bronze_error_log_immutable
    BEFORE UPDATE OR DELETE ON scout.bronze_error_log
    FOR EACH ROW EXECUTE FUNCTION scout.refuse_change();
CREATE TRIGGER bronze_ingestion_batches_no_truncate
    BEFORE TRUNCATE ON scout.bronze_ingestion_batches
    FOR EACH STATEMENT EXECUTE FUNCTION scout.refuse_change();
CREATE TRIGGER bronze_error_log_no_truncate
    BEFORE TRUNCATE ON scout.bronze_error_log
    FOR EACH STATEMENT EXECUTE FUNCTION scout.refuse_change();

-- The bronze writer may append and nothing more.
GRANT INSERT ON scout.bronze_transactions_raw, scout.bronze_ingestion_batches,
    scout.bronze_error_log TO scout_bronze_writer;
GRANT EXECUTE ON FUNCTION scout.ensure_bronze_partition(date) TO scout_bronze_writer;
-- Silver reads bronze (replay, quarantine re-processing); readers see everything.
GRANT SELECT ON scout.bronze_transactions_raw, scout.bronze_ingestion_batches,
    scout.bronze_error_log TO scout_silver_enricher, scout_reader;
