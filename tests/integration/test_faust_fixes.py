"""services/faust_fixes.py on a real broker: after the patch, seek_to_committed puts a
partition that has no committed offset (or offset 0) back where the group would start,
instead of leaving the position wherever an earlier fetch moved it."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from services.faust_fixes import install_seek_to_committed_fix

pytestmark = pytest.mark.integration


def topic_with_records(stack, name: str, counts: dict[int, int]) -> str:
    """A new two-partition topic with ``counts[p]`` records (values ``v0``, ``v1``, ...) in partition p."""
    topic = f"{name}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    for partition, count in counts.items():
        for n in range(count):
            producer.send(topic, key=f"k{n}".encode(), value=f"v{n}".encode(), partition=partition)
    producer.flush(30)
    producer.close()
    return topic


def test_seek_to_committed_rewinds_partitions_without_a_committed_offset(stack) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    topic = topic_with_records(stack, "faust-fix", {0: 5, 1: 5})

    async def scenario() -> dict[int, int]:
        install_seek_to_committed_fix()
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=f"{topic}-group",
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
            consumer.assign([p0, p1])
            await consumer.seek_to_beginning(p0, p1)
            await consumer.commit({p1: OffsetAndMetadata(2, "")})
            # Read everything, as a worker does while it recovers its tables.
            seen = 0
            while seen < 10:
                batch = await consumer.getmany(timeout_ms=5000)
                seen += sum(len(records) for records in batch.values())
            assert await consumer.position(p0) == 5
            committed = await consumer.seek_to_committed(p0, p1)
            assert committed == {p0: None, p1: 2}
            return {0: await consumer.position(p0), 1: await consumer.position(p1)}
        finally:
            await consumer.stop()

    # p0 never committed: back to the beginning (aiokafka alone would leave it at 5).
    # p1 committed at 2: there, as before the patch.
    assert asyncio.run(scenario()) == {0: 0, 1: 2}

