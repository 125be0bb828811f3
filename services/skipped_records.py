"""Finds records faust skipped in a partition and reads them back from Kafka.

faust-streaming can leave a record of a partition undelivered around a restart or a
rebalance (services/faust_fixes.py has the faults we understood; the notifier crash test
still showed about one lost notification in five runs after those). An agent that takes a
partition's events in offset order sees such a loss as a hole between two consecutive
offsets. ``SkippedRecords.before(event)`` returns the records of that hole, read straight
from the broker, so the agent processes them *before* the event after the hole, whose ack
would otherwise commit past them. The topics read this way have no holes of their own
(cleanup.policy delete, no transactions), so a hole always means a skipped record.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from services import metrics
from services.logs import get_logger
from services.settings import Settings

log = get_logger("skipped_records")
READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RecoveredMessage:
    """Where a recovered record came from (what dead letters and logs need)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class RecoveredEvent:
    """A record read back from Kafka; ``context`` is the faust event after the hole (same
    partition), under which table writes for the recovered record are made."""

    key: bytes | None
    value: bytes | None
    message: RecoveredMessage
    context: Any


class SkippedRecords:
    """Per-partition offset tracking for one agent; see the module docstring."""

    def __init__(self, settings: Settings, stage: str, group_id: str) -> None:
        self.settings = settings
        self.stage = stage
        self.group_id = group_id
        self.last: dict[tuple[str, int], int] = {}

    def forget(self) -> None:
        """After a rebalance another worker may have taken records in between: start over."""
        self.last.clear()

    async def before(self, event: Any) -> list[RecoveredEvent]:
        """Records skipped between the previous event of this partition and ``event``."""
        msg = event.message
        key = (msg.topic, msg.partition)
        previous = self.last.get(key)
        if previous is None:
            # The first event of a partition must be the group's committed offset (where
            # faust seeks after an assignment); a record there can be skipped too.
            committed = await committed_offset(self.settings, self.group_id, msg.topic, msg.partition)
            previous = committed - 1 if committed is not None else None
        self.last[key] = msg.offset  # also after a seek back: holes count from here
        if previous is None or msg.offset <= previous + 1:
            return []
        records = await read_range(self.settings, msg.topic, msg.partition, previous + 1, msg.offset)
        log.warning("skipped_records_recovered", stage=self.stage, topic=msg.topic, partition=msg.partition,
                    first=previous + 1, last=msg.offset - 1, count=len(records))
        metrics.SKIPPED_RECORDS_RECOVERED.labels(self.stage).inc(len(records))
        return [RecoveredEvent(r.key, r.value, RecoveredMessage(r.topic, r.partition, r.offset), event)
                for r in records]


async def committed_offset(settings: Settings, group_id: str, topic: str, partition: int) -> int | None:
    """The offset ``group_id`` has committed for one partition (None: nothing yet).

    Asked through a consumer that never subscribes, so it does not join the group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group_id,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, partition))
        return offset if offset is not None and offset >= 0 else None
    finally:
        await consumer.stop()


async def read_range(settings: Settings, topic: str, partition: int, start: int, end: int) -> list[Any]:
    """Records ``start <= offset < end`` of one partition, read without a consumer group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[Any] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline and await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            out += [r for r in batch.get(tp, []) if start <= r.offset < end]
        return out
    finally:
        await consumer.stop()
