-- Platinum: scheduled data products built from gold (and silver) by the platinum builder,
-- its run history, the privacy ledger, and the live data quality dashboard.
-- No platinum table has a customer key or any other personal identifier: customers are
-- used only inside the differentially private computation (see privacy.py).

-- One row per job attempt: what ran, for which period, how it ended.
CREATE TABLE scout.platinum_job_runs (
    run_id       bigserial PRIMARY KEY,
    job          text NOT NULL,
    period       text NOT NULL,                    -- e.g. '2026-11-25' (as-of day) or '2026-W47'
    attempt      integer NOT NULL DEFAULT 1,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    rows         integer,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error        text
);
CREATE INDEX platinum_job_runs_job_idx ON scout.platinum_job_runs (job, period, started_at DESC);

-- Per (store, calendar day): features over a dense calendar (days without sales count as zero).
CREATE TABLE scout.platinum_ml_features (
    store_id              text NOT NULL,
    date_key              date NOT NULL,
    region                text NOT NULL,
    city                  text NOT NULL,
    daily_revenue         numeric(16, 2) NOT NULL,   -- 0 on a day without a gold row
    transaction_count     integer NOT NULL,
    revenue_7d_ma         numeric(16, 4) NOT NULL,   -- mean over the 7 calendar days ending today
    revenue_30d_ma        numeric(16, 4) NOT NULL,   -- mean over the 30 calendar days ending today
    wow_growth            numeric(14, 6),            -- vs the same weekday a week ago; NULL if that was 0
    day_of_week           smallint NOT NULL,         -- 0 = Sunday, as EXTRACT(DOW)
    day_of_week_index     numeric(14, 6),            -- revenue / mean of this weekday over 12 weeks
    store_percentile      numeric(8, 6) NOT NULL,    -- percent_rank of revenue_30d_ma among stores that day
    performance_tier      text NOT NULL CHECK (performance_tier IN
                              ('high_performer', 'average_performer', 'low_performer')),
    basket_value          numeric(14, 4),            -- revenue per transaction
    basket_units          numeric(10, 4),            -- units per transaction (from silver)
    repeat_customer_rate  numeric(8, 6),             -- regular customers / distinct customers
    footfall_conversion   numeric(10, 4),            -- transactions / footfall
    campaign_flag         boolean NOT NULL,          -- campaign spend on the store that day
    as_of                 date NOT NULL,             -- the build's period
    PRIMARY KEY (store_id, date_key)
);
CREATE INDEX platinum_ml_features_day_idx ON scout.platinum_ml_features (date_key);

-- One row per as-of day.
CREATE TABLE scout.platinum_executive_summary (
    as_of                   date PRIMARY KEY,
    window_start            date NOT NULL,
    window_end              date NOT NULL,
    total_revenue           numeric(18, 2) NOT NULL,
    active_stores           integer NOT NULL,
    avg_store_revenue       numeric(18, 4),          -- total revenue / active stores (30 days)
    revenue_trend_per_day   double precision,        -- regr_slope of daily revenue on the day, 90 days
    campaign_correlation    double precision,        -- corr(store-day revenue, campaign spend), 90 days
    forecast_method         text NOT NULL,
    forecast_30d            double precision,
    forecast_30d_lower      double precision,
    forecast_30d_upper      double precision,
    interval_level          double precision NOT NULL,
    backtest_days           integer NOT NULL,
    backtest_mape           double precision,        -- the method, last 28 days held out
    baseline_method         text NOT NULL,
    baseline_mape           double precision         -- seasonal naive on the same hold-out
    -- no build time here: a rebuild of the same period leaves identical rows (the run
    -- history, platinum_job_runs, has the times)
);

CREATE TABLE scout.platinum_campaign_insights (
    campaign_id           text PRIMARY KEY,
    first_day             date NOT NULL,
    last_day              date NOT NULL,
    stores                integer NOT NULL,
    control_stores        integer NOT NULL,
    spend                 numeric(16, 2) NOT NULL,
    revenue_during        numeric(18, 2) NOT NULL,   -- campaign stores, campaign days
    baseline_revenue      numeric(18, 2),            -- expected without the campaign
    revenue_lift          numeric(18, 2),
    lift_pct              double precision,
    roi                   double precision,          -- (lift - spend) / spend
    attributed_revenue    numeric(18, 2) NOT NULL,   -- transactions tagged with the campaign
    method                text NOT NULL,
    as_of                 date NOT NULL
);

CREATE TABLE scout.platinum_market_predictions (
    region            text NOT NULL,
    horizon_days      integer NOT NULL,
    forecast_start    date NOT NULL,
    forecast_end      date NOT NULL,
    predicted_revenue double precision NOT NULL,
    lower_bound       double precision NOT NULL,
    upper_bound       double precision NOT NULL,
    interval_level    double precision NOT NULL,
    model             text NOT NULL,
    backtest_mape     double precision,
    baseline_model    text NOT NULL,
    baseline_mape     double precision,
    as_of             date NOT NULL,
    PRIMARY KEY (region, horizon_days)
);

-- Every differentially private release, with the budget it spent. A period is released once:
-- running the job again re-uses the stored release (fresh noise would average away).
CREATE TABLE scout.platinum_privacy_ledger (
    release_id    bigserial PRIMARY KEY,
    release       text NOT NULL,                     -- the data product, e.g. 'anonymized_analytics'
    period        text NOT NULL,                     -- e.g. the week '2026-11-23'
    epsilon       double precision NOT NULL CHECK (epsilon > 0),
    delta         double precision NOT NULL CHECK (delta >= 0),
    mechanism     text NOT NULL,
    parameters    jsonb NOT NULL,
    released_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (release, period)
);

-- Per (region, city, week): noisy statistics; groups under the DP threshold are not released.
CREATE TABLE scout.platinum_anonymized_analytics (
    region              text NOT NULL,
    city                text NOT NULL,
    week                date NOT NULL,               -- Monday of the local week
    transaction_count   double precision NOT NULL,   -- noisy bounded count
    avg_amount          double precision NOT NULL,   -- noisy bounded sum / noisy count, clamped
    count_noise_scale   double precision NOT NULL,   -- Laplace scale b of the count
    sum_noise_scale     double precision NOT NULL,   -- Laplace scale b of the sum
    release_id          bigint NOT NULL REFERENCES scout.platinum_privacy_ledger,
    PRIMARY KEY (region, city, week)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON scout.platinum_job_runs, scout.platinum_ml_features,
    scout.platinum_executive_summary, scout.platinum_campaign_insights,
    scout.platinum_market_predictions, scout.platinum_privacy_ledger,
    scout.platinum_anonymized_analytics TO scout_platinum_builder;
GRANT USAGE ON SEQUENCE scout.platinum_job_runs_run_id_seq,
    scout.platinum_privacy_ledger_release_id_seq TO scout_platinum_builder;
GRANT SELECT ON scout.platinum_job_runs, scout.platinum_ml_features,
    scout.platinum_executive_summary, scout.platinum_campaign_insights,
    scout.platinum_market_predictions, scout.platinum_privacy_ledger,
    scout.platinum_anonymized_analytics TO scout_reader;

-- The dashboard's silver window reads lineage by processing time.
CREATE INDEX IF NOT EXISTS silver_lineage_processed_idx ON scout.silver_lineage (processed_at);
