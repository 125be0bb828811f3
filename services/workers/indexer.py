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

from pipelines.clock import parse_ts
from pipelines.documents import to_document, upsert_op
from services import metrics
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.adapters.stores import erasures_index
from services.adapters.es import alias_exists, async_es_client
from services.workers.faults import DependencyUnavailable
from services.workers.runtime import Event, Outputs, WorkerSpec, run_worker
from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT

log = get_logger("indexer")
STAGE = "indexer"
# Item errors that retrying cannot fix: the document itself is wrong.
PERMANENT_STATUSES = {400, 404, 409}
# Where the indexer writes tombstones for feedback of erased respondents it drops.
ERASABLE_TOPICS = (FEEDBACK_RECEIVED.name, FEEDBACK_ENRICHED.name, FEEDBACK_URGENT.name)


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
    return at is not None and parse_ts(doc["received_at"]) <= parse_ts(at)


async def delete_documents(es: Any, alias: str, ids: list[str]) -> None:
    """Delete documents by id; one that is already gone is fine."""
    if not ids:
        return
    _, failures = await async_bulk(es, [{"_op_type": "delete", "_index": alias, "_id": i} for i in ids],
                                   raise_on_error=False, raise_on_exception=True, max_retries=5, initial_backoff=1)
    real = [f for f in failures if next(iter(f.values())).get("status") != 404]
    if real:
        raise DependencyUnavailable(f"{len(real)} documents not deleted by Elasticsearch")


async def index_events(events: list[Event], out: Outputs, es: Any, alias: str) -> None:
    """Upsert a batch into the alias, delete erased feedback, drop feedback of erased
    respondents that was still in flight. Raises DependencyUnavailable while
    Elasticsearch does not acknowledge every document."""
    started = time.perf_counter()
    docs: list[tuple[Event, dict[str, Any]]] = []
    deletes: list[str] = []
    for ev in events:
        if ev.body is None:  # tombstone written by an erasure: the document goes too
            if ev.key is not None:
                deletes.append(ev.key_text or "")
            continue
        docs.append((ev, to_document(ev.body)))
    dropped_count = 0
    if docs:
        await mark_duplicates(es, alias, [d for _, d in docs])
        by_id = {d["feedback_id"]: (ev, d) for ev, d in docs}
        actions = [upsert_op(alias, d) for _, d in by_id.values()]
        _, failures = await async_bulk(es, actions, raise_on_error=False, raise_on_exception=True,
                                       max_retries=5, initial_backoff=1, refresh=False)
        transient = 0
        for item in failures:
            info = next(iter(item.values()))
            ev, d = by_id[info["_id"]]
            if info.get("status") in PERMANENT_STATUSES:
                await out.dead_letter(ev, f"elasticsearch rejected: {json.dumps(info.get('error'))[:1500]}",
                                      "es_rejected", d["feedback_id"])
            else:
                transient += 1
        if transient:
            raise DependencyUnavailable(f"{transient} documents not acknowledged by Elasticsearch")
        now = datetime.now(timezone.utc)
        for _, d in docs:
            metrics.END_TO_END_SECONDS.observe(max(0.0, (now - parse_ts(d["received_at"])).total_seconds()))
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(by_id) - len(failures))
        # Checked after the write, so an erasure running now either finds the document
        # (its search comes after this write) or is seen here (its list entry came first).
        erased = await erased_refs(es, alias, {d["respondent_ref"] for _, d in by_id.values()
                                               if d.get("respondent_ref")})
        dropped = [fid for fid, (_, d) in by_id.items() if erased_before(d, erased)]
        for fid in dropped:
            for topic in ERASABLE_TOPICS:
                await out.send(topic, None, key=fid.encode())
        deletes.extend(dropped)
        dropped_count = len(dropped)
        metrics.ERASED_DROPPED.inc(dropped_count)
    await delete_documents(es, alias, deletes)
    log.info("indexed_batch", size=len(events), documents=len(docs), dropped=dropped_count,
             seconds=round(time.perf_counter() - started, 3))


def build(settings: Settings | None = None) -> WorkerSpec:
    """The indexer's worker: one Elasticsearch client, ready while the alias answers."""
    settings = settings or get_settings()
    es = async_es_client(settings)

    async def handle(events: list[Event], out: Outputs) -> None:
        await index_events(events, out, es, settings.index_alias)

    return WorkerSpec(stage=STAGE, topics=[FEEDBACK_ENRICHED.name], handler=handle, schema="feedback.enriched",
                      chunk=settings.index_batch_size, fetch_max=settings.index_batch_size,
                      linger=settings.index_batch_within_s,
                      ready_check=lambda: alias_exists(es, settings.index_alias), close=es.close)


def main() -> None:
    run_worker(build, get_settings(), STAGE)
