-- Bronze retention (`scout bronze retention`): whole monthly partitions older than the
-- retention period are exported to compressed files, detached from
-- scout.bronze_transactions_raw and moved here. They stay queryable and immutable (the
-- retention command re-attaches the refuse_change triggers that DETACH removes) until an
-- operator drops them by hand after checking the archive files. Nothing here is writable
-- by the services.
CREATE SCHEMA IF NOT EXISTS scout_archive;
COMMENT ON SCHEMA scout_archive IS
    'Detached bronze partitions past retention; exported to files by scout bronze retention';
GRANT USAGE ON SCHEMA scout_archive TO scout_reader;
