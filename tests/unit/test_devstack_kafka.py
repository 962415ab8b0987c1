"""The local broker's cluster id is one Kafka's storage tool accepts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from services.devstack.kafka import new_cluster_id


def test_a_cluster_id_never_begins_with_a_dash() -> None:
    # 0xF8 encodes as "-" first in URL-safe base64 (a draw of the kind CI hit), then a plain one
    draws: Iterator[uuid.UUID] = iter(
        [uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x10" * 16)]
    )
    cluster_id = new_cluster_id(lambda: next(draws))
    assert cluster_id == "EBAQEBAQEBAQEBAQEBAQEA"
    assert len(cluster_id) == 22


def test_cluster_ids_are_random_and_none_begins_with_a_dash() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)
