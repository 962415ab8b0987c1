"""A plain Quix Streams bronze → silver → gold chain: the baseline of ``bench/chain.py``.

Written the way Quix Streams' documentation shows (``Application``, ``app.topic``,
``StreamingDataFrame`` with ``apply``/``filter``/``to_topic``, stateful functions, and the
batching ``PostgreSQLSink`` that flushes once per checkpoint): three processes, each its
own consumer group, each its own table in the ``quix`` schema of the benchmark's database.

- ``bronze``: the POS topic as bytes; every record is inserted into ``quix.bronze`` (its
  Kafka coordinates as the key, ``ON CONFLICT DO NOTHING`` for replays); records that are
  JSON objects (under ~1 MB: Kafka's default limit) are forwarded to ``<prefix>quix.landed``;
- ``silver``: basic checks like Scout's parser rules (known schema, required fields and
  types, amount and quantities > 0, a parseable time not in the future, a known store);
  a stateful dedup per event id (state is per message key, the store); upsert into
  ``quix.silver`` keyed by ``event_id`` and forward to ``<prefix>quix.silver``;
- ``gold``: a stateful reduce per store and local day (count, revenue in centavos)
  upserted into ``quix.gold`` keyed by (store_id, date_key): every update of a day is
  emitted and the sink keeps the last one of each checkpoint.

Corrections (a higher ``version`` of an event id) are not carried into gold here: silver
drops every event id it has seen (a simplification in the baseline's favour: less work).

quixstreams pins confluent-kafka < 2.13 and Scout needs ≥ 2.16, so the chain runs in a
virtualenv of its own (``bench/quix-requirements.txt``; ``bench/chain.py`` creates it):

    <quix venv>/bin/python -m bench.quix_chain bronze|silver|gold --prefix P --dsn URL \\
        --bootstrap 127.0.0.1:9092 [--partitions 6] [--state-dir DIR]

This module imports only the standard library at module level, so the pure pieces
(``validate``, table names) are importable from Scout's virtualenv too.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_FORWARD_BYTES = 900_000  # under the producer's default message.max.bytes (1 MB)
SCHEMAS = ("pos.transaction/1", "pos.transaction/2")
FUTURE_SKEW = timedelta(minutes=5)
TABLES_SQL = {
    "bronze": """
        CREATE SCHEMA IF NOT EXISTS quix;
        CREATE TABLE IF NOT EXISTS quix.bronze (
            topic text NOT NULL, kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,
            kafka_ts bigint NOT NULL, raw text NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, kafka_partition, kafka_offset))""",
    "silver": """
        CREATE SCHEMA IF NOT EXISTS quix;
        CREATE TABLE IF NOT EXISTS quix.silver (
            event_id text PRIMARY KEY, store_id text NOT NULL, occurred_at timestamptz NOT NULL,
            date_key date NOT NULL, amount_centavos bigint NOT NULL, payment_method text,
            customer_id text, items jsonb NOT NULL, version int NOT NULL,
            loaded_at timestamptz NOT NULL DEFAULT now())""",
    "gold": """
        CREATE SCHEMA IF NOT EXISTS quix;
        CREATE TABLE IF NOT EXISTS quix.gold (
            store_id text NOT NULL, date_key date NOT NULL, transaction_count bigint NOT NULL,
            revenue_centavos bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (store_id, date_key))""",
}
COUNT_SQL = {
    "bronze": "SELECT count(*) FROM quix.bronze",
    "silver": "SELECT count(*) FROM quix.silver",
    "gold": "SELECT coalesce(sum(transaction_count), 0) FROM quix.gold",
}
LOCK_SQL = "SELECT pg_advisory_xact_lock(16)"
STORES_SQL = "SELECT store_id, timezone FROM scout.silver_master_stores"
PH = timezone(timedelta(hours=8))  # the stores' local time (Scout reads it per store)


def landed_topic(prefix: str) -> str:
    return f"{prefix}quix.landed"


def silver_topic(prefix: str) -> str:
    return f"{prefix}quix.silver"


# --- pure pieces ----------------------------------------------------------------------------


def _centavos(value: Any) -> int | None:
    """A positive money amount (JSON number or decimal string) in centavos, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0:
        return None
    return int((amount * 100).to_integral_value())


def _amount(value: dict[str, Any]) -> int | None:
    """v1: ``total_amount``; v2: ``gross_amount`` less ``discount_amount``, in centavos."""
    if value["schema"] == "pos.transaction/1":
        return _centavos(value.get("total_amount"))
    gross = _centavos(value.get("gross_amount"))
    discount = value.get("discount_amount", "0")
    off = 0 if discount in ("0", "0.00", 0) else _centavos(discount)
    return None if gross is None or off is None else gross - off


