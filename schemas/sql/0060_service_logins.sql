-- Each service connects with its own LOGIN role (created by `scout dev up`, the test harness or
-- the deployment, see services/common/logins.py): NOINHERIT, owning nothing, member of its
-- service's NOLOGIN role only. The migrate step runs as the owner, the only login that may
-- alter the schema. This migration closes what a service session could otherwise reach.

-- SECURITY DEFINER functions run as the owner: nobody may call one unless granted explicitly
-- (functions are executable by PUBLIC by default). Trigger functions still fire (EXECUTE is
-- checked when a trigger is created, not when it fires).
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'scout' AND p.prosecdef
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
END
$$;

-- Services never create objects (PostgreSQL 15 already refuses CREATE in public to PUBLIC;
-- said again for databases created from older templates).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA scout FROM PUBLIC;
REVOKE ALL ON SCHEMA scout_archive FROM PUBLIC;
