"""Indexer: feedback.enriched -> Elasticsearch alias, bulk, _id = feedback_id.

A batch is acknowledged (and its offsets committed) only after Elasticsearch has
acknowledged every document of it. Documents are upserted so a replay refreshes
the enrichment without resetting the closure fields. Near-duplicates (the same
comment again from the same source) are flagged with ``duplicate_of``.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from elasticsearch.helpers import async_bulk

from pipelines.documents import to_document
from schemas.validate import event_errors
from services import metrics
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.stores import erasures_index
from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT
from services.worker import DeadLetters, batch_agent, es_worker_app

log = get_logger("indexer")
STAGE = "indexer"
# Item errors that retrying cannot fix: the document itself is wrong.
PERMANENT_STATUSES = {400, 404, 409}


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def mark_duplicates(es: Any, alias: str, docs: list[dict[str, Any]]) -> None:
    """Set duplicate_of on docs whose fingerprint was seen earlier (in the index or the batch)."""
    prints = sorted({d["text_fingerprint"] for d in docs if d.get("text_fingerprint")})
    if not prints:
        return
    first: dict[str, tuple[str, str]] = {}  # fingerprint -> (received_at, feedback_id)
    ids = [d["feedback_id"] for d in docs]
    resp = await es.search(index=alias, size=0, query={"bool": {
        "filter": [{"terms": {"text_fingerprint": prints}}], "must_not": [{"ids": {"values": ids}}]}},
        aggs={"fp": {"terms": {"field": "text_fingerprint", "size": len(prints)},
                     "aggs": {"first": {"top_hits": {"size": 1, "sort": [{"received_at": "asc"}],
                                                     "_source": ["feedback_id", "received_at"]}}}}})
    for bucket in resp["aggregations"]["fp"]["buckets"]:
        hit = bucket["first"]["hits"]["hits"][0]["_source"]
        first[bucket["key"]] = (hit["received_at"], hit["feedback_id"])
    for d in sorted(docs, key=lambda d: (d["received_at"], d["feedback_id"])):
        fp = d.get("text_fingerprint")
        if not fp:
            continue
        seen = first.get(fp)
        if seen and (seen[0], seen[1]) < (d["received_at"], d["feedback_id"]):
            d["duplicate_of"], d["is_duplicate"] = seen[1], True
            metrics.DUPLICATES.inc()
        elif not seen:
            first[fp] = (d["received_at"], d["feedback_id"])


async def erased_refs(es: Any, alias: str, refs: set[str]) -> dict[str, str]:
    """Which of ``refs`` are on the erasure list, with when (a realtime GET: no refresh needed)."""
    if not refs:
        return {}
    resp = await es.options(ignore_status=404).mget(index=erasures_index(alias), ids=sorted(refs),
                                                    _source=["erased_at"])
    return {d["_id"]: d["_source"]["erased_at"] for d in resp.get("docs", []) if d.get("found")}


def erased_before(doc: dict[str, Any], erased: dict[str, str]) -> bool:
    """Feedback given before its respondent was erased (still in flight then): drop it.
    Feedback given after is new data the person chose to give, and is kept."""
    at = erased.get(doc.get("respondent_ref") or "")
    return at is not None and _parse_ts(doc["received_at"]) <= _parse_ts(at)


async def delete_documents(es: Any, alias: str, ids: list[str]) -> None:
    """Delete documents by id; one that is already gone is fine."""
    if not ids:
        return
    _, failures = await async_bulk(es, [{"_op_type": "delete", "_index": alias, "_id": i} for i in ids],
                                   raise_on_error=False, raise_on_exception=True, max_retries=5, initial_backoff=1)
    real = [f for f in failures if next(iter(f.values())).get("status") != 404]
    if real:
        raise RuntimeError(f"{len(real)} documents not deleted by Elasticsearch")


def build(settings: Settings | None = None):
    settings = settings or get_settings()
    app, es = es_worker_app(STAGE, settings)
    enriched = app.topic(settings.topic(FEEDBACK_ENRICHED.name), value_serializer="raw", key_serializer="raw")
    # Where the indexer writes tombstones for feedback of erased respondents it drops.
    erasable = [app.topic(settings.topic(t.name), value_serializer="raw", key_serializer="raw")
                for t in (FEEDBACK_RECEIVED, FEEDBACK_ENRICHED, FEEDBACK_URGENT)]
    dlq = DeadLetters(app, settings, STAGE)

    async def process(events: list[Any]) -> None:
        started = time.perf_counter()
        docs: list[tuple[Any, dict[str, Any]]] = []
        sends = []
        deletes: list[str] = []
        for ev in events:
            if ev.value is None:  # tombstone written by an erasure: the document goes too
                if ev.key:
                    deletes.append(ev.key.decode() if isinstance(ev.key, bytes) else str(ev.key))
                continue
            raw: bytes = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
            try:
                payload = json.loads(raw)
                errors = event_errors("feedback.enriched", payload)
                if errors:
                    raise ValueError("; ".join(f"{e.field}: {e.problem}" for e in errors))
                docs.append((ev, to_document(payload)))
            except Exception as exc:  # noqa: BLE001 - poison input goes to the DLQ
                sends.append(await dlq.send(f"cannot index: {exc}", type(exc).__name__, raw, event=ev))
        if docs:
            await mark_duplicates(es, settings.index_alias, [d for _, d in docs])
            by_id = {d["feedback_id"]: (ev, d) for ev, d in docs}
            actions = [{"_op_type": "update", "_index": settings.index_alias, "_id": fid, "retry_on_conflict": 3,
                        "doc": d, "upsert": {**d, "closure_status": "open", "closure_action_ids": []}}
                       for fid, (_, d) in by_id.items()]
            _, failures = await async_bulk(es, actions, raise_on_error=False, raise_on_exception=True,
                                           max_retries=5, initial_backoff=1, refresh=False)
            transient = []
            for item in failures:
                info = next(iter(item.values()))
                ev, d = by_id[info["_id"]]
                if info.get("status") in PERMANENT_STATUSES:
                    raw = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
                    sends.append(await dlq.send(f"elasticsearch rejected: {json.dumps(info.get('error'))[:1500]}",
                                                "es_rejected", raw, feedback_id=d["feedback_id"], event=ev))
                else:
                    transient.append(info)
            if transient:
                raise RuntimeError(f"{len(transient)} documents not acknowledged by Elasticsearch")
            now = datetime.now(timezone.utc)
            for _, d in docs:
                metrics.END_TO_END_SECONDS.observe(max(0.0, (now - _parse_ts(d["received_at"])).total_seconds()))
            metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(by_id) - len(failures))
            # Checked after the write, so an erasure running now either finds the document
            # (its search comes after this write) or is seen here (its list entry came first).
            erased = await erased_refs(es, settings.index_alias,
                                       {d["respondent_ref"] for _, d in by_id.values() if d.get("respondent_ref")})
            dropped = [fid for fid, (_, d) in by_id.items() if erased_before(d, erased)]
            for fid in dropped:
                for topic in erasable:
                    sends.append(await topic.send(key=fid.encode(), value=None))
            deletes.extend(dropped)
            metrics.ERASED_DROPPED.inc(len(dropped))
        await delete_documents(es, settings.index_alias, deletes)
        for fut in sends:
            await fut
        metrics.BATCH_SIZE.labels(STAGE).observe(len(events))
        metrics.STAGE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
        log.info("indexed_batch", size=len(events), documents=len(docs))

    batch_agent(app, enriched, STAGE, process, settings.index_batch_size, settings.index_batch_within_s)

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
