"""Enricher: feedback.received -> redact, language, embed, classify -> feedback.enriched.

Urgent items are also copied to feedback.urgent. An event that cannot be parsed,
validated or enriched goes to feedback.dlq with the stage and reason (the runtime
isolates it from the rest of its batch); the worker keeps going. The output is not
schema-checked here: every consumer checks it on input (and dead-letters what fails),
and the unit tests hold enrich_batch to the contract, so checking twice would only cost
about 5% of the enricher's CPU (the 384 numbers of the embedding).
"""
from __future__ import annotations

import asyncio
import time

from pipelines.classify import FeedbackClassifier, NoTrainedHeads, trained_heads
from pipelines.embedding import Embedder, make_embedder
from pipelines.enrich import Failure, enrich_batch
from services import metrics
from services.adapters.kafka_io import dumps
from services.logs import get_logger
from services.workers.runtime import Event, Outputs, WorkerSpec, run_worker
from services.settings import Settings, get_settings
from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT

log = get_logger("enricher")
STAGE = "enricher"


async def enrich(events: list[Event], out: Outputs, embedder: Embedder, classifier: FeedbackClassifier) -> None:
    """Enrich a batch (one embedding call) and write each result, urgent ones twice.

    Raises when the batch as a whole fails, so the runtime can find the record that
    causes it; item-level failures the pipeline reports are dead-lettered here.
    """
    started = time.perf_counter()
    valid = [e for e in events if e.body is not None]  # tombstones: an erasure removed that feedback
    if not valid:
        return
    steps: dict[str, float] = {}
    results = await asyncio.get_running_loop().run_in_executor(
        None, enrich_batch, [e.body for e in valid], embedder, classifier, steps)
    for step, seconds in steps.items():
        metrics.ENRICH_STEP_SECONDS.labels(step).observe(seconds)
    ok = 0
    for ev, result in zip(valid, results):
        if isinstance(result, Failure):
            await out.dead_letter(ev, result.reason, result.error_type, result.feedback_id)
            continue
        key = result["feedback_id"].encode()
        body = dumps(result)
        await out.send(FEEDBACK_ENRICHED.name, body, key=key)
        if result["urgency"]["flag"]:
            await out.send(FEEDBACK_URGENT.name, body, key=key)
            metrics.URGENT.inc()
        for kind, n in result["redactions"].items():
            metrics.REDACTIONS.labels(kind).inc(n)
        metrics.CLASSIFIED.labels(result["sentiment"]["label"], result["language"]).inc()
        ok += 1
    metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(ok)
    log.info("enriched_batch", size=len(events), ok=ok, seconds=round(time.perf_counter() - started, 3))


def build(settings: Settings | None = None) -> WorkerSpec:
    """The enricher's worker: the model is loaded once, before the first record.

    Raises NoTrainedHeads, before touching Kafka, when the embedder has no trained heads
    and prototype-only mode was not set explicitly (FEEDBACK_PROTOTYPE_ONLY).
    """
    settings = settings or get_settings()
    embedder = make_embedder(settings.embedder, settings.embed_threads)
    if trained_heads(embedder.name, settings.model_dir) is None:
        if not settings.prototype_only:
            log.error("enricher_no_trained_heads", embedder=embedder.name)
            raise NoTrainedHeads(embedder.name)
        log.warning("enricher_prototype_only", embedder=embedder.name)
    loaded: dict[str, FeedbackClassifier] = {}

    async def warm_up() -> None:
        def load() -> None:
            embedder.warm_up()
            loaded["classifier"] = FeedbackClassifier.load(embedder, settings.model_dir,
                                                           allow_prototype_only=settings.prototype_only)

        await asyncio.get_running_loop().run_in_executor(None, load)
        log.info("enricher_models_loaded", embedder=embedder.name, model_version=loaded["classifier"].model_version)

    async def handle(events: list[Event], out: Outputs) -> None:
        await enrich(events, out, embedder, loaded["classifier"])

    return WorkerSpec(stage=STAGE, topics=[FEEDBACK_RECEIVED.name], handler=handle, schema="feedback.received",
                      chunk=settings.enrich_batch_size, fetch_max=settings.enrich_batch_size * 8, warm_up=warm_up)


def main() -> None:
    run_worker(build, get_settings(), STAGE)
