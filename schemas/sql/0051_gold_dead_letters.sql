-- Gold's dead letters (issue 12): a (store, local day) group whose changes gold cannot write
-- (the database refuses a derived value, a conversion overflows) is set aside here, with the
-- reason, instead of holding up every other group of its flush. Its captured silver changes
-- are NOT dropped: they stay in scout.gold_silver_changes, which gold's normal flush leaves
-- alone for as long as the group has a row here, and are re-applied when the group is
-- retried (after retry_after, when gold starts, or at once after `scout gold retry`). A
-- retry that succeeds deletes the row in the same transaction that applies the changes.
CREATE TABLE scout.gold_dead_letters (
    store_id       text NOT NULL,
    date_key       date NOT NULL,                 -- the store's local business day
    layer          text NOT NULL DEFAULT 'gold',
    table_name     text,                          -- the relation the database named, if any
    shard          smallint NOT NULL,             -- scout.gold_shard(store_id): who retries it
    reason         text NOT NULL,                 -- SQLSTATE condition or exception class
    detail         text NOT NULL,                 -- the error, quoted input left out
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    retry_after    timestamptz NOT NULL,
    PRIMARY KEY (store_id, date_key)
);
CREATE INDEX gold_dead_letters_shard_idx ON scout.gold_dead_letters (shard, retry_after);
COMMENT ON TABLE scout.gold_dead_letters IS
    'Gold groups set aside on a data error; their changes wait in gold_silver_changes.';

GRANT SELECT, INSERT, UPDATE, DELETE ON scout.gold_dead_letters TO scout_gold_aggregator;
-- Readable where gold's health is read (the quality dashboard's readers). No column echoes
-- input: the store id is master data, the detail drops quoted parts of the message.
GRANT SELECT ON scout.gold_dead_letters TO scout_reader, scout_platinum_builder;
