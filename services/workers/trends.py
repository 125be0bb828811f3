"""Trends worker: daily counts per unit and theme in a windowed table; a spike above the
recent baseline becomes a feedback.trend_alerts event and a Prometheus counter tick.

Two agents, because the table is keyed by (unit, theme) while feedback.enriched is keyed
by feedback_id: ``observe`` turns each enriched event into one observation per theme on
an internal topic keyed ``unit|theme`` (so each key's counts live in one partition, as a
faust table needs), with the Kafka timestamp set to the feedback's ``received_at``. The
table is a tumbling one-day window relative to that stream time, so counts belong to
the day the feedback was given, also when it is replayed or arrives late. ``count``
increments the day's window and compares it with the previous days' windows
(``delta``); pipelines.trends decides what a spike is.

At-least-once: a redelivered event can count twice, and an alert can be sent again;
alert ids are derived from (unit, theme, day) so consumers drop repeats.

The only faust app in the project: its windowed, changelogged table is what faust is
for. Every other worker runs on services/workers/runtime.py, which owns its commits.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import faust

from pipelines.clock import utc_now
from pipelines.taxonomy import theme_by_code
from pipelines.trends import SpikeRule, alert_event, crossed, event_timestamp, trend_key
from pipelines.units import service_areas, units
from schemas.validate import validate_event
from services import metrics
from services.adapters.kafka_io import dumps, kafka_ssl_context, sasl_login
from services.logs import configure_logging, get_logger
from services.settings import Settings, get_settings, service_port
from services.topics import FEEDBACK_ENRICHED, FEEDBACK_TREND_ALERTS

log = get_logger("trends")
STAGE = "trends"
DAY = timedelta(days=1)
PARTITIONS = 6  # observations topic and table changelog: co-partitioned


def faust_credentials(settings: Settings) -> Any:
    """services.adapters.kafka_io.kafka_security as faust's ``broker_credentials`` (None: plaintext)."""
    context = kafka_ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        username, password = sasl_login(settings)
        # faust picks SASL_SSL when a context is given, SASL_PLAINTEXT otherwise.
        return faust.SASLCredentials(username=username, password=password, ssl_context=context,
                                     mechanism=settings.kafka_sasl_mechanism)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def make_app(service: str, settings: Settings) -> faust.App:
    """A faust app named ``<prefix>feedback-<service>`` with /health, /ready and /metrics pages."""
    app = faust.App(
        f"{settings.topic_prefix}feedback-{service}",
        broker=[f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
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
        return web.json({"ready": True})

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



def rule_from(settings: Settings) -> SpikeRule:
    return SpikeRule(baseline_days=settings.trend_baseline_days, min_count=settings.trend_min_count,
                     ratio=settings.trend_ratio)


def observations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One observation per theme of an enriched event (duplicates count once: the original did)."""
    if event.get("duplicate_of"):
        return []
    known = theme_by_code()
    return [{"unit": event["unit"], "theme": t["code"], "received_at": event["received_at"]}
            for t in event.get("themes", []) if t.get("code") in known]


def _label(value: str | None, allowed: set[str]) -> str:
    return value if value in allowed else "other"


def build(settings: Settings | None = None):
    settings = settings or get_settings()
    rule = rule_from(settings)
    app = make_app(STAGE, settings)
    enriched = app.topic(settings.topic(FEEDBACK_ENRICHED.name), value_serializer="raw", key_serializer="raw")
    alerts = app.topic(settings.topic(FEEDBACK_TREND_ALERTS.name), value_serializer="raw", key_serializer="raw")
    # Faust-owned (declared by faust, like table changelogs): the repartition by unit|theme.
    observed = app.topic(f"{settings.topic_prefix}feedback-trends-observations", internal=True,
                         partitions=PARTITIONS, key_serializer="raw", value_serializer="json",
                         retention=timedelta(days=rule.baseline_days + 2))
    counts = app.Table("trend-daily-counts", default=int, partitions=PARTITIONS, key_type=str,
                       value_type=int).tumbling(
        DAY, expires=timedelta(days=rule.baseline_days + 2)).relative_to_stream()
    areas, themes = set(service_areas()), set(theme_by_code())

    @app.agent(enriched)
    async def observe(stream: Any) -> None:
        async for raw in stream:
            if raw is None:  # tombstone of an erased item
                continue
            try:
                event = json.loads(raw)
                items = observations(event)
                ts = event_timestamp(event["received_at"])
            except (ValueError, KeyError, TypeError) as exc:
                # The indexer dead-letters bad events; counting must simply not stop.
                log.warning("trend_skip_event", error=type(exc).__name__)
                continue
            for obs in items:
                await observed.send(key=trend_key(obs["unit"], obs["theme"]).encode(), value=obs, timestamp=ts)

    @app.agent(observed)
    async def count(stream: Any) -> None:
        async for obs in stream:
            key = trend_key(obs["unit"], obs["theme"])
            window = counts[key]
            previous = window.current()
            counts[key] += 1
            now = previous + 1
            history = [counts[key].delta(DAY * i) for i in range(1, rule.baseline_days + 1)]
            base = crossed(previous, now, history, rule)
            if base is None:
                continue
            unit = units().get(obs["unit"])
            area = unit.service_area if unit else None
            start = (event_timestamp(obs["received_at"]) // DAY.total_seconds()) * DAY.total_seconds()
            alert = alert_event(unit=obs["unit"], service_area=area, theme=obs["theme"], window_start=start,
                                count=now, base=base, rule=rule, detected_at=utc_now())
            validate_event("feedback.trend_alerts", alert)
            await alerts.send(key=alert["alert_id"].encode(), value=dumps(alert))
            metrics.TREND_ALERTS.labels(_label(area, areas), _label(obs["theme"], themes)).inc()
            log.info("trend_alert", unit=obs["unit"], theme=obs["theme"], day=alert["window_start"], count=now,
                     threshold=base.threshold, baseline_mean=base.mean)

    return app


def main() -> None:
    """Run the faust app in the foreground until SIGTERM/SIGINT, then stop cleanly."""
    from faust.worker import Worker

    settings = get_settings()
    configure_logging(settings.log_level, STAGE)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(build(settings), loglevel=settings.log_level.lower(), override_logging=False, quiet=True)
    worker.execute_from_commandline()
