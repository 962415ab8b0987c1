"""What the simulator emits: one Kafka record plus where every source record in it should end.

``outcomes`` holds one expected destination per bronze-level record (an API batch has one
per record inside it, a payload that bronze cannot store has exactly one), so a test can
account for every record: bronze error log, bronze rows, silver quarantine by rule, or the
silver table it lands in.
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical topics; services.common.kafka.Topics maps them to real names.
POS, API, IOT, STORES, PRODUCTS = "pos", "api", "iot", "stores", "products"
TOPICS = (POS, API, IOT, STORES, PRODUCTS)

# Expected destinations.
BRONZE_ERROR = "bronze_error_log:"  # + bronze reason: not_json, not_utf8, not_object, too_large
QUARANTINE = "silver_quarantine:"  # + rule (parser rules, future_timestamp)
UNKNOWN_STORE_THEN_SILVER = "silver_quarantine:unknown_store→silver_transactions"
SILVER_TRANSACTIONS = "silver_transactions"
SILVER_DUPLICATE = "silver_duplicate_ignored"  # same event_id and version: no new row
SILVER_CORRECTION = "silver_correction_replaces"  # same event_id, higher version: replaces
SILVER_CAMPAIGN_SPEND = "silver_campaign_spend"
SILVER_DEVICE_READINGS = "silver_device_readings"
SILVER_STORES = "silver_master_stores"
SILVER_PRODUCTS = "silver_master_products"


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One Kafka record to publish."""

    topic: str  # logical topic (POS, API, ...)
    key: bytes
    value: bytes
    kind: str  # e.g. pos.transaction/2, iot.sale, api.batch/1, master.store/1
    fault: str | None
    outcomes: tuple[str, ...]
    inner_kinds: tuple[str, ...] = ()  # API batch: kind of each record inside
