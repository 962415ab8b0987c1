-- Line items keep referring to existing transactions, checked per statement instead of per row.
--
-- The foreign key checked every inserted item on its own (an index probe plus a row lock on
-- the transaction, WAL-logged): ~85 % of the time of silver's item insert, measured 62 ms vs
-- 8 ms for 9,000 items (bench/results/gold.md). The same guarantees, set-based:
--   * an INSERT or UPDATE of items whose transaction does not exist fails (the statement's
--     new rows, anti-joined with the transactions' primary key);
--   * deleting a transaction deletes its items (was ON DELETE CASCADE).
-- What the row lock added (a concurrent delete of the transaction while its items are
-- inserted) cannot happen here: only the silver enricher writes either table, items always
-- in the transaction that merges their transaction, and nothing deletes transactions but
-- maintenance, whose deletes cascade through the trigger below.

ALTER TABLE scout.silver_transaction_items
    DROP CONSTRAINT silver_transaction_items_transaction_id_fkey;

CREATE FUNCTION scout.silver_items_check_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_items n
               WHERE NOT EXISTS (SELECT 1 FROM scout.silver_transactions_cleaned t
                                 WHERE t.transaction_id = n.transaction_id)) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'silver_transaction_items refers to a transaction that does not exist';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION scout.silver_transactions_delete_items() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM scout.silver_transaction_items i
    USING old_rows o WHERE i.transaction_id = o.transaction_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_refer_to_transactions_insert AFTER INSERT ON scout.silver_transaction_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION scout.silver_items_check_transactions();
CREATE TRIGGER items_refer_to_transactions_update AFTER UPDATE ON scout.silver_transaction_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION scout.silver_items_check_transactions();
CREATE TRIGGER delete_items AFTER DELETE ON scout.silver_transactions_cleaned
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scout.silver_transactions_delete_items();
