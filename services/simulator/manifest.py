"""The run manifest: what the simulator sent, by topic, kind and fault, and where every
source record is expected to end (bronze error log, bronze rows, silver quarantine by rule,
silver tables), so tests and benchmarks can account for each one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from services.simulator import records as r


@dataclass
class Manifest:
    topics: Counter[str] = field(default_factory=Counter)  # Kafka records per real topic
    kinds: Counter[str] = field(default_factory=Counter)  # Kafka records per payload kind
    record_kinds: Counter[str] = field(default_factory=Counter)  # records inside API batches
    faults: Counter[str] = field(default_factory=Counter)
    destinations: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    api_batches: int = 0  # API batches bronze can read (one bronze_ingestion_batches row each)

    def add(self, record: r.SimRecord, topic: str) -> None:
        self.topics[topic] += 1
        self.kinds[record.kind] += 1
        self.record_kinds.update(record.inner_kinds)
        if record.fault:
            self.faults[record.fault] += 1
        self.destinations.update(record.outcomes)
        self.bytes_sent += len(record.value)
        if record.topic == r.API and not record.outcomes[0].startswith(r.BRONZE_ERROR):
            self.api_batches += 1

    @property
    def sent(self) -> int:
        return sum(self.topics.values())

    def expected(self) -> dict[str, Any]:
        """Totals per table, derived from the destinations."""
        d = self.destinations
        errors = {k.removeprefix(r.BRONZE_ERROR): v for k, v in d.items()
                  if k.startswith(r.BRONZE_ERROR)}  # fmt: skip
        quarantine: Counter[str] = Counter()
        for key, count in d.items():
            if key.startswith(r.QUARANTINE):
                quarantine[key.removeprefix(r.QUARANTINE).split("→")[0]] += count
        masters = d[r.SILVER_STORES] + d[r.SILVER_PRODUCTS]
        source_rows = sum(d.values()) - sum(errors.values()) - masters
        return {
            "bronze_error_log": sum(errors.values()),
            "bronze_error_log_by_reason": dict(sorted(errors.items())),
            "bronze_transactions_raw": source_rows,
            "bronze_ingestion_batches": self.api_batches,
            "silver_quarantine": dict(sorted(quarantine.items())),
            "silver_quarantine_resolved": d[r.UNKNOWN_STORE_THEN_SILVER],
            "silver_transactions_cleaned": d[r.SILVER_TRANSACTIONS]
            + d[r.UNKNOWN_STORE_THEN_SILVER],
            "silver_duplicates_ignored": d[r.SILVER_DUPLICATE],
            "silver_corrections": d[r.SILVER_CORRECTION],
            "silver_campaign_spend": d[r.SILVER_CAMPAIGN_SPEND],
            "silver_device_readings": d[r.SILVER_DEVICE_READINGS],
            "silver_master_stores": d[r.SILVER_STORES],
            "silver_master_products": d[r.SILVER_PRODUCTS],
        }

    def to_dict(self, **meta: Any) -> dict[str, Any]:
        return {
            **meta,
            "sent": self.sent,
            "bytes_sent": self.bytes_sent,
            "topics": dict(sorted(self.topics.items())),
            "kinds": dict(sorted(self.kinds.items())),
            "api_record_kinds": dict(sorted(self.record_kinds.items())),
            "faults": dict(sorted(self.faults.items())),
            "destinations": dict(sorted(self.destinations.items())),
            "expected": self.expected(),
        }
