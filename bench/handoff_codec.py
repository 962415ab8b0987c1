"""CPU of compressing and decompressing bronze's hand-off messages with each Kafka codec.

The messages are bronze-landed messages of the simulator's traffic (no faults), encoded as
bronze encodes them; each codec is aiokafka's own function (lz4 at aiokafka's level 9, the
one its producer uses). The least CPU of ``--repeat`` repetitions, per record, and the
compression ratio. Not a test; needs nothing running.

    .venv/bin/python -m bench.handoff_codec [--records 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import codec

from bench.common import generator
from services.bronze_writer.transform import KafkaCoordinates, Landing, land
from services.common.handoff import encode_landed

CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "lz4 (aiokafka: level 9)": (codec.lz4_encode, codec.lz4_decode),
    "lz4 level 1": (lambda p: codec.lz4_encode(p, level=1), codec.lz4_decode),
    "zstd (level 3)": (codec.zstd_encode, codec.zstd_decode),
    "snappy": (codec.snappy_encode, codec.snappy_decode),
    "gzip": (codec.gzip_encode, codec.gzip_decode),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    now = datetime.now(UTC)
    landing = Landing()
    for i, record in enumerate(generator(7, 5000.0, 0.0).live(args.records)):
        kafka = KafkaCoordinates(record.topic, 0, i, now)
        landing.extend(land(record.value, record.topic, kafka, 1_000_000, None))
    messages = list(encode_landed(row.landed() for row in landing.rows))
    n, size = len(landing.rows), sum(map(len, messages))
    print(f"{n:,} hand-off records in {len(messages)} messages, {size / n:.0f} bytes each\n")
    print("| codec | compress µs/record | decompress µs/record | ratio |")
    print("|---|---|---|---|")
    for name, (encode, decode) in CODECS.items():
        best_encode = best_decode = float("inf")
        for _ in range(args.repeat):
            started = time.process_time()
            packed = [encode(m) for m in messages]
            encoded = time.process_time()
            for p in packed:
                decode(p)
            best_encode = min(best_encode, encoded - started)
            best_decode = min(best_decode, time.process_time() - encoded)
        ratio = size / sum(map(len, packed))
        print(f"| {name} | {1e6 * best_encode / n:.2f} | {1e6 * best_decode / n:.2f} "
              f"| {ratio:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
