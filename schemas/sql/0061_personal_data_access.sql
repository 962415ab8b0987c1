-- Personal data stays where it must.
--   scout_reader (analysts, dashboards): silver, gold and platinum without personal data. No
--     bronze payloads, no error-log bytes or details, no customer_key, no quarantine columns
--     that echo the input (detail, store_id, batch_id, partner). Column grants: select the
--     columns by name (SELECT * on those two silver tables is refused).
--   scout_pii_auditor (granted to a named person's login, by hand): raw bronze data only
--     through the functions below, which record every read (who, what, why, how many rows) in
--     scout.pii_access_log and in the server log (RAISE LOG: kept even when the caller rolls
--     its transaction back). It has no SELECT on bronze itself and writes nothing.
-- pgaudit (Debian postgresql-15-pgaudit) would need shared_preload_libraries and a server
-- restart, which managed databases and shared clusters do not always allow; these functions
-- work on any PostgreSQL and can be combined with pgaudit where it is loaded.

REVOKE SELECT ON scout.bronze_transactions_raw, scout.bronze_error_log FROM scout_reader;
GRANT SELECT (id, reason, source_system, logged_at, kafka_topic, kafka_partition, kafka_offset,
    kafka_timestamp) ON scout.bronze_error_log TO scout_reader;
REVOKE SELECT ON ALL TABLES IN SCHEMA scout_archive FROM scout_reader;
REVOKE USAGE ON SCHEMA scout_archive FROM scout_reader;

REVOKE SELECT ON scout.silver_transactions_cleaned, scout.silver_quarantine FROM scout_reader;
GRANT SELECT (transaction_id, source_system, event_id, version, bronze_id, kafka_timestamp,
    store_id, transaction_date, amount, gross_amount, discount_amount, currency,
    product_category, brand_name, customer_type, payment_method, terminal_id, campaign_id,
    partner, batch_id, notes, item_count, unit_count, region, city, timezone, local_date,
    day_of_week, is_weekend, local_hour, created_at, updated_at)
    ON scout.silver_transactions_cleaned TO scout_reader;
GRANT SELECT (bronze_id, source_system, rule, field, kafka_timestamp, quarantined_at,
    resolved_at) ON scout.silver_quarantine TO scout_reader;

DO $$
BEGIN
    CREATE ROLE scout_pii_auditor NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- roles are cluster-wide: another database of this cluster made it already
END
$$;
GRANT USAGE ON SCHEMA scout TO scout_pii_auditor;

-- One row per read of raw personal data; append-only like bronze.
CREATE TABLE scout.pii_access_log (
    access_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accessed_at      timestamptz NOT NULL DEFAULT now(),
    login            text NOT NULL,          -- session_user: the person's own login
    what             text NOT NULL,          -- the function called
    filter           jsonb NOT NULL,         -- its arguments
    reason           text NOT NULL,          -- why (ticket, request id): required
    rows_returned    bigint NOT NULL,
    application_name text,
    client_addr      inet
);
CREATE TRIGGER pii_access_log_immutable BEFORE UPDATE OR DELETE ON scout.pii_access_log
    FOR EACH ROW EXECUTE FUNCTION scout.refuse_change();
CREATE TRIGGER pii_access_log_no_truncate BEFORE TRUNCATE ON scout.pii_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION scout.refuse_change();
GRANT SELECT ON scout.pii_access_log TO scout_pii_auditor;

CREATE FUNCTION scout.record_pii_access(p_what text, p_filter jsonb, p_reason text, p_rows bigint)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO scout.pii_access_log (login, what, filter, reason, rows_returned,
                                      application_name, client_addr)
    VALUES (session_user, p_what, p_filter, p_reason, p_rows,
            current_setting('application_name', true), inet_client_addr());
    RAISE LOG 'scout pii access: login=% what=% filter=% reason=% rows=%',
        session_user, p_what, p_filter, p_reason, p_rows;
END
$$;
REVOKE ALL ON FUNCTION scout.record_pii_access(text, jsonb, text, bigint) FROM PUBLIC;

CREATE FUNCTION scout.check_pii_reason(p_reason text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF p_reason IS NULL OR length(btrim(p_reason)) < 3 THEN
        RAISE EXCEPTION 'a reason (ticket or request id) is required to read personal data'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION scout.check_pii_reason(text) FROM PUBLIC;

-- Raw bronze records ingested in [p_from, p_to), optionally of one customer id.
CREATE FUNCTION scout.read_bronze_raw(
    p_reason text, p_from timestamptz, p_to timestamptz,
    p_customer_id text DEFAULT NULL, p_limit integer DEFAULT 1000)
RETURNS TABLE (id uuid, source_system text, ingested_at timestamptz, kafka_topic text,
               kafka_partition integer, kafka_offset bigint, raw_data jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM scout.check_pii_reason(p_reason);
    RETURN QUERY
        SELECT b.id, b.source_system, b.ingested_at, b.kafka_topic, b.kafka_partition,
               b.kafka_offset, b.raw_data
        FROM scout.bronze_transactions_raw b
        WHERE b.ingested_at >= p_from AND b.ingested_at < p_to
          AND (p_customer_id IS NULL OR b.raw_data -> 'customer' ->> 'id' = p_customer_id)
        ORDER BY b.ingested_at, b.kafka_topic, b.kafka_partition, b.kafka_offset
        LIMIT least(greatest(p_limit, 0), 100000);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM scout.record_pii_access('read_bronze_raw',
        jsonb_build_object('from', p_from, 'to', p_to, 'customer_id', p_customer_id,
                           'limit', p_limit), p_reason, n);
END
$$;

-- Error-log rows (raw bytes and details) logged in [p_from, p_to).
CREATE FUNCTION scout.read_bronze_errors(
    p_reason text, p_from timestamptz, p_to timestamptz, p_limit integer DEFAULT 1000)
RETURNS TABLE (id uuid, reason text, detail text, raw_bytes bytea, logged_at timestamptz,
               kafka_topic text, kafka_partition integer, kafka_offset bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM scout.check_pii_reason(p_reason);
    RETURN QUERY
        SELECT e.id, e.reason, e.detail, e.raw_bytes, e.logged_at, e.kafka_topic,
               e.kafka_partition, e.kafka_offset
        FROM scout.bronze_error_log e
        WHERE e.logged_at >= p_from AND e.logged_at < p_to
        ORDER BY e.logged_at, e.kafka_topic, e.kafka_partition, e.kafka_offset
        LIMIT least(greatest(p_limit, 0), 100000);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM scout.record_pii_access('read_bronze_errors',
        jsonb_build_object('from', p_from, 'to', p_to, 'limit', p_limit), p_reason, n);
END
$$;

REVOKE ALL ON FUNCTION scout.read_bronze_raw(text, timestamptz, timestamptz, text, integer),
    scout.read_bronze_errors(text, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION scout.read_bronze_raw(text, timestamptz, timestamptz, text, integer),
    scout.read_bronze_errors(text, timestamptz, timestamptz, integer) TO scout_pii_auditor;
