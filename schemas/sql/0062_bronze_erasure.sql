-- Erasure of one customer's raw records on request (`scout bronze erase-customer`).
-- Bronze stays append-only for everyone: the immutability triggers now let exactly one DELETE
-- through, the one scout.erase_customer_raw() makes for the customer it is erasing (it names
-- that customer in a transaction-local setting; a row of any other customer, any UPDATE and
-- any TRUNCATE are still refused). Only the owner may call the function or delete at all (the
-- services hold no DELETE on bronze). Each erasure is recorded in scout.pii_erasure_log with a
-- digest of the id, never the id itself.

CREATE FUNCTION scout.bronze_raw_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    erasing text := current_setting('scout.erasing_customer', true);
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(erasing, '') <> ''
       AND OLD.raw_data -> 'customer' ->> 'id' = erasing THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'bronze is immutable: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'bronze rows are only appended; erase a customer with scout bronze erase-customer';
END
$$;

CREATE FUNCTION scout.bronze_error_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    erasing text := current_setting('scout.erasing_customer', true);
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(erasing, '') <> '' AND OLD.raw_bytes IS NOT NULL
       AND position(convert_to('"' || erasing || '"', 'UTF8') IN OLD.raw_bytes) > 0 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'bronze is immutable: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'bronze rows are only appended; erase a customer with scout bronze erase-customer';
END
$$;

DROP TRIGGER bronze_transactions_raw_immutable ON scout.bronze_transactions_raw;
CREATE TRIGGER bronze_transactions_raw_immutable
    BEFORE UPDATE OR DELETE ON scout.bronze_transactions_raw
    FOR EACH ROW EXECUTE FUNCTION scout.bronze_raw_refuse_change();
DROP TRIGGER bronze_error_log_immutable ON scout.bronze_error_log;
CREATE TRIGGER bronze_error_log_immutable
    BEFORE UPDATE OR DELETE ON scout.bronze_error_log
    FOR EACH ROW EXECUTE FUNCTION scout.bronze_error_refuse_change();

-- Partitions already archived by retention get the same row trigger.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_trigger g ON g.tgrelid = c.oid AND g.tgname = 'archived_immutable'
        WHERE n.nspname = 'scout_archive'
    LOOP
        EXECUTE format('DROP TRIGGER archived_immutable ON scout_archive.%I', t.relname);
        EXECUTE format('CREATE TRIGGER archived_immutable BEFORE UPDATE OR DELETE ON '
                       'scout_archive.%I FOR EACH ROW EXECUTE FUNCTION '
                       'scout.bronze_raw_refuse_change()', t.relname);
    END LOOP;
END
$$;

CREATE TABLE scout.pii_erasure_log (
    erasure_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at      timestamptz NOT NULL DEFAULT now(),
    customer_hash  text NOT NULL,       -- sha256 of the id: proves which request, holds no id
    reason         text NOT NULL,
    erased_by      text NOT NULL,
    raw_rows       bigint NOT NULL,
    archived_rows  bigint NOT NULL,
    error_rows     bigint NOT NULL
);
CREATE TRIGGER pii_erasure_log_immutable BEFORE UPDATE OR DELETE ON scout.pii_erasure_log
    FOR EACH ROW EXECUTE FUNCTION scout.refuse_change();

CREATE FUNCTION scout.erase_customer_raw(p_customer_id text, p_reason text)
RETURNS TABLE (raw_rows bigint, archived_rows bigint, error_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    n_raw bigint := 0;
    n_archived bigint := 0;
    n_errors bigint := 0;
    n bigint;
    t record;
BEGIN
    IF p_customer_id IS NULL OR length(btrim(p_customer_id)) = 0 THEN
        RAISE EXCEPTION 'a customer id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM scout.check_pii_reason(p_reason);
    PERFORM set_config('scout.erasing_customer', p_customer_id, true);
    DELETE FROM scout.bronze_transactions_raw b WHERE b.raw_data -> 'customer' ->> 'id' = p_customer_id;
    GET DIAGNOSTICS n_raw = ROW_COUNT;
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'raw_data' AND NOT a.attisdropped
        WHERE s.nspname = 'scout_archive' AND c.relkind = 'r'
    LOOP
        EXECUTE format('DELETE FROM scout_archive.%I WHERE raw_data -> ''customer'' ->> ''id'' = $1',
                       t.relname) USING p_customer_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        n_archived := n_archived + n;
    END LOOP;
    DELETE FROM scout.bronze_error_log e
    WHERE e.raw_bytes IS NOT NULL AND position(convert_to('"' || p_customer_id || '"', 'UTF8') IN e.raw_bytes) > 0;
    GET DIAGNOSTICS n_errors = ROW_COUNT;
    PERFORM set_config('scout.erasing_customer', '', true);
    INSERT INTO scout.pii_erasure_log (customer_hash, reason, erased_by, raw_rows, archived_rows,
                                       error_rows)
    VALUES (encode(sha256(convert_to(p_customer_id, 'UTF8')), 'hex'), p_reason, session_user,
            n_raw, n_archived, n_errors);
    RETURN QUERY SELECT n_raw, n_archived, n_errors;
END
$$;
REVOKE ALL ON FUNCTION scout.erase_customer_raw(text, text) FROM PUBLIC;
