"""Dead letters counted and logged the same way by every stage."""
from __future__ import annotations

from pipelines.vault import ContactVault
from services import metrics
from services.adapters.kafka_io import dead_letter, dumps
from services.logs import get_logger

log = get_logger("worker")


def count_dead_letter(stage: str, reason: str, error_type: str, original: bytes | None, *, vault: ContactVault,
                      feedback_id: str | None = None, topic: str | None = None, partition: int | None = None,
                      offset: int | None = None) -> bytes:
    """Count and log one dead letter; returns the feedback.dlq record (original sealed) to send."""
    record = dead_letter(stage, reason, error_type, original, vault=vault, feedback_id=feedback_id, topic=topic,
                         partition=partition, offset=offset)
    metrics.DEAD_LETTERS.labels(stage, record["error_type"]).inc()
    metrics.EVENTS_PROCESSED.labels(stage, "dead_lettered").inc()
    # The record's clear fields only: the reason as given may quote the resident's text.
    log.warning("dead_lettered", stage=stage, feedback_id=record["feedback_id"], error_type=record["error_type"],
                reason=record["reason"][:300])
    return dumps(record)
