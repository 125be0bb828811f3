"""Closure worker: closure.actions -> one notification per consenting respondent,
and every matching document marked closed with the action id.

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
from schemas.validate import event_errors, validate_event
from services import metrics
from services.es import async_es_client
from services.kafka_io import dumps, utc_now
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.topics import CLOSURE_ACTIONS, CLOSURE_NOTIFICATIONS
from services.worker import DeadLetters, make_app, process_batch

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
    es = async_es_client(settings)

    async def ready() -> bool:
        try:
            return bool(await es.indices.exists_alias(name=settings.index_alias))
        except Exception:  # noqa: BLE001
            return False

    app = make_app(STAGE, settings, ready=ready)
    actions = app.topic(settings.topic(CLOSURE_ACTIONS.name), value_serializer="raw", key_serializer="raw")
    notifications = app.topic(settings.topic(CLOSURE_NOTIFICATIONS.name), value_serializer="raw",
                              key_serializer="raw")
    dlq = DeadLetters(app, settings, STAGE)

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
            await async_bulk(es, updates, max_retries=5, initial_backoff=1, refresh="wait_for")
        metrics.CLOSURE_ACTIONS.labels("processed").inc()
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc()
        log.info("action_processed", action_id=action["action_id"], unit=action["unit"], matched=len(docs),
                 notifications=len(people), marked=len(updates))

    async def process(events: list[Any]) -> None:
        started = time.perf_counter()
        for ev in events:
            await handle(ev)
        metrics.STAGE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)

    @app.agent(actions)
    async def close_loop(stream: Any) -> None:
        async for events in stream.take_events(20, within=0.5):
            await process_batch(STAGE, process, list(events))

    @app.on_before_shutdown.connect
    async def close(app: Any, **kwargs: Any) -> None:  # noqa: ARG001
        await es.close()

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
