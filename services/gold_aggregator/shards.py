"""Which gold replica does what: stores hashed to shards, shards owned through Kafka.

Every change carries its store's shard, ``scout.gold_shard(store_id)`` (0 … ``SHARDS``-1,
a generated column of the capture table). The gold replicas form one Kafka consumer group
on the ``internal.gold-shards`` topic, created with one partition per shard; the group
coordinator assigns its partitions, and a replica owns the shards ``s`` with
``s % partitions`` among its partitions (the identity at 64 partitions; fewer partitions,
e.g. a topic created by hand, still cover every shard). No message is ever
written to that topic: Kafka does the membership, failure detection (session timeout) and
rebalancing, PostgreSQL carries the data. A replica that dies loses its partitions at the
next rebalance; whoever gets them loads the groups of those shards from silver (their
revisions say the state held elsewhere is not theirs).

The replica limit is the topic's partition count, ``SHARDS`` = 64; a replica beyond it owns
nothing. (One partition per shard matters: Faust's assignor gives each member at most
ceil(partitions / members), so 4 partitions over 3 members can leave one with none.)
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common.kafka import GOLD_SHARDS

SHARDS = GOLD_SHARDS  # fixed in scout.gold_shard (schemas/sql/0070_gold_one_channel.sql)


def owned_shards(partitions: Iterable[int], partition_count: int) -> frozenset[int]:
    """The shards the assigned ``partitions`` of a ``partition_count``-partition topic own."""
    mine = set(partitions)
    if partition_count <= 0:
        return frozenset()
    return frozenset(s for s in range(SHARDS) if s % partition_count in mine)
