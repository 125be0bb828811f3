"""services/workers/compacted_view.py on the real broker: the latest value per key, caught up to the
end offset at each call, tombstones drop keys, and records are reported as new only once
per ``checked_by`` group."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from services.workers.compacted_view import CompactedView
from services.settings import Settings

pytestmark = pytest.mark.integration


def test_view_follows_the_partition_and_reports_new_records_once(stack) -> None:
    topic = f"view-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                      topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")

    def write(records: list[tuple[bytes, bytes | None]], partition: int = 1) -> None:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush(30)

    settings = Settings(kafka_bootstrap=stack.kafka_bootstrap)
    group = f"{topic}-checked"
    seen: list[tuple[int, bytes, bool]] = []

    async def on_record(partition: int, record, new: bool) -> bytes | None:
        seen.append((record.offset, record.value, new))
        return None if record.value == b"bad" else record.value

    async def scenario() -> list[dict[bytes, bytes]]:
        states = []
        view = CompactedView(settings, topic, on_record, checked_by=group)
        try:
            write([(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"bad")])
            write([(b"z", b"other partition")], partition=0)
            states.append(dict(await view.catch_up(1)))
            write([(b"b", None), (b"d", b"1")])
            states.append(dict(await view.catch_up(1)))  # sees what was written since, at once
            await view.drop(1)
            states.append(dict(await view.catch_up(1)))  # read afresh from the beginning
        finally:
            await view.stop()
        return states

    try:
        states = asyncio.run(scenario())
    finally:
        producer.close()
    assert states[0] == {b"a": b"2", b"b": b"1"}
    assert states[1] == states[2] == {b"a": b"2", b"d": b"1"}
    first, reread = seen[:6], seen[6:]
    assert [new for *_, new in first] == [True] * 6
    assert [offset for offset, *_ in reread] == list(range(6)) and not any(new for *_, new in reread)
