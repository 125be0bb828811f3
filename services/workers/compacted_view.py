"""In-memory views of compacted topics, one partition at a time, always caught up on demand.

The notifier owns some partitions of closure.notifications (its consumer group decides)
and needs, for exactly those, the latest record per key of two compacted topics keyed
the same way: respondent.contacts and closure.notification_log. A ``CompactedView``
reads a partition from its beginning the first time it is asked for it, and on every
``catch_up`` reads on to the partition's end offset *as of that call*: what it returns
is never older than the moment of the call (a consent withdrawn or an erasure written
before a send is seen by that send).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.settings import Settings

# Called for each record read: returns the value to keep for the key (None drops the key).
# ``new`` is False for records an earlier run already checked (see ``checked_by``).
OnRecord = Callable[[int, Any, bool], Awaitable[bytes | None]]


async def keep_value(partition: int, record: Any, new: bool) -> bytes | None:  # noqa: ARG001
    """The default: the latest value per key, a tombstone drops the key."""
    return record.value


class _PartitionReader:
    """One partition: its own consumer (no group), its records so far by key."""

    def __init__(self, settings: Settings, topic: str, partition: int, checked_by: str | None) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from services.adapters.kafka_io import kafka_security

        self.tp = TopicPartition(topic, partition)
        self.data: dict[bytes, bytes] = {}
        # With a group id the reader remembers (as a committed offset) how far records were
        # checked, so a bad record is reported once, not on every reload.
        self.checked_by = checked_by
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=checked_by,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         **kafka_security(settings))
        self.checked_to = 0

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign([self.tp])
        await self.consumer.seek_to_beginning(self.tp)
        if self.checked_by is not None:
            self.checked_to = await self.consumer.committed(self.tp) or 0

    async def catch_up(self, on_record: OnRecord) -> None:
        end = (await self.consumer.end_offsets([self.tp]))[self.tp]
        read_any = False
        while await self.consumer.position(self.tp) < end:
            batch = await self.consumer.getmany(self.tp, timeout_ms=1000)
            for record in batch.get(self.tp, []):
                read_any = True
                if record.key is None:
                    continue
                value = await on_record(self.tp.partition, record, record.offset >= self.checked_to)
                if value is None:
                    self.data.pop(record.key, None)
                else:
                    self.data[record.key] = value
        if read_any and self.checked_by is not None and end > self.checked_to:
            await self.consumer.commit({self.tp: end})
            self.checked_to = end

    async def stop(self) -> None:
        await self.consumer.stop()


class CompactedView:
    """The latest value per key of some partitions of one compacted topic."""

    def __init__(self, settings: Settings, topic: str, on_record: OnRecord = keep_value,
                 checked_by: str | None = None) -> None:
        self.settings = settings
        self.topic = topic
        self.on_record = on_record
        self.checked_by = checked_by
        self.readers: dict[int, _PartitionReader] = {}

    async def catch_up(self, partition: int) -> dict[bytes, bytes]:
        """Read ``partition`` up to its current end; returns its key -> value map."""
        reader = self.readers.get(partition)
        if reader is None:
            reader = _PartitionReader(self.settings, self.topic, partition, self.checked_by)
            try:
                await reader.start()
            except BaseException:
                await reader.stop()
                raise
            self.readers[partition] = reader
        await reader.catch_up(self.on_record)
        return reader.data

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value read so far (call ``catch_up`` first for an up-to-date one)."""
        reader = self.readers.get(partition)
        return None if reader is None else reader.data.get(key)

    def set_local(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Record a write this process made itself (already acknowledged by Kafka)."""
        data = self.readers[partition].data
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value

    async def drop(self, partition: int) -> None:
        """Forget a partition (another worker owns it now); it is read afresh if needed again."""
        reader = self.readers.pop(partition, None)
        if reader is not None:
            await reader.stop()

    async def stop(self) -> None:
        for partition in list(self.readers):
            await self.drop(partition)
