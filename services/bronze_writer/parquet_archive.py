"""Bronze partitions as Parquet files on any fsspec filesystem, verified, and back again.

The file of a partition holds every column of ``bronze_transactions_raw`` (``raw_data`` as
the JSON text PostgreSQL renders, the registry payload as binary, times as UTC microseconds),
written with pyarrow through fsspec: ``file://`` here, ``s3://`` with ``s3fs`` installed (and
its usual credentials), or any other fsspec URL.

A partition and a file agree when they have the same :class:`Checksum`: the row count and
the sum of a 60-bit slice of each row's MD5 over its identity and payload (id, raw JSON,
topic, partition, offset, record index). PostgreSQL computes it in SQL on the partition;
:func:`file_checksum` recomputes it from the file as pyarrow reads it back. Order does not
matter, so both sides stream.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

COLUMNS = (
    "id", "raw_data", "source_system", "schema_name", "ingested_at", "batch_id", "record_index",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "registry_schema_id",
    "registry_payload",
)  # fmt: skip
_UTC_US = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("raw_data", pa.string()), ("source_system", pa.string()),
        ("schema_name", pa.string()), ("ingested_at", _UTC_US), ("batch_id", pa.string()),
        ("record_index", pa.int32()), ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()),
        ("kafka_timestamp", _UTC_US), ("registry_schema_id", pa.int32()),
        ("registry_payload", pa.binary()),
    ]
)  # fmt: skip
CHUNK_ROWS = 10_000

# The row digest, spelled the same way in SQL and in Python (row_digest).
_DIGEST_SQL = (
    "('x' || substr(md5(concat_ws('|', id::text, raw_data::text, kafka_topic, "
    "kafka_partition::text, kafka_offset::text, record_index::text)), 1, 15))::bit(60)::bigint"
)


def select_rows(table: str) -> str:
    """The partition's rows in archive form (``table`` is a server-quoted identifier)."""
    return (
        "SELECT id::text AS id, raw_data::text AS raw_data, source_system, schema_name, "
        "ingested_at, batch_id, record_index, kafka_topic, kafka_partition, kafka_offset, "
        f"kafka_timestamp, registry_schema_id, registry_payload FROM {table}"
    )


def checksum_sql(table: str) -> str:
    return f"SELECT count(*) AS n, coalesce(sum({_DIGEST_SQL}), 0) AS s FROM {table}"


@dataclass(frozen=True)
class Checksum:
    rows: int
    digest_sum: int

    def __str__(self) -> str:
        return f"{self.rows} rows, checksum {self.digest_sum:x}"


def row_digest(id_: str, raw: str, topic: str, partition: int, offset: int, index: int) -> int:
    text = "|".join((id_, raw, topic, str(partition), str(offset), str(index)))
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)


async def database_checksum(conn: asyncpg.Connection, table: str) -> Checksum:
    row = await conn.fetchrow(checksum_sql(table))
    return Checksum(int(row["n"]), int(row["s"]))


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of an archive folder URL."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, str(path).rstrip("/")


async def write_partition(
    conn: asyncpg.Connection,
    table: str,
    fs: Any,
    path: str,
    progress: Callable[[int], None] = lambda _n: None,
) -> int:
    """Stream the partition into a Parquet file at ``path``; returns the rows written. Must
    run inside the caller's snapshot transaction (a cursor needs one)."""
    rows = 0
    with fs.open(path, "wb") as out, pq.ParquetWriter(out, SCHEMA, compression="zstd") as w:
        chunk: list[asyncpg.Record] = []
        async for record in conn.cursor(select_rows(table), prefetch=CHUNK_ROWS):
            chunk.append(record)
            if len(chunk) >= CHUNK_ROWS:
                w.write_table(_to_table(chunk))
                rows += len(chunk)
                progress(len(chunk))
                chunk = []
        if chunk or rows == 0:
            w.write_table(_to_table(chunk))
            rows += len(chunk)
            progress(len(chunk))
    return rows


def _to_table(records: list[asyncpg.Record]) -> pa.Table:
    columns = {name: [r[name] for r in records] for name in COLUMNS}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def read_batches(fs: Any, path: str) -> Iterator[pa.RecordBatch]:
    with fs.open(path, "rb") as f:
        yield from pq.ParquetFile(f).iter_batches(batch_size=CHUNK_ROWS)


def file_checksum(fs: Any, path: str) -> Checksum:
    """Row count and checksum of an archive file, from what pyarrow reads back."""
    rows, total = 0, 0
    for batch in read_batches(fs, path):
        cols = [batch.column(name).to_pylist() for name in
                ("id", "raw_data", "kafka_topic", "kafka_partition", "kafka_offset",
                 "record_index")]  # fmt: skip
        for values in zip(*cols, strict=True):
            total += row_digest(*values)
        rows += batch.num_rows
    return Checksum(rows, total)


def copy_records(batch: pa.RecordBatch) -> list[tuple[Any, ...]]:
    """A batch of an archive file as records for COPY into the bronze table."""
    cols = [batch.column(name).to_pylist() for name in COLUMNS]
    return list(zip(*cols, strict=True))
