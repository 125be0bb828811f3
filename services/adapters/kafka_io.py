"""Kafka serialisation, producers and the dead-letter record, shared by services."""
from __future__ import annotations

import json
from typing import Any

from pipelines.clock import utc_now
from pipelines.dead_letters import seal
from pipelines.vault import ContactVault
from schemas.validate import validate_event
from services.settings import Settings


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def dead_letter(stage: str, reason: str, error_type: str, original: bytes | None, *, vault: ContactVault,
                feedback_id: str | None = None, topic: str | None = None,
                partition: int | None = None, offset: int | None = None) -> dict[str, Any]:
    """A valid feedback.dlq event: where it failed and why in clear, the original bytes sealed
    with the contact key (pipelines/dead_letters.py) for a redrive to open."""
    record = seal(vault, stage=stage, reason=reason, error_type=error_type, original=original,
                  failed_at=utc_now(), feedback_id=feedback_id, topic=topic, partition=partition, offset=offset)
    validate_event("feedback.dlq", record)
    return record


def aiokafka_producer(settings: Settings):
    """An acks=all aiokafka producer (caller starts and stops it).

    Not idempotent on purpose: after a broker restart aiokafka can get
    OutOfOrderSequenceNumber for an idempotent producer, which ends its sender for good
    (tests/e2e/test_faults.py found it). Every consumer here is idempotent (document
    ``_id``, notification ids, keyed compacted state), so a duplicate from a retry is
    harmless, and aiokafka sends one batch per partition at a time, so order holds.
    """
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        # A batch that cannot reach its leader fails after this long instead of 40 s: while
        # Kafka is down the worker then backs off (services/workers/runtime.py) rather than
        # keeping aiokafka busy retrying metadata for it.
        request_timeout_ms=15_000,
        value_serializer=None,
        key_serializer=None,
    )


def admin_client(settings: Settings):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="feedback-admin")