def _item_ok(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
        return False
    qty = item.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        return False
    return _centavos(item.get("unit_price")) is not None


def validate(value: Any, stores: frozenset[str], now: datetime) -> dict[str, Any] | None:
    """The silver row of a POS transaction that passes the basic checks, else None."""
    if not isinstance(value, dict) or value.get("schema") not in SCHEMAS:
        return None
    event_id, store_id, occurred = (
        value.get("event_id"),
        value.get("store_id"),
        value.get("occurred_at"),
    )
    items = value.get("items")
    if not (isinstance(event_id, str) and isinstance(store_id, str) and isinstance(occurred, str)):
        return None
    if store_id not in stores or not isinstance(items, list) or not items:
        return None
    try:
        at = datetime.fromisoformat(occurred)
    except ValueError:
        return None
    if at.tzinfo is None or at > now + FUTURE_SKEW:
        return None
    amount = _amount(value)
    if amount is None or amount <= 0 or not all(_item_ok(item) for item in items):
        return None
    customer = value.get("customer")
    version = value.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    local = at.astimezone(PH)
    return {
        "event_id": event_id,
        "store_id": store_id,
        "occurred_at": occurred,
        "date_key": local.date().isoformat(),
        "amount_centavos": amount,
        "payment_method": value.get("payment_method"),
        "customer_id": customer.get("id") if isinstance(customer, dict) else None,
        "items": items,
        "version": version,
    }


def expected_rows(values: list[bytes], stores: frozenset[str], now: datetime) -> int:
    """How many distinct event ids this chain's silver (and so gold) should hold."""
    seen: set[str] = set()
    for raw in values:
        try:
            row = validate(json.loads(raw), stores, now)
        except ValueError:
            continue
        if row is not None:
            seen.add(row["event_id"])
    return len(seen)


def _connection(dsn: str) -> dict[str, Any]:
    url = urlsplit(dsn)
    return {"host": url.hostname or "127.0.0.1", "port": url.port or 5432,
            "dbname": url.path.lstrip("/"), "user": unquote(url.username or ""),
            "password": unquote(url.password or "")}  # fmt: skip


# --- the three processes (quixstreams imported here: it lives in its own virtualenv) -------


def _prepare(dsn: str, stage: str) -> frozenset[str]:
    """Create this stage's table; silver: the known stores."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(LOCK_SQL)  # the three stages start at once: one DDL at a time
            cur.execute(TABLES_SQL[stage])
            if stage != "silver":
                return frozenset()
            cur.execute(STORES_SQL)
            return frozenset(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def run(stage: str, args: argparse.Namespace) -> None:
    from quixstreams import Application, message_context
    from quixstreams.models import TopicConfig
    from quixstreams.sinks.community.postgresql import PostgreSQLSink

    stores = _prepare(args.dsn, stage)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"{args.prefix}quix-{stage}",
        auto_offset_reset="earliest",
        state_dir=Path(args.state_dir) / stage,
        loglevel="WARNING",
    )
    config = TopicConfig(num_partitions=args.partitions, replication_factor=1)
    landed = app.topic(landed_topic(args.prefix), config=config)
    silver = app.topic(silver_topic(args.prefix), config=config)

    def sink(table: str, keys: tuple[str, ...], upsert: bool) -> Any:
        return PostgreSQLSink(**_connection(args.dsn), table_name=table, schema_name="quix",
                              schema_auto_update=False, primary_key_columns=keys,
                              upsert_on_primary_key=upsert, on_conflict_do_nothing=not upsert,
                              include_metadata=False)  # fmt: skip

    if stage == "bronze":
        sdf = app.dataframe(app.topic(f"{args.prefix}pos.transactions", value_deserializer="bytes"))

        def bronze_row(value: bytes, key: Any, timestamp: int, headers: Any) -> dict[str, Any]:
            ctx = message_context()
            return {"topic": ctx.topic, "kafka_partition": ctx.partition,
                    "kafka_offset": ctx.offset, "kafka_ts": timestamp,
                    "raw": value.decode(errors="replace").replace("\x00", "\ufffd")}  # fmt: skip

        def parse(value: bytes) -> Any:
            if len(value) > MAX_FORWARD_BYTES:  # stored above, too large to produce
                return None
            try:
                return json.loads(value)
            except ValueError:
                return None

        sdf.apply(bronze_row, metadata=True).sink(
            sink("bronze", ("topic", "kafka_partition", "kafka_offset"), False)
        )
        sdf.apply(parse).filter(lambda v: isinstance(v, dict)).to_topic(landed)
    elif stage == "silver":
        sdf = app.dataframe(landed)

        def first_seen(row: dict[str, Any] | None, state: Any) -> bool:
            if row is None or state.get(row["event_id"]) is not None:
                return False
            state.set(row["event_id"], row["version"])
            return True

        sdf = sdf.apply(lambda v: validate(v, stores, datetime.now(UTC)))
        sdf = sdf.filter(first_seen, stateful=True)
        sdf.to_topic(silver)
        sdf.sink(sink("silver", ("event_id",), True))
    else:
        sdf = app.dataframe(silver)

        def daily(row: dict[str, Any], state: Any) -> dict[str, Any]:
            count, revenue = state.get(row["date_key"], (0, 0))
            count, revenue = count + 1, revenue + row["amount_centavos"]
            state.set(row["date_key"], (count, revenue))
            return {"store_id": row["store_id"], "date_key": row["date_key"],
                    "transaction_count": count, "revenue_centavos": revenue}  # fmt: skip

        sdf.apply(daily, stateful=True).sink(sink("gold", ("store_id", "date_key"), True))
    app.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("bronze", "silver", "gold"))
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--state-dir", default=".quix-state")
    args = parser.parse_args()
    run(args.stage, args)


if __name__ == "__main__":
    main()
