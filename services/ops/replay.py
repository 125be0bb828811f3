"""Replaying topics and redriving dead letters.

Every side effect downstream is idempotent (document _id = feedback_id, notification
ids derived from action and respondent, the notifier's sent table), so putting
records on a topic again is safe: that is what makes replay and redrive the
standard repair tools (see deploy/RUNBOOK.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tqdm import tqdm

from pipelines.clock import parse_ts
from pipelines.dead_letters import unseal
from pipelines.vault import ContactVault
from services.adapters.contacts_store import contact_vault
from services.adapters.kafka_io import kafka_security
from services.settings import Settings
from services.topics import ALL_TOPICS, FEEDBACK_DLQ, FEEDBACK_ENRICHED, FEEDBACK_RECEIVED

# Where a dead letter of each stage goes back in: the stage's input topic.
STAGE_INPUT = {"enricher": FEEDBACK_RECEIVED.name, "indexer": FEEDBACK_ENRICHED.name}
REDRIVE_GROUP = "feedback-dlq-redrive"
DLQ_VERSIONS = (1, 2)  # 1: bytes in clear (before sealing), 2: sealed (pipelines/dead_letters.py)


@dataclass
class ReplayReport:
    copied: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _topic(settings: Settings, base: str) -> str:
    if base not in {t.name for t in ALL_TOPICS}:
        raise ValueError(f"topic: unknown topic {base!r}; one of {', '.join(t.name for t in ALL_TOPICS)}")
    return settings.topic(base)


def replay(settings: Settings, base: str, since: datetime | None = None, until: datetime | None = None,
           dry_run: bool = False) -> ReplayReport:
    """Produce the records of ``base`` written in [since, until) onto it again, keys unchanged."""
    topic = _topic(settings, base)
    report = ReplayReport()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=5000, **kafka_security(settings))
    producer = None if dry_run else KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                                  **kafka_security(settings))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)  # stop at what existed when the replay began
        if since:
            starts = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
            for tp in parts:
                consumer.seek(tp, starts[tp].offset if starts.get(tp) else ends[tp])
        else:
            consumer.seek_to_beginning(*parts)
        limit_ms = int(until.timestamp() * 1000) if until else None
        remaining = {tp for tp in parts if consumer.position(tp) < ends[tp]}
        with tqdm(desc=f"replay {base}", unit="rec") as bar:
            for msg in consumer:
                tp = TopicPartition(msg.topic, msg.partition)
                if msg.offset >= ends[tp]:
                    remaining.discard(tp)
                elif msg.value is None:
                    report.skip("tombstone")
                elif limit_ms is not None and msg.timestamp >= limit_ms:
                    report.skip("after --until")
                else:
                    if producer:
                        producer.send(topic, key=msg.key, value=msg.value)
                    report.copied += 1
                    bar.update()
                if msg.offset + 1 >= ends[tp]:
                    remaining.discard(tp)
                if not remaining:
                    break
        if producer:
            producer.flush()
    finally:
        consumer.close()
        if producer:
            producer.close()
    return report


def redrive(settings: Settings, stage: str | None = None, dry_run: bool = False) -> ReplayReport:
    """Put dead letters back on their stage's input topic, once each.

    Progress is kept per stage as the offsets of the consumer group
    ``feedback-dlq-redrive-<stage>``, so a dead letter is redriven at most once and a
    redrive of one stage leaves the others waiting. Rejected HTTP submissions (stage
    ``ingest``) have no topic to go back to: the client got a 4xx.

    The original bytes are sealed with the contact key (pipelines/dead_letters.py) and
    opened here with any of ``contact_keys``. A dead letter none of them opens stops the
    redrive before anything is committed (ValueError naming the key id): retiring a key
    too early must not quietly drop dead letters.
    """
    stages = [stage] if stage else sorted(STAGE_INPUT)
    unknown = [s for s in stages if s not in STAGE_INPUT]
    if unknown:
        raise ValueError(f"stage: cannot redrive {unknown[0]!r}; one of {', '.join(sorted(STAGE_INPUT))}")
    report = ReplayReport()
    for name in stages:
        _redrive_stage(settings, name, dry_run, report)
    return report


def _redrive_stage(settings: Settings, stage: str, dry_run: bool, report: ReplayReport) -> None:
    vault = contact_vault(settings)
    consumer = KafkaConsumer(settings.topic(FEEDBACK_DLQ.name), bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"{settings.topic_prefix}{REDRIVE_GROUP}-{stage}", enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000, **kafka_security(settings))
    producer = None if dry_run else KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                                  **kafka_security(settings))
    topic = settings.topic(FEEDBACK_DLQ.name)
    # Only what is on the DLQ now: a redriven record that fails again comes back while this
    # runs, and following it would redrive it again and again.
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
    done: set[TopicPartition] = set()
    try:
        for msg in tqdm(consumer, desc=f"redrive {stage}", unit="rec"):
            tp = TopicPartition(msg.topic, msg.partition)
            if msg.offset >= ends.get(tp, 0):
                consumer.seek(tp, ends.get(tp, 0))  # the commit below stops at the end taken above
                done.add(tp)
            else:
                _redrive_one(settings, stage, vault, producer, msg, report)
                if msg.offset + 1 >= ends[tp]:
                    done.add(tp)
            if done >= set(ends):
                break
        if producer:
            producer.flush()
            consumer.commit()  # only after every redriven record is on its topic
    finally:
        consumer.close()
        if producer:
            producer.close()


def _redrive_one(settings: Settings, stage: str, vault: ContactVault, producer: KafkaProducer | None,
                 msg: Any, report: ReplayReport) -> None:
    """Open one dead letter of ``stage`` and put its original bytes back on the stage's input."""
    try:
        record = json.loads(msg.value)
    except (TypeError, ValueError):
        report.skip("unreadable dead letter")
        return
    if not isinstance(record, dict) or record.get("stage") != stage:
        return
    if record.get("schema_version") not in DLQ_VERSIONS:
        report.skip("unreadable dead letter")
        return
    try:
        opened = unseal(vault, record)
    except ValueError as exc:
        raise ValueError(f"contact_keys: the dead letter at offset {msg.offset} was sealed with key id "
                         f"{record.get('key_id')!r}, which no configured key opens ({exc}); add that "
                         "key to FEEDBACK_CONTACT_KEYS (after the newest) and redrive again") from exc
    key = opened.feedback_id or _feedback_id(opened.original)
    if not key:  # keyed topics (compacted ones) cannot take it; it stays in the DLQ
        report.skip("no feedback_id to key it by")
        return
    if producer:
        producer.send(settings.topic(STAGE_INPUT[stage]), key=key.encode(), value=opened.original)
    report.copied += 1


def _feedback_id(original: bytes) -> str | None:
    try:
        value = json.loads(original).get("feedback_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def parse_when(value: str | None) -> datetime | None:
    """ISO-8601 date or time, UTC when no zone is given."""
    if not value:
        return None
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 date or time: {value!r}") from exc
