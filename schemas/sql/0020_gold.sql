-- Gold: business aggregates kept exact and fresh by the gold aggregator.
-- Each row equals a recomputation of its group from silver (see services/gold_aggregator/sql.py);
-- `scout gold verify` checks it and exports the mismatch count.

CREATE TABLE scout.gold_business_metrics (
    store_id             text NOT NULL,
    date_key             date NOT NULL,            -- the store's local business day
    region               text NOT NULL,
    city                 text NOT NULL,
    transaction_count    integer NOT NULL,
    daily_revenue        numeric(16, 2) NOT NULL,
    avg_transaction      numeric(14, 4) NOT NULL,
    unique_customers     integer NOT NULL,         -- distinct pseudonymous customers (walk-ins excluded)
    median_amount        numeric(14, 4) NOT NULL,  -- exact: mean of the two middle amounts when even
    amount_stddev        numeric(14, 4),           -- sample stddev; NULL for a single transaction
    new_customers        integer NOT NULL,         -- distinct customers of type 'new'
    returning_customers  integer NOT NULL,         -- distinct customers of type 'regular'
    footfall             bigint NOT NULL,          -- people counted by the door sensors
    conversion_rate      numeric(10, 4),           -- transactions / footfall; NULL without footfall
    campaign_spend       numeric(16, 2) NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, date_key)
);
CREATE INDEX gold_business_metrics_day_idx ON scout.gold_business_metrics (date_key);

CREATE TABLE scout.gold_customer_insights (
    segment            text NOT NULL,              -- customer_type: new, regular, walk_in
    date_key           date NOT NULL,
    transaction_count  integer NOT NULL,
    revenue            numeric(16, 2) NOT NULL,
    customers          integer NOT NULL,
    avg_basket_size    numeric(10, 4) NOT NULL,    -- units per transaction
    avg_basket_value   numeric(14, 4) NOT NULL,
    repeat_rate        numeric(6, 4),              -- customers with 2+ transactions that day / customers
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment, date_key)
);

CREATE TABLE scout.gold_geographic_performance (
    region             text NOT NULL,
    city               text NOT NULL,
    date_key           date NOT NULL,
    revenue            numeric(16, 2) NOT NULL,
    transaction_count  integer NOT NULL,
    active_stores      integer NOT NULL,
    share_of_total     numeric(8, 6) NOT NULL,     -- of the day's revenue over all regions
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, city, date_key)
);

CREATE TABLE scout.gold_product_performance (
    category               text NOT NULL,
    brand                  text NOT NULL,          -- 'unknown' for SKUs not in master data
    date_key               date NOT NULL,
    units                  integer NOT NULL,
    revenue                numeric(16, 2) NOT NULL,
    transaction_count      integer NOT NULL,
    share_within_category  numeric(8, 6) NOT NULL,
    rank_in_category       integer NOT NULL,       -- 1 = highest revenue in the category that day
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, brand, date_key)
);

-- Groups waiting to be recomputed. Written in the same transaction that acknowledges the
-- silver change, drained by the aggregator's flush loops: a crash loses no group.
CREATE TABLE scout.gold_pending_groups (
    kind             text NOT NULL CHECK (kind IN ('store_day', 'day')),
    store_id         text NOT NULL DEFAULT '',     -- '' for day-wide groups
    date_key         date NOT NULL,
    oldest_event_at  timestamptz NOT NULL,         -- source (Kafka) time of the oldest change
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, store_id, date_key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON scout.gold_business_metrics, scout.gold_customer_insights,
    scout.gold_geographic_performance, scout.gold_product_performance, scout.gold_pending_groups
    TO scout_gold_aggregator;
GRANT SELECT ON scout.gold_business_metrics, scout.gold_customer_insights,
    scout.gold_geographic_performance, scout.gold_product_performance
    TO scout_platinum_builder, scout_reader;
