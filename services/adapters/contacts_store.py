"""The compacted respondent.contacts topic as a store: read one respondent, read all,
write back (consent withdrawal, key rotation, erasure tombstones).

Reads go straight to the topic with kafka-python (no consumer group): assign the
partitions, read from the beginning up to the end offsets taken at the start. One
respondent's record lives in the partition its key hashes to (murmur2, the
partitioner of every producer here), so reading one record scans one partition:
on a compacted topic that is about one record per respondent of that partition.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipelines.contacts import Raw, clobbered, latest_by_key, needs_rotation
from pipelines.vault import ContactVault
from schemas.validate import validate_event
from services.adapters.kafka_io import kafka_security
from services.settings import Settings
from services.topics import RESPONDENT_CONTACTS


def contact_vault(settings: Settings) -> ContactVault:
    """The vault of the configured contact keys (newest first), built once per key list."""
    return _vault(tuple(k.get_secret_value() for k in settings.contact_keys))


@lru_cache(maxsize=4)
def _vault(keys: tuple[str, ...]) -> ContactVault:
    return ContactVault(list(keys))


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the default partitioner (murmur2, as in Java, aiokafka and kafka-python) picks."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Record:
    key: bytes | None
    value: Raw
    partition: int
    offset: int


def _consumer(settings: Settings) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", client_id="feedback-contacts-store",
                         **kafka_security(settings))


def partition_count(settings: Settings, topic: str) -> int:
    consumer = _consumer(settings)
    try:
        deadline = time.monotonic() + 30
        while not (parts := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} not found")
            time.sleep(0.2)
        return len(parts)
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, partitions: list[int] | None = None,
               start: dict[int, int] | None = None, timeout_s: float = 120.0
               ) -> tuple[list[Record], dict[int, int]]:
    """Every record of ``partitions`` (all if None) from ``start`` (the beginning) up to the
    end offsets at call time; returns the records in offset order and those end offsets."""
    from kafka import TopicPartition

    consumer = _consumer(settings)
    try:
        if partitions is None:
            deadline = time.monotonic() + 30
            while not (found := consumer.partitions_for_topic(topic)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {topic} not found")
                time.sleep(0.2)
            partitions = sorted(found)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        for tp in tps:
            if start and tp.partition in start:
                consumer.seek(tp, start[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        pending = {tp for tp in tps if consumer.position(tp) < ends[tp.partition]}
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach the end offsets in {timeout_s:.0f} s")
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    if m.offset < ends[tp.partition]:
                        records.append(Record(m.key, m.value, tp.partition, m.offset))
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp.partition]}
        records.sort(key=lambda r: (r.partition, r.offset))
        return records, ends
    finally:
        consumer.close()


def read_contact(settings: Settings, ref: str) -> dict[str, Any] | None:
    """The current contact record of one respondent (None if none, or erased)."""
    topic = settings.topic(RESPONDENT_CONTACTS.name)
    key = ref.encode()
    part = partition_for(key, partition_count(settings, topic))
    records, _ = read_topic(settings, topic, [part])
    raw = latest_by_key((r.key, r.value) for r in records if r.key == key).get(key)
    return None if raw is None else json.loads(raw)


def all_contacts(settings: Settings) -> tuple[dict[bytes, Raw], dict[int, int]]:
    """Latest value per respondent (None = tombstone) and the end offsets read up to."""
    records, ends = read_topic(settings, settings.topic(RESPONDENT_CONTACTS.name))
    return latest_by_key((r.key, r.value) for r in records if r.key is not None), ends


def live_contacts(settings: Settings) -> Iterator[tuple[str, dict[str, Any]]]:
    """(ref, record) of every respondent with a live contact record."""
    latest, _ = all_contacts(settings)
    for key, raw in latest.items():
        if raw is not None:
            yield key.decode(), json.loads(raw)


def producer(settings: Settings) -> Any:
    """A kafka-python producer that waits for every replica (acks=all)."""
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5, retries=10,
                         client_id="feedback-contacts-store", **kafka_security(settings))


@dataclass
class RotationReport:
    live: int = 0
    rotated: int = 0
    already_current: int = 0
    erased: int = 0
    rewritten_after_race: int = 0
    key_ids_before: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def rotate_keys(settings: Settings, dry_run: bool = False, max_passes: int = 5) -> RotationReport:
    """Re-encrypt every live contact record under the newest contact key and write it back.

    Writes race with ingest and opt-outs: after writing, the records appended since the
    snapshot are read back, and any newer value the rotation's stale copy overwrote is
    written again (rotated), until nothing was overwritten.
    """
    vault = contact_vault(settings)
    topic = settings.topic(RESPONDENT_CONTACTS.name)
    latest, ends = all_contacts(settings)
    report = RotationReport()
    todo: dict[bytes, Raw] = {}
    for key, raw in latest.items():
        if raw is None:
            report.erased += 1
            continue
        report.live += 1
        kid = json.loads(raw).get("key_id") or "(none)"
        report.key_ids_before[kid] = report.key_ids_before.get(kid, 0) + 1
        if needs_rotation(raw, vault.key_id):
            todo[key] = raw
        else:
            report.already_current += 1
    if dry_run:
        report.rotated = len(todo)
        return report
    prod = producer(settings)
    try:
        for attempt in range(max_passes):
            written: dict[bytes, bytes] = {}
            for key, raw in todo.items():
                if raw is None:  # an erasure raced the rotation: its tombstone goes back on top
                    prod.send(topic, key=key, value=None)
                    continue
                written[key] = _rotated(vault, raw) if needs_rotation(raw, vault.key_id) else raw
                prod.send(topic, key=key, value=written[key])
            prod.flush(timeout=60)
            if attempt == 0:
                report.rotated = len(written)
            else:
                report.rewritten_after_race += len(todo)
            after, ends = read_topic(settings, topic, start=ends)
            todo = clobbered(written, ((r.key, r.value) for r in after))
            if not todo:
                break
        return report
    finally:
        prod.close()


def _rotated(vault: ContactVault, raw: bytes) -> bytes:
    record = json.loads(raw)
    record["contact_ciphertext"] = vault.rotate(record["contact_ciphertext"])
    record["key_id"] = vault.key_id
    validate_event("respondent.contacts", record)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
