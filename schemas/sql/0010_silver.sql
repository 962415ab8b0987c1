-- Silver: validated, deduplicated, enriched and pseudonymised records.
-- No personal data in clear text below this line: customers appear only as keyed pseudonyms.

CREATE TABLE scout.silver_master_stores (
    store_id    text PRIMARY KEY,
    name        text NOT NULL,
    region      text NOT NULL,
    city        text NOT NULL,
    timezone    text NOT NULL,
    opened_on   date,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scout.silver_master_products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    brand       text NOT NULL,
    category    text NOT NULL,
    unit_price  numeric(12, 2) NOT NULL CHECK (unit_price > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (source_system, event_id): transaction_id = uuid5(namespace, source:event_id).
-- The newest version wins, whatever the arrival order: (version, kafka_timestamp, bronze_id).
CREATE TABLE scout.silver_transactions_cleaned (
    transaction_id    uuid PRIMARY KEY,
    source_system     text NOT NULL CHECK (source_system IN ('pos', 'api', 'iot')),
    event_id          text NOT NULL,
    version           integer NOT NULL CHECK (version >= 1),
    bronze_id         uuid NOT NULL,
    kafka_timestamp   timestamptz NOT NULL,
    store_id          text NOT NULL,
    transaction_date  timestamptz NOT NULL,          -- occurred_at
    amount            numeric(12, 2) NOT NULL CHECK (amount > 0),  -- net amount
    gross_amount      numeric(12, 2) NOT NULL,
    discount_amount   numeric(12, 2) NOT NULL DEFAULT 0,
    currency          text NOT NULL,
    product_category  text NOT NULL,                 -- category of the largest line
    brand_name        text,                          -- brand of the largest line
    customer_type     text NOT NULL CHECK (customer_type IN ('new', 'regular', 'walk_in')),
    customer_key      text,                          -- HMAC pseudonym; NULL for walk-ins
    payment_method    text,
    terminal_id       text,
    campaign_id       text,
    partner           text,
    batch_id          text,
    notes             text,                          -- free text with PII removed
    item_count        integer NOT NULL,
    unit_count        integer NOT NULL,
    region            text NOT NULL,
    city              text NOT NULL,
    timezone          text NOT NULL,
    local_date        date NOT NULL,
    day_of_week       smallint NOT NULL,             -- 0 = Sunday, as EXTRACT(DOW)
    is_weekend        boolean NOT NULL,
    local_hour        smallint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_system, event_id)
);
CREATE INDEX silver_tx_store_day_idx ON scout.silver_transactions_cleaned (store_id, local_date);
CREATE INDEX silver_tx_day_idx ON scout.silver_transactions_cleaned (local_date);
CREATE INDEX silver_tx_amount_idx ON scout.silver_transactions_cleaned (amount) WHERE amount > 1000;

CREATE TABLE scout.silver_transaction_items (
    transaction_id  uuid NOT NULL REFERENCES scout.silver_transactions_cleaned ON DELETE CASCADE,
    line_no         integer NOT NULL,
    sku             text NOT NULL,
    qty             integer NOT NULL CHECK (qty > 0),
    unit_price      numeric(12, 2) NOT NULL,
    line_amount     numeric(14, 2) NOT NULL,
    brand           text,
    category        text NOT NULL,                   -- 'unknown' when the SKU is not in master data
    known_sku       boolean NOT NULL,
    store_id        text NOT NULL,
    local_date      date NOT NULL,
    PRIMARY KEY (transaction_id, line_no)
);
CREATE INDEX silver_items_day_idx ON scout.silver_transaction_items (local_date, category, brand);

CREATE TABLE scout.silver_campaign_spend (
    campaign_id  text NOT NULL,
    store_id     text NOT NULL,
    spend_date   date NOT NULL,
    channel      text NOT NULL DEFAULT '',
    spend        numeric(14, 2) NOT NULL CHECK (spend > 0),
    partner      text,
    batch_id     text,
    bronze_id    uuid NOT NULL,
    kafka_timestamp timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, store_id, spend_date, channel)
);
CREATE INDEX silver_spend_store_day_idx ON scout.silver_campaign_spend (store_id, spend_date);

CREATE TABLE scout.silver_device_readings (
    device_id    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('footfall', 'temperature')),
    occurred_at  timestamptz NOT NULL,
    store_id     text NOT NULL,
    value        numeric(12, 3) NOT NULL,
    local_date   date,                               -- NULL while the store is unknown
    bronze_id    uuid NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, kind, occurred_at)
);
CREATE INDEX silver_readings_store_day_idx ON scout.silver_device_readings (store_id, local_date, kind);

-- One row per rejected bronze record (re-delivery updates it, never doubles it).
CREATE TABLE scout.silver_quarantine (
    bronze_id       uuid PRIMARY KEY,
    source_system   text NOT NULL,
    rule            text NOT NULL,
    field           text,
    detail          text NOT NULL,
    store_id        text,                            -- for re-processing unknown_store
    batch_id        text,
    partner         text,
    kafka_timestamp timestamptz NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
CREATE INDEX silver_quarantine_open_idx ON scout.silver_quarantine (rule, store_id)
    WHERE resolved_at IS NULL;

-- Where each bronze record went in silver: the audit that makes "nothing lost" checkable.
CREATE TABLE scout.silver_lineage (
    bronze_id       uuid PRIMARY KEY,
    target          text NOT NULL CHECK (target IN ('silver_transactions_cleaned',
                        'silver_campaign_spend', 'silver_device_readings', 'silver_quarantine')),
    transaction_id  uuid,
    processed_at    timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON scout.silver_master_stores, scout.silver_master_products,
    scout.silver_transactions_cleaned, scout.silver_transaction_items, scout.silver_campaign_spend,
    scout.silver_device_readings, scout.silver_quarantine, scout.silver_lineage
    TO scout_silver_enricher;
GRANT SELECT ON scout.silver_master_stores, scout.silver_master_products,
    scout.silver_transactions_cleaned, scout.silver_transaction_items, scout.silver_campaign_spend,
    scout.silver_device_readings, scout.silver_quarantine, scout.silver_lineage
    TO scout_gold_aggregator, scout_platinum_builder, scout_reader;
