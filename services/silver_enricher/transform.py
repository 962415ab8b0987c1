"""Bronze records → silver rows (pure: no I/O; the clock and master data are passed in).

Every input record ends in exactly one place: a silver transaction (new, or a version of
one already there), a campaign-spend row, a device reading, or the quarantine with a rule.
The ``lineage`` list says which, per bronze id.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from services.common.events import (
    CampaignSpend,
    DeviceReading,
    ProductRecord,
    Rejection,
    StoreRecord,
    Transaction,
    parse_record,
    rules,
)
from services.common.events.types import storable_or_none, storable_text
from services.common.handoff import DecodedRecord
from services.common.ids import NameIds
from services.silver_enricher.expectations import (
    FUTURE_TIMESTAMP,
    UNKNOWN_STORE,
    Context,
    Expectation,
    evaluate,
)
from services.silver_enricher.pii import PiiKey, pseudonymise, scrub_text

# uuid5 namespace of silver transaction ids: transaction_id = uuid5(NS, "<source>:<event_id>").
TRANSACTION_NAMESPACE = uuid.UUID("8d7f3a52-1c0e-4f43-9b6d-5e2a7c9b0f14")

TX_TABLE = "silver_transactions_cleaned"
SPEND_TABLE = "silver_campaign_spend"
READINGS_TABLE = "silver_device_readings"
QUARANTINE_TABLE = "silver_quarantine"
# A bronze row's id as its UUID text: asyncpg encodes text into uuid columns and arrays, so
# the rows keep the text silver received instead of parsing it into a UUID per use.
BronzeId = str


_TRANSACTION_IDS = NameIds(TRANSACTION_NAMESPACE)


def transaction_id(source_system: str, event_id: str) -> uuid.UUID:
    return _TRANSACTION_IDS(f"{source_system}:{event_id}")


def cents(amount: Decimal) -> int:
    """Money (whole cents, as validated) in integer cents: the rows carry money as cents,
    which the database turns back into ``numeric`` (repo: an integer costs a tenth of a
    decimal to encode)."""
    return int(amount * 100)


class SilverTransaction(NamedTuple):  # one per record: no setattr per field (frozen dataclass)
    """A transaction row and its line items, ready for the upsert."""

    transaction_id: uuid.UUID
    row: tuple[Any, ...]  # in TX_COLUMNS order (repo)
    items: tuple[tuple[Any, ...], ...]  # in ITEM_COLUMNS order (repo)
    rank: tuple[int, datetime, str]  # (version, kafka time, bronze id): the newest wins
    store_id: str
    local_date: date
    amount: Decimal


@dataclass
class Refined:
    transactions: dict[uuid.UUID, SilverTransaction] = field(default_factory=dict)
    spends: dict[tuple[str, str, date, str], tuple[Any, ...]] = field(default_factory=dict)
    readings: dict[tuple[str, str, datetime], tuple[Any, ...]] = field(default_factory=dict)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    lineage: list[tuple[BronzeId, str, uuid.UUID | None]] = field(default_factory=list)
    quarantined: Counter[str] = field(default_factory=Counter)
    warned: Counter[str] = field(default_factory=Counter)
    event_times: list[datetime] = field(default_factory=list)  # occurred_at of kept records
    waiting_stores: set[str] = field(default_factory=set)  # quarantined as unknown_store
    unknown_skus: set[str] = field(default_factory=set)  # kept, enriched as 'unknown'


class Refiner:
    """Turns decoded bronze records into :class:`Refined` rows."""

    def __init__(self, pii_key: PiiKey, expectations: Sequence[Expectation]) -> None:
        self.pii_key = pii_key
        self.expectations = expectations

    def refine(
        self,
        records: Sequence[DecodedRecord],
        stores: Mapping[str, StoreRecord],
        products: Mapping[str, ProductRecord],
        ctx: Context,
    ) -> Refined:
        out = Refined()
        for record in records:
            event = parse_record(
                record.raw, record.source_system, batch_id=record.batch_id, partner=record.partner
            )
            if isinstance(event, Rejection):
                self._quarantine(out, record, event.rule, event.field, event.detail,
                                 store_of(record.raw))  # fmt: skip
            elif isinstance(event, Transaction):
                self._transaction(out, record, event, stores, products, ctx)
            elif isinstance(event, DeviceReading):
                self._reading(out, record, event, stores, ctx)
            elif isinstance(event, CampaignSpend):
                self._spend(out, record, event)
            else:  # master data on a transaction topic: not a silver record
                self._quarantine(out, record, "invalid_value", "schema",
                                 "master data on a source topic", None)  # fmt: skip
        return out

    def _quarantine(self, out: Refined, record: DecodedRecord, rule: str, field_: str | None,
                    detail: str, store_id: str | None) -> None:  # fmt: skip
        bronze_id = record.bronze_id
        out.quarantine.append(  # detail, batch and partner echo the input: scrubbed too
            (bronze_id, record.source_system, rule, field_, scrub_text(detail), store_id,
             scrub_text(record.batch_id), scrub_text(record.partner), record.kafka_timestamp)
        )  # fmt: skip
        out.lineage.append((bronze_id, QUARANTINE_TABLE, None))
        out.quarantined[rule] += 1
        if rule == UNKNOWN_STORE and store_id is not None:
            out.waiting_stores.add(store_id)

    def _transaction(
        self,
        out: Refined,
        record: DecodedRecord,
        tx: Transaction,
        stores: Mapping[str, StoreRecord],
        products: Mapping[str, ProductRecord],
        ctx: Context,
    ) -> None:
        verdict = evaluate(tx, ctx, self.expectations)
        if verdict.quarantine is not None:
            rule, detail = verdict.quarantine
            self._quarantine(out, record, rule, None, detail, tx.store_id)
            return
        out.warned.update(verdict.warnings)
        out.unknown_skus.update(i.sku for i in tx.items if i.sku not in products)
        silver = self.silver_transaction(tx, record, stores[tx.store_id], products)
        out.lineage.append((record.bronze_id, TX_TABLE, silver.transaction_id))
        out.event_times.append(tx.occurred_at)
        current = out.transactions.get(silver.transaction_id)
        if current is None or silver.rank > current.rank:
            out.transactions[silver.transaction_id] = silver

    def silver_transaction(
        self,
        tx: Transaction,
        record: DecodedRecord,
        store: StoreRecord,
        products: Mapping[str, ProductRecord],
    ) -> SilverTransaction:
        tid = transaction_id(tx.source_system, tx.event_id)
        local = tx.occurred_at.astimezone(ZoneInfo(store.timezone))
        local_date = local.date()
        dow = local.isoweekday() % 7  # 0 = Sunday, like PostgreSQL's EXTRACT(DOW)
        items = []
        largest: tuple[int, str, str | None] = (-1, "unknown", None)
        for line_no, item in enumerate(tx.items, start=1):
            product = products.get(item.sku)
            category = product.category if product else "unknown"
            brand = product.brand if product else None
            unit_cents = cents(item.unit_price)
            line_cents = unit_cents * item.qty
            if line_cents > largest[0]:
                largest = (line_cents, category, brand)
            items.append(
                (tid, line_no, item.sku, item.qty, unit_cents, line_cents,
                 brand, category, product is not None, tx.store_id, local_date)
            )  # fmt: skip
        customer = tx.customer
        customer_type = (
            "walk_in" if customer is None or (customer.id is None and customer.type is None)
            else customer.type or "regular"
        )  # fmt: skip
        customer_key = pseudonymise(customer.id, self.pii_key) if customer and customer.id else None
        row = (
            tid, tx.source_system, tx.event_id, tx.version, record.bronze_id,
            record.kafka_timestamp, tx.store_id, tx.occurred_at, cents(tx.net_amount),
            cents(tx.gross_amount), cents(tx.discount_amount), tx.currency, largest[1],
            largest[2], customer_type, customer_key,
            scrub_text(tx.payment_method), scrub_text(tx.terminal_id), scrub_text(tx.campaign_id),
            scrub_text(tx.partner), scrub_text(tx.batch_id), scrub_text(tx.notes),
            len(tx.items), sum(i.qty for i in tx.items), store.region, store.city, store.timezone,
            local_date, dow, dow in (0, 6), local.hour,
        )  # fmt: skip
        rank = (tx.version, record.kafka_timestamp, record.bronze_id)
        return SilverTransaction(
            tid, row, tuple(items), rank, tx.store_id, local_date, tx.net_amount
        )

    def _reading(self, out: Refined, record: DecodedRecord, reading: DeviceReading,
                 stores: Mapping[str, StoreRecord], ctx: Context) -> None:  # fmt: skip
        if reading.occurred_at > ctx.now + ctx.allowed_skew:
            self._quarantine(out, record, FUTURE_TIMESTAMP, "occurred_at",
                             "reading time is ahead of now", reading.store_id)  # fmt: skip
            return
        store = stores.get(reading.store_id)
        if store is None:
            self._quarantine(out, record, UNKNOWN_STORE, "store_id",
                             "store is not in master data (yet)", reading.store_id)  # fmt: skip
            return
        local_date = reading.occurred_at.astimezone(ZoneInfo(store.timezone)).date()
        key = (reading.device_id, reading.kind, reading.occurred_at)
        current = out.readings.get(key)
        if current is None or record.bronze_id > current[6]:  # repo.MERGE_READINGS' rule
            out.readings[key] = (reading.device_id, reading.kind, reading.occurred_at,
                                 reading.store_id, reading.value, local_date,
                                 record.bronze_id)  # fmt: skip
        out.lineage.append((record.bronze_id, READINGS_TABLE, None))
        out.event_times.append(reading.occurred_at)

    def _spend(self, out: Refined, record: DecodedRecord, spend: CampaignSpend) -> None:
        channel = spend.channel or ""
        key = (spend.campaign_id, spend.store_id, spend.date, channel)
        current = out.spends.get(key)
        # Of two in one batch, the one repo.MERGE_SPEND would keep: the latest by (Kafka
        # time, bronze id), whatever their order in the batch (so however batches are cut).
        if current is None or (record.kafka_timestamp, record.bronze_id) > (current[8], current[7]):
            out.spends[key] = (spend.campaign_id, spend.store_id, spend.date, scrub_text(channel),
                               spend.spend, scrub_text(spend.partner), scrub_text(spend.batch_id),
                               record.bronze_id, record.kafka_timestamp)  # fmt: skip
        out.lineage.append((record.bronze_id, SPEND_TABLE, None))


# uuid5 namespace of the quarantine id of a hand-off record whose id is no UUID (not bronze's).
FOREIGN_RECORD_NAMESPACE = uuid.UUID("3f1e9a64-27c5-4b8e-9d0a-6c4b2e8f7a15")


def unprocessable_rows(
    record: DecodedRecord, reason: str, detail: str
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """The quarantine row (and lineage row, if any) of a record silver could not store.

    The last resort trusts no field: a record that fails alone may fail *because* of one, and
    failing again here would stop silver on it. An id that is no UUID is not bronze's: the
    record is kept as the hand-off's (source ``handoff``, no lineage). A text PostgreSQL
    cannot store (NUL, a lone surrogate) is left out, and the detail made storable.
    """
    try:
        bronze_id = uuid.UUID(record.bronze_id)
        source, lineage = record.source_system, (bronze_id, QUARANTINE_TABLE, None)
    except (ValueError, TypeError, AttributeError):
        bronze_id = uuid.uuid5(FOREIGN_RECORD_NAMESPACE, repr(record.bronze_id)[:200])
        source, lineage = "handoff", None
    row = (bronze_id, source, rules.UNPROCESSABLE, None, storable_text(f"{reason}: {detail}"),
           storable_or_none(store_of(record.raw)), scrub_text(storable_or_none(record.batch_id)),
           scrub_text(storable_or_none(record.partner)), record.kafka_timestamp)  # fmt: skip
    return row, lineage


def store_of(raw: Any) -> str | None:
    """The store id of a rejected record, if it names one (for re-processing by store)."""
    if isinstance(raw, dict) and isinstance(raw.get("store_id"), str):
        return str(raw["store_id"])[:200]
    return None
