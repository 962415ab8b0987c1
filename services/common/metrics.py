"""Every Prometheus metric of the pipeline, declared once (CONTRACTS §5).

Names start with ``scout_``; the ``layer`` label is ``bronze``, ``silver``, ``gold`` or
``platinum``. Services import the metric objects from here and never declare their own, so
dashboards and alert rules have one list to rely on.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Source time → committed in the layer. Buckets span the SLAs (1 min … 2 h), and are finer
# between 0.5 and 5 s where the gold target (p99 ≤ 2 s) is read.
FRESHNESS_BUCKETS = (
    0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 1800, 7200, float("inf")
)  # fmt: skip
FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))
SIZE_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, float("inf"))

RECORDS_CONSUMED = Counter(
    "scout_records_consumed_total", "Kafka records consumed", ["layer", "topic"]
)
RECORDS_WRITTEN = Counter(
    "scout_records_written_total", "Rows written (new or changed) per table", ["layer", "table"]
)
RECORDS_REJECTED = Counter(
    "scout_records_rejected_total",
    "Records not accepted by the layer (bronze error log, silver quarantine) by reason",
    ["layer", "reason"],
)
RECORDS_WARNED = Counter(
    "scout_records_warned_total", "Records kept with a warning, by expectation", ["layer", "rule"]
)
CONSUMER_LAG = Gauge(
    "scout_consumer_lag",
    "Log-end offset minus committed offset",
    ["group", "topic", "partition"],
)
CONSUMER_DELETED_UNREAD = Gauge(
    "scout_consumer_deleted_unread",
    "Records Kafka deleted (retention) before the group read them, found when the service "
    "started: log-start offset minus committed offset",
    ["group", "topic", "partition"],
)
FRESHNESS = Histogram(
    "scout_freshness_seconds",
    "Source record time (its Kafka timestamp, set when the event was published) to "
    "committed and visible in the layer: the SLA measure",
    ["layer"],
    buckets=FRESHNESS_BUCKETS,
)
QUALITY_SCORE = Gauge(
    "scout_quality_score", "Share of valid records in the layer (0..1)", ["layer"]
)
QUALITY_GATE = Gauge(
    "scout_quality_gate_met", "1 when the layer meets its quality gate and SLA", ["layer"]
)
BATCH_FLUSH = Histogram(
    "scout_batch_flush_seconds", "Time to write one batch", ["layer"], buckets=FLUSH_BUCKETS
)
BATCH_SIZE = Histogram(
    "scout_batch_size", "Kafka records per batch", ["layer"], buckets=SIZE_BUCKETS
)
BATCH_RETRIES = Counter(
    "scout_batch_retries_total",
    "Batches retried after a failure: transient (database or broker away) or error",
    ["layer", "kind"],
)
RECORDS_ISOLATED = Counter(
    "scout_records_isolated_total",
    "Records a layer could not store although they passed its checks, kept aside with the"
    " reason (bronze error log, silver quarantine, gold dead letters) while the rest of the"
    " batch went on",
    ["layer", "reason"],
)
STATEMENTS_CANCELLED = Counter(
    "scout_statements_cancelled_total",
    "Writes the server cancelled (statement_timeout, or pg_cancel_backend) that the layer"
    " split and wrote again in smaller parts instead of retrying them whole",
    ["layer"],
)
DB_UP = Gauge("scout_db_up", "1 when the last database call of the layer succeeded", ["layer"])
DB_RETRIES = Counter(
    "scout_db_retries_total", "Database operations retried after a transient error", ["layer"]
)
DB_POOL_CONNECTIONS = Gauge(
    "scout_db_pool_connections", "Database pool connections by state", ["layer", "state"]
)
GOLD_GROUPS_UPDATED = Histogram(
    "scout_gold_groups_updated",
    "Gold groups recomputed per flush",
    ["table"],
    buckets=SIZE_BUCKETS,
)
GOLD_RECONCILIATION_MISMATCHES = Gauge(
    "scout_gold_reconciliation_mismatches",
    "Gold rows that differ from a from-scratch recomputation (expected 0)",
    ["table"],
)
PLATINUM_JOB_RUNS = Counter(
    "scout_platinum_job_runs_total", "Platinum job runs by outcome", ["job", "status"]
)
PLATINUM_JOB_LAST_SUCCESS = Gauge(
    "scout_platinum_job_last_success_timestamp_seconds",
    "Unix time of the job's last successful run",
    ["job"],
)
PLATINUM_JOB_GAVE_UP = Gauge(
    "scout_platinum_job_gave_up",
    "1 while a job has failed too often since its last success and waits for an operator",
    ["job"],
)
PLATINUM_JOB_DURATION = Histogram(
    "scout_platinum_job_duration_seconds", "Platinum job run time", ["job"]
)
PRIVACY_EPSILON_SPENT = Gauge(
    "scout_privacy_epsilon_spent", "Differential-privacy budget spent", ["release"]
)
PRIVACY_EPSILON_BUDGET = Gauge(
    "scout_privacy_epsilon_budget", "Differential-privacy budget configured", ["release"]
)
GOLD_FROM_SILVER = Histogram(
    "scout_gold_from_silver_seconds",
    "Silver's transaction (change captured) to the gold group updated and visible",
    buckets=FRESHNESS_BUCKETS,
)
GOLD_WAITING_CHANGES = Gauge(
    "scout_gold_waiting_changes",
    "Changes silver's triggers captured that gold has not applied yet (gold_silver_changes)",
)
GOLD_DEAD_LETTERS = Gauge(
    "scout_gold_dead_letter_groups",
    "(store, day) groups gold set aside because their changes could not be written"
    " (gold_dead_letters); their changes wait to be retried",
)
GOLD_SHARDS_OWNED = Gauge(
    "scout_gold_shards_owned", "Gold shards (of 64) whose changes this replica takes"
)
GOLD_GROUPS_LOADED = Counter(
    "scout_gold_groups_loaded_total",
    "Gold (store, period) groups built from silver (new to the worker, restarted, or stale)",
)
GOLD_GROUPS_IN_MEMORY = Gauge(
    "scout_gold_groups_in_memory", "Gold (store, period) groups whose exact state a worker holds"
)
EVENT_LATENESS = Histogram(
    "scout_event_lateness_seconds",
    "Business event time (occurred_at) to committed in silver: shows late-arriving data",
    ["layer"],
    buckets=(*FRESHNESS_BUCKETS[:-1], 86400, 7 * 86400, 30 * 86400, float("inf")),
)
REGISTRY_LOOKUPS = Counter(
    "scout_registry_lookups_total",
    "Writer-schema lookups of framed records by outcome (found, unknown, unavailable)",
    ["outcome"],
)
FRAMED_RECORDS = Counter(
    "scout_framed_records_total",
    "Registry-framed source records bronze decoded, by schema type (JSON, AVRO, ...)",
    ["schema_type"],
)
