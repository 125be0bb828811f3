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

from typing import Any

from elasticsearch.helpers import async_bulk

from pipelines.clock import utc_now
from pipelines.closure import closure_update, matching_query, notification_id, recipients
from pipelines.closure_stats import closure_stats, closure_stats_query
from pipelines.units import units
from schemas.validate import validate_event
from services import metrics
from services.adapters.kafka_io import dumps
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.adapters.stores import actions_index, async_ensure_index
from services.adapters.es import alias_exists, async_es_client
from services.workers.faults import DependencyUnavailable
from services.workers.runtime import Event, Outputs, WorkerSpec, run_worker
from services.topics import CLOSURE_ACTIONS, CLOSURE_NOTIFICATIONS

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


class ClosureWorker:
    """Handles actions one by one against Elasticsearch; keeps the audit store and gauges."""

    def __init__(self, settings: Settings, es: Any) -> None:
        self.settings, self.es = settings, es
        self.alias = settings.index_alias
        self.audit_ready = False

    async def audit(self, action: dict[str, Any], status: str, **counts: Any) -> None:
        """Upsert the action's audit record (_id = action_id: a replay overwrites, never duplicates)."""
        if not self.audit_ready:
            await async_ensure_index(self.es, self.alias, "actions")
            self.audit_ready = True
        unit = units().get(action["unit"])
        record = {k: action[k] for k in ("action_id", "unit", "themes", "period", "messages", "published_by",
                                         "published_at") if k in action}
        if action.get("title"):
            record["title"] = action["title"]
        record.update(service_area=unit.service_area if unit else None, status=status, processed_at=utc_now(),
                      **counts)
        await self.es.index(index=actions_index(self.alias), id=action["action_id"], document=record)

    async def handle(self, events: list[Event], out: Outputs) -> None:
        for ev in events:
            if ev.body is not None:
                await self.handle_action(ev.body, out)

    async def handle_action(self, action: dict[str, Any], out: Outputs) -> None:
        """One notification per consenting respondent, then every matching document marked closed."""
        await self.audit(action, "received")
        await self.es.indices.refresh(index=self.alias)
        docs = await matching_documents(self.es, self.alias, action)
        people = recipients(docs)
        for r in people:
            note = {"schema_version": 1, "notification_id": notification_id(action["action_id"], r.respondent_ref),
                    "action_id": action["action_id"], "respondent_ref": r.respondent_ref, "language": r.language,
                    "unit": action["unit"], "feedback_ids": list(r.feedback_ids), "created_at": utc_now(),
                    "messages": action["messages"], **({"title": action["title"]} if action.get("title") else {})}
            validate_event("closure.notifications", note)
            await out.send(CLOSURE_NOTIFICATIONS.name, dumps(note), key=r.respondent_ref.encode())
        await out.flush()  # the notifications are out before any document says "closed"
        updates = [{"_op_type": "update", "_index": self.alias, "_id": d["feedback_id"],
                    "retry_on_conflict": 3, "doc": u}
                   for d in docs if (u := closure_update(d, action)) is not None]
        if updates:
            _, failures = await async_bulk(self.es, updates, max_retries=5, initial_backoff=1, refresh="wait_for",
                                           raise_on_error=False)
            # 404: the document was erased since the search; anything else is worth a retry.
            real = [f for f in failures if next(iter(f.values())).get("status") != 404]
            if real:
                raise DependencyUnavailable(f"{len(real)} documents not marked closed")
        await self.audit(action, "processed", matched_feedback=len(docs), notifications=len(people))
        metrics.CLOSURE_ACTIONS.labels("processed").inc()
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc()
        log.info("action_processed", action_id=action["action_id"], unit=action["unit"], matched=len(docs),
                 notifications=len(people), marked=len(updates))

    async def closure_gauges(self) -> None:
        """Closure rate and median hours to closure per unit, as Prometheus gauges."""
        try:
            resp = await self.es.search(index=self.alias,
                                        **closure_stats_query(self.settings.closure_metrics_window_days))
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


def build(settings: Settings | None = None) -> WorkerSpec:
    """The closure worker: actions one at a time, gauges on a timer."""
    settings = settings or get_settings()
    es = async_es_client(settings)
    worker = ClosureWorker(settings, es)
    return WorkerSpec(stage=STAGE, topics=[CLOSURE_ACTIONS.name], handler=worker.handle, schema="closure.actions",
                      chunk=1, fetch_max=20, ready_check=lambda: alias_exists(es, settings.index_alias),
                      periodic=[(settings.closure_metrics_interval_s, worker.closure_gauges)], close=es.close)


def main() -> None:
    run_worker(build, get_settings(), STAGE)
