"""Which gold replica does what: stores hashed to shards, shards owned through Kafka.

Every change carries its store's shard, ``scout.gold_shard(store_id)`` (0 … ``SHARDS``-1,
computed by the capture triggers). The gold replicas form one Kafka consumer group on the
``internal.gold-shards`` topic; the group coordinator assigns its partitions, and a replica
owns the shards ``s`` with ``s % partitions`` among its partitions. No message is ever
written to that topic: Kafka does the membership, failure detection (session timeout) and
rebalancing, PostgreSQL carries the data. A replica that dies loses its partitions at the
next rebalance; whoever gets them loads the groups of those shards from silver (their
revisions say the state held elsewhere is not theirs).

The replica limit is the topic's partition count (``SCOUT_TOPIC_PARTITIONS``, at most
``SHARDS``); a replica beyond it owns nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

SHARDS = 64  # fixed in scout.gold_shard (schemas/sql/0070_gold_one_channel.sql)


def owned_shards(partitions: Iterable[int], partition_count: int) -> frozenset[int]:
    """The shards the assigned ``partitions`` of a ``partition_count``-partition topic own."""
    mine = set(partitions)
    if partition_count <= 0:
        return frozenset()
    return frozenset(s for s in range(SHARDS) if s % partition_count in mine)
