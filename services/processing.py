"""What every stage does around its work, faust worker or not: retries that never
acknowledge a failed batch, and dead letters counted and logged the same way."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from services import metrics
from services.kafka_io import dead_letter, dumps
from services.logs import get_logger

log = get_logger("worker")


async def side_effect(work: Awaitable[Any]) -> Any:
    """Finish ``work`` even when the worker is being stopped.

    Faust acknowledges a taken batch when the agent's loop body is left, also by
    cancellation on SIGTERM; letting the side effect complete first keeps
    "acknowledged" meaning "done".
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


async def process_batch(stage: str, handler: Callable[[list[Any]], Awaitable[None]], events: list[Any],
                        attempts: int = 6) -> None:
    """Run ``handler`` on a batch, retrying transient failures, and never ack a failed batch.

    Item-level problems are dead-lettered by the handlers themselves; what reaches
    here is infrastructure (Kafka, Elasticsearch, SMTP down). After the retries the
    process exits without acknowledging, so the batch is redelivered after restart.
    """
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            await side_effect(handler(events))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("batch_failed", stage=stage, attempt=attempt, error=type(exc).__name__, detail=str(exc)[:300],
                        exc_info=True)
            if attempt == attempts:
                log.critical("batch_gave_up_exiting", stage=stage, size=len(events))
                os._exit(70)  # unacknowledged: Kafka redelivers the batch to the next worker
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15)


def count_dead_letter(stage: str, reason: str, error_type: str, original: bytes | None, *,
                      feedback_id: str | None = None, topic: str | None = None, partition: int | None = None,
                      offset: int | None = None) -> bytes:
    """Count and log one dead letter; returns the feedback.dlq record for the caller to send."""
    record = dead_letter(stage, reason, error_type, original, feedback_id=feedback_id, topic=topic,
                         partition=partition, offset=offset)
    metrics.DEAD_LETTERS.labels(stage, error_type).inc()
    metrics.EVENTS_PROCESSED.labels(stage, "dead_lettered").inc()
    log.warning("dead_lettered", stage=stage, feedback_id=feedback_id, error_type=error_type, reason=reason[:300])
    return dumps(record)
