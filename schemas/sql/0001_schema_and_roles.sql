-- Schema `scout` and one NOLOGIN role per service. A service connects with the login user of
-- SCOUT_DATABASE_URL and acts as its role (SET ROLE), so it holds only that role's grants.
-- In production, grant each service's login user its role: GRANT scout_bronze_writer TO bronze_login;
CREATE SCHEMA IF NOT EXISTS scout;

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[
        'scout_bronze_writer', 'scout_silver_enricher', 'scout_gold_aggregator',
        'scout_platinum_builder', 'scout_reader'
    ] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- roles are cluster-wide: another database of this cluster made it already
        END;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA scout TO scout_bronze_writer, scout_silver_enricher,
    scout_gold_aggregator, scout_platinum_builder, scout_reader;

-- Refuses any change to an immutable (bronze) row; attached by the bronze migration.
CREATE FUNCTION scout.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bronze is immutable: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'bronze rows are only appended; retention detaches whole partitions';
END
$$;
