"""Closure worker: closure.actions -> one notification per consenting respondent,
every matching document marked closed with the action id, and the action recorded
in the audit store ``<alias>-actions`` (who published it, when, what it matched).

It also keeps the per-unit closure gauges (feedback_closure_rate_ratio,
feedback_closure_median_hours) fresh from an Elasticsearch aggregation.

Replaying an action is harmless: notification ids are derived from (action,
respondent), so the notifier drops repeats, and documents already carrying the
action id are left alone.
"""
from __future__ import annotations

import json
import time
from typing import Any

from elasticsearch.helpers import async_bulk

from pipelines.closure import closure_update, matching_query, notification_id, recipients
from pipelines.closure_stats import closure_stats, closure_stats_query
from pipelines.units import units
from schemas.validate import event_errors, validate_event
from services import metrics
from services.kafka_io import dumps, utc_now
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.stores import actions_index, async_ensure_index
from services.topics import CLOSURE_ACTIONS, CLOSURE_NOTIFICATIONS
from services.worker import DeadLetters, batch_agent, es_worker_app

log = get_logger("closure")
STAGE = "closure"
SOURCE_FIELDS = ["feedback_id", "respondent_ref", "follow_up_consent", "language", "received_at",
                 "closure_action_ids", "closed_at"]


async def matching_documents(es: Any, alias: str, action: dict[str, Any]) -> list[dict[str, Any]]:
    """Every document the action answers, paged with search_after."""
    docs: list[dict[str, Any]] = []
    after = None
    while True:
        kwargs: dict[str, Any] = {"index": alias, "size": 500, "query": matching_query(action),
                                  "sort": [{"received_at": "asc"}, {"feedback_id": "asc"}],
                                  "_source": SOURCE_FIELDS}
        if after:
            kwargs["search_after"] = after
        resp = await es.search(**kwargs)
        hits = resp["hits"]["hits"]
        docs.extend(h["_source"] for h in hits)
        if len(hits) < 500:
            return docs
        after = hits[-1]["sort"]


def build(settings: Settings | None = None):
    settings = settings or get_settings()
    app, es = es_worker_app(STAGE, settings)
    actions = app.topic(settings.topic(CLOSURE_ACTIONS.name), value_serializer="raw", key_serializer="raw")
    notifications = app.topic(settings.topic(CLOSURE_NOTIFICATIONS.name), value_serializer="raw",
                              key_serializer="raw")
    dlq = DeadLetters(app, settings, STAGE)
    audit_ready: list[bool] = []

    async def audit(action: dict[str, Any], status: str, **counts: Any) -> None:
        """Upsert the action's audit record (_id = action_id: a replay overwrites, never duplicates)."""
        if not audit_ready:
            await async_ensure_index(es, settings.index_alias, "actions")
            audit_ready.append(True)
        unit = units().get(action["unit"])
        record = {k: action[k] for k in ("action_id", "unit", "themes", "period", "messages", "published_by",
                                         "published_at") if k in action}
        if action.get("title"):
            record["title"] = action["title"]
        record.update(service_area=unit.service_area if unit else None, status=status, processed_at=utc_now(),
                      **counts)
        await es.index(index=actions_index(settings.index_alias), id=action["action_id"], document=record)

    async def handle(ev: Any) -> None:
        raw: bytes = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
        try:
            action = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            await (await dlq.send(f"not JSON: {exc}", "invalid_json", raw, event=ev))
            return
        errors = event_errors("closure.actions", action)
        if errors:
            await (await dlq.send("schema: " + "; ".join(f"{e.field}: {e.problem}" for e in errors),
                                  "schema_violation", raw, event=ev))
            metrics.CLOSURE_ACTIONS.labels("invalid").inc()
            return
        await audit(action, "received")
        await es.indices.refresh(index=settings.index_alias)
        docs = await matching_documents(es, settings.index_alias, action)
        people = recipients(docs)
        sends = []
        for r in people:
            note = {"schema_version": 1, "notification_id": notification_id(action["action_id"], r.respondent_ref),
                    "action_id": action["action_id"], "respondent_ref": r.respondent_ref, "language": r.language,
                    "unit": action["unit"], "feedback_ids": list(r.feedback_ids), "created_at": utc_now(),
                    "messages": action["messages"], **({"title": action["title"]} if action.get("title") else {})}
            validate_event("closure.notifications", note)
            sends.append(await notifications.send(key=r.respondent_ref.encode(), value=dumps(note)))
        for fut in sends:
            await fut
        updates = [{"_op_type": "update", "_index": settings.index_alias, "_id": d["feedback_id"],
                    "retry_on_conflict": 3, "doc": u}
                   for d in docs if (u := closure_update(d, action)) is not None]
        if updates:
            _, failures = await async_bulk(es, updates, max_retries=5, initial_backoff=1, refresh="wait_for",
                                           raise_on_error=False)
            # 404: the document was erased since the search; anything else is worth a retry.
            real = [f for f in failures if next(iter(f.values())).get("status") != 404]
            if real:
                raise RuntimeError(f"{len(real)} documents not marked closed")
        await audit(action, "processed", matched_feedback=len(docs), notifications=len(people))
        metrics.CLOSURE_ACTIONS.labels("processed").inc()
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc()
        log.info("action_processed", action_id=action["action_id"], unit=action["unit"], matched=len(docs),
                 notifications=len(people), marked=len(updates))

    async def process(events: list[Any]) -> None:
        started = time.perf_counter()
        for ev in events:
            await handle(ev)
        metrics.STAGE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)

    batch_agent(app, actions, STAGE, process, 20, 0.5)

    @app.timer(interval=settings.closure_metrics_interval_s, on_leader=False)
    async def closure_gauges() -> None:
        """Closure rate and median hours to closure per unit, as Prometheus gauges."""
        try:
            resp = await es.search(index=settings.index_alias,
                                   **closure_stats_query(settings.closure_metrics_window_days))
        except Exception as exc:  # noqa: BLE001 - metrics must never stop the worker
            log.warning("closure_gauges_failed", error=type(exc).__name__)
            return
        stats = closure_stats(resp)
        for unit, s in stats.items():
            metrics.CLOSURE_RATE.labels(unit).set(s.rate)
            if s.median_hours is not None:
                metrics.CLOSURE_MEDIAN_HOURS.labels(unit).set(s.median_hours)
        for unit in set(units()) - set(stats):
            for gauge in (metrics.CLOSURE_RATE, metrics.CLOSURE_MEDIAN_HOURS):
                try:
                    gauge.remove(unit)
                except KeyError:
                    pass

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
