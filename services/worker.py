"""What every faust worker shares: the app, health and metrics pages, DLQ, running.

Each faust worker (enricher, indexer, closure, trends) builds its app with
``make_app`` and adds its agents. Offsets are committed by faust only for events
the agent acknowledged, and agents acknowledge a batch only after its side effect
(produce, index, send) succeeded: at-least-once, with idempotent side effects.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from services import metrics
from services.faust_fixes import install_faust_fixes
from services.logs import configure_logging, get_logger
from services.processing import count_dead_letter, process_batch
from services.settings import Settings, service_port
from services.topics import FEEDBACK_DLQ

log = get_logger("worker")


def make_app(service: str, settings: Settings, *, ready: Callable[[], Awaitable[bool]] | None = None) -> faust.App:
    """A faust app named ``feedback-<service>`` with /health, /ready and /metrics pages."""
    install_faust_fixes()  # or a restart can skip records (services/faust_fixes.py)
    app = faust.App(
        f"{settings.topic_prefix}feedback-{service}",
        broker=[f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=str(settings.state_dir / f"{settings.topic_prefix}{service}"),
        web_port=service_port(service, settings),
        web_host=settings.host,
        web_bind=settings.host,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        topic_disable_leader=True,
        topic_allow_declare=True,  # only faust-owned topics (table changelogs)
        topic_replication_factor=settings.topic_replication,
        broker_session_timeout=60.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
    )

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "service": service})

    @app.page("/ready")
    async def readiness(web: Any, request: Any) -> Any:
        ok = await ready() if ready else True
        return web.json({"ready": ok}, status=200 if ok else 503)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        body, content_type = metrics.exposition()
        return web.bytes(body, content_type=content_type)

    @app.on_before_shutdown.connect
    async def _down(app: faust.App, **kwargs: Any) -> None:  # noqa: ARG001
        metrics.SERVICE_UP.labels(service).set(0)
        log.info("service_stopping", service=service)

    @app.task
    async def _up() -> None:
        metrics.SERVICE_UP.labels(service).set(1)
        log.info("worker_started", service=service)

    return app


def es_worker_app(service: str, settings: Settings) -> tuple[faust.App, Any]:
    """A worker app that also holds an Elasticsearch client: ready when the alias exists,
    the client closed on shutdown."""
    from services.es import async_es_client

    es = async_es_client(settings)

    async def ready() -> bool:
        try:
            return bool(await es.indices.exists_alias(name=settings.index_alias))
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            return False

    app = make_app(service, settings, ready=ready)

    @app.on_before_shutdown.connect
    async def _close_es(app: faust.App, **kwargs: Any) -> None:  # noqa: ARG001
        await es.close()

    return app, es


def batch_agent(app: faust.App, topic: Any, stage: str, handler: Callable[[list[Any]], Awaitable[None]],
                size: int, within: float) -> None:
    """Consume ``topic`` in batches of up to ``size`` events (or what came in ``within`` s)
    and hand each batch to ``handler`` through :func:`process_batch`."""

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(size, within=within):
            await process_batch(stage, handler, list(events))

    consume.__name__ = consume.__qualname__ = f"{stage}_batches"  # faust names the agent after it
    app.agent(topic, name=f"{stage}-batches")(consume)


class DeadLetters:
    """Sends failed events to feedback.dlq and counts them."""

    def __init__(self, app: faust.App, settings: Settings, stage: str):
        self.topic = app.topic(settings.topic(FEEDBACK_DLQ.name), value_serializer="raw", key_serializer="raw")
        self.stage = stage

    async def send(self, reason: str, error_type: str, original: bytes | None, *, feedback_id: str | None = None,
                   event: Any = None) -> Any:
        msg = getattr(event, "message", None)
        record = count_dead_letter(self.stage, reason, error_type, original, feedback_id=feedback_id,
                                   topic=getattr(msg, "topic", None), partition=getattr(msg, "partition", None),
                                   offset=getattr(msg, "offset", None))
        return await self.topic.send(key=(feedback_id or "").encode() or None, value=record)


def run_worker(service: str, app: faust.App, settings: Settings) -> None:
    """Run a faust app in the foreground until SIGTERM/SIGINT, then stop cleanly."""
    from faust.worker import Worker

    configure_logging(settings.log_level, service)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(app, loglevel=settings.log_level.lower(), override_logging=False, quiet=True)
    worker.execute_from_commandline()
