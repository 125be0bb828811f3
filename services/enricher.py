"""Enricher: feedback.received -> redact, language, embed, classify -> feedback.enriched.

Urgent items are also copied to feedback.urgent. Any event that cannot be parsed,
validated or enriched goes to feedback.dlq with the stage and reason; the worker
keeps going.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from pipelines.classify import FeedbackClassifier
from pipelines.embedding import make_embedder
from pipelines.enrich import Failure, enrich_batch
from schemas.validate import event_errors
from services import metrics
from services.kafka_io import dumps
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT
from services.worker import DeadLetters, batch_agent, make_app

log = get_logger("enricher")
STAGE = "enricher"


def build(settings: Settings | None = None):
    settings = settings or get_settings()
    app = make_app(STAGE, settings)
    received = app.topic(settings.topic(FEEDBACK_RECEIVED.name), value_serializer="raw", key_serializer="raw")
    enriched = app.topic(settings.topic(FEEDBACK_ENRICHED.name), value_serializer="raw", key_serializer="raw")
    urgent = app.topic(settings.topic(FEEDBACK_URGENT.name), value_serializer="raw", key_serializer="raw")
    dlq = DeadLetters(app, settings, STAGE)
    embedder = make_embedder(settings.embedder)
    models: dict[str, FeedbackClassifier] = {}

    def classifier() -> FeedbackClassifier:
        if "c" not in models:
            models["c"] = FeedbackClassifier.load(embedder, settings.model_dir)
        return models["c"]

    @app.task
    async def warm_up() -> None:
        # Load the model before the first batch, off the event loop.
        await asyncio.get_running_loop().run_in_executor(None, lambda: (embedder.warm_up(), classifier()))
        log.info("enricher_models_loaded", embedder=embedder.name, model_version=classifier().model_version)

    async def process(events: list[Any]) -> None:
        started = time.perf_counter()
        valid: list[tuple[Any, dict[str, Any]]] = []
        sends = []
        for ev in events:
            if ev.value is None:  # tombstone: an erasure removed this feedback; nothing to enrich
                continue
            raw: bytes = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
            try:
                payload = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                sends.append(await dlq.send(f"not JSON: {exc}", "invalid_json", raw, event=ev))
                continue
            errors = event_errors("feedback.received", payload)
            if errors:
                reason = "; ".join(f"{e.field}: {e.problem}" for e in errors)
                fid = payload.get("feedback_id") if isinstance(payload, dict) else None
                sends.append(await dlq.send(f"schema: {reason}", "schema_violation", raw,
                                            feedback_id=fid if isinstance(fid, str) else None, event=ev))
                continue
            valid.append((ev, payload))
        if valid:
            loop = asyncio.get_running_loop()
            try:
                results = await loop.run_in_executor(
                    None, enrich_batch, [p for _, p in valid], embedder, classifier())
            except Exception as exc:  # noqa: BLE001 - e.g. the model failed on the whole batch
                log.exception("enrich_batch_failed", size=len(valid))
                results = [Failure(p.get("feedback_id"), f"batch failed: {exc}", type(exc).__name__)
                           for _, p in valid]
            for (ev, payload), result in zip(valid, results):
                raw = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
                if isinstance(result, Failure):
                    sends.append(await dlq.send(result.reason, result.error_type, raw,
                                                feedback_id=result.feedback_id, event=ev))
                    continue
                out_errors = event_errors("feedback.enriched", result)
                if out_errors:
                    reason = "; ".join(f"{e.field}: {e.problem}" for e in out_errors)
                    sends.append(await dlq.send(f"enriched event invalid: {reason}", "output_schema", raw,
                                                feedback_id=result["feedback_id"], event=ev))
                    continue
                key = result["feedback_id"].encode()
                body = dumps(result)
                sends.append(await enriched.send(key=key, value=body))
                if result["urgency"]["flag"]:
                    sends.append(await urgent.send(key=key, value=body))
                    metrics.URGENT.inc()
                for kind, n in result["redactions"].items():
                    metrics.REDACTIONS.labels(kind).inc(n)
                metrics.CLASSIFIED.labels(result["sentiment"]["label"], result["language"]).inc()
                metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc()
        # Wait until Kafka has every output before the batch is acknowledged.
        await asyncio.gather(*sends)
        metrics.BATCH_SIZE.labels(STAGE).observe(len(events))
        metrics.STAGE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
        log.info("enriched_batch", size=len(events), ok=len(valid))

    batch_agent(app, received, STAGE, process, settings.enrich_batch_size, settings.enrich_batch_within_s)

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
