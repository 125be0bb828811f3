"""The insights jobs: key drivers and emerging topics from the feedback index into their own indices.

Run on a schedule (deploy/k8s/base/insights.yaml, CronJobs) or by hand as ``feedback insights
drivers`` and ``feedback insights emerging``. Both read the feedback alias county-wide (a
job, not a lead) and write documents that carry ``service_area``, so every reader filters by
the lead's areas. Neither writes text: drivers are numbers, topics keep keywords and the
feedback ids of their quotes (pipelines/emerging.py says why).

Metrics: a CronJob's pod is gone before Prometheus would scrape it and no pushgateway is
deployed, so each run reports in two places instead: its documents carry ``computed_at``
(Kibana and an Elasticsearch watch see a stale or missing run) and it logs one JSON line
(``insights_drivers_done`` / ``insights_emerging_done``) with counts and seconds.
"""
from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk, scan

from pipelines.clock import utc_iso
from pipelines.drivers import DriverParams, DriverResult, key_drivers
from pipelines.emerging import EmergingParams, Topic, find_topics, same_topic
from pipelines.taxonomy import theme_by_code
from pipelines.units import service_areas, units
from schemas.validate import validate_event
from services.adapters.kafka_io import dumps
from services.adapters.stores import ensure_index
from services.logs import get_logger
from services.settings import Settings
from services.topics import INSIGHTS_EMERGING

log = get_logger("insights")
DRIVER_FIELDS = ["unit", "service_area", "theme_codes", "rating", "rating_scale", "sentiment_score"]
TOPIC_FIELDS = ["feedback_id", "unit", "text", "language", "embedding", "themes"]
NEW, PROMOTED, DISMISSED = "new", "promoted", "dismissed"


def _period_query(start: datetime, end: datetime, area: str | None = None) -> dict[str, Any]:
    """Feedback received in [start, end), without duplicates (one voice counted once)."""
    clauses: list[dict[str, Any]] = [{"range": {"received_at": {"gte": utc_iso(start), "lt": utc_iso(end)}}}]
    if area:
        clauses.append({"term": {"service_area": area}})
    return {"bool": {"filter": clauses, "must_not": [{"term": {"is_duplicate": True}}]}}


def _uncovered_query(query: dict[str, Any], params: EmergingParams) -> dict[str, Any]:
    """Narrow ``query`` to documents no theme scores ``max_theme_score`` or more on (the rest is
    covered by the taxonomy; pipelines/emerging.py filters again, this only spares reading it)."""
    nested = {"nested": {"path": "themes", "query": {"range": {"themes.score": {"gte": params.max_theme_score}}}}}
    return {"bool": {**query["bool"], "must_not": [*query["bool"]["must_not"], nested]}}


def _read(es: Elasticsearch, alias: str, query: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
    return [h["_source"] for h in scan(es, index=alias, query={"query": query, "_source": fields}, size=500)]


def driver_params(settings: Settings) -> DriverParams:
    return DriverParams(min_n=settings.insights_min_n, min_theme_n=settings.insights_min_theme_n,
                        bootstrap=settings.insights_bootstrap, seed=settings.insights_seed)


def driver_documents(run: Mapping[str, Any], scope: str, key: str, area: str,
                     result: DriverResult) -> list[dict[str, Any]]:
    """The index documents of one group's result: a summary row (theme null) and one row per theme."""
    themes = theme_by_code()
    unit = units().get(key) if scope == "unit" else None
    base = {**run, "scope": scope, "unit": key if scope == "unit" else None,
            "unit_name": unit.names["fi"] if unit else None, "service_area": area, "outcome": result.outcome,
            "n": result.n, "mean_satisfaction": result.mean}
    docs = [{**base, "status": "ok" if result.ok else "insufficient_data", "reason": result.insufficient,
             "theme": None}]
    rows = [(rank, d.theme, {"theme_n": d.n, "too_rare": False, "prevalence": d.prevalence, "effect": d.effect,
                             "effect_low": d.effect_low, "effect_high": d.effect_high, "impact": d.impact,
                             "impact_low": d.impact_low, "impact_high": d.impact_high, "clear": d.clear})
            for rank, d in enumerate(result.drivers, start=1)]
    rows += [(None, code, {"theme_n": count, "too_rare": True}) for code, count in result.too_rare.items()]
    for rank, code, values in rows:
        theme = themes.get(code)
        docs.append({**base, "status": "ok", "reason": None, "theme": code, "rank": rank, **values,
                     **{f"theme_label_{lang}": theme.labels[lang] if theme else code for lang in ("fi", "sv", "en")}})
    return docs


def _doc_id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DriversReport:
    run_id: str
    period_from: str
    period_to: str
    groups: dict[tuple[str, str], DriverResult]  # (scope, unit or area) -> result
    documents: int


def run_drivers(settings: Settings, es: Elasticsearch, now: datetime, days: int | None = None,
                write: bool = True) -> DriversReport:
    """Key drivers of every unit and service area for the ``days`` before ``now``; written to
    ``<alias>-insights-drivers`` (replacing a run of the same period) unless ``write`` is false."""
    started = time.monotonic()
    days = days or settings.insights_period_days
    start = now - timedelta(days=days)
    docs = _read(es, settings.index_alias, _period_query(start, now), DRIVER_FIELDS)
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        if d.get("service_area"):
            by_group[("service_area", d["service_area"])].append(d)
        by_group[("unit", d["unit"])].append(d)
    params = driver_params(settings)
    run_id = f"{utc_iso(start)}/{utc_iso(now)}"
    run = {"run_id": run_id, "computed_at": utc_iso(now), "period_from": utc_iso(start), "period_to": utc_iso(now),
           "model": "ridge", "bootstrap": params.bootstrap, "seed": params.seed}
    groups: dict[tuple[str, str], DriverResult] = {}
    actions = []
    for (scope, key), group in sorted(by_group.items()):
        result = groups[(scope, key)] = key_drivers(group, params)
        area = key if scope == "service_area" else (group[0].get("service_area") or "")
        for doc in driver_documents(run, scope, key, area, result):
            actions.append({"_op_type": "index", "_id": _doc_id(run_id, scope, key, doc["theme"]), "_source": doc})
    if write:
        index = ensure_index(es, settings.index_alias, "insights-drivers")
        bulk(es, [{**a, "_index": index} for a in actions], refresh="wait_for")
    ranked = sum(1 for r in groups.values() if r.ok)
    log.info("insights_drivers_done", run_id=run_id, feedback=len(docs), groups=len(groups), ranked=ranked,
             insufficient=len(groups) - ranked, documents=len(actions) if write else 0,
             seconds=round(time.monotonic() - started, 2))
    return DriversReport(run_id, run["period_from"], run["period_to"], groups, len(actions) if write else 0)


def emerging_params(settings: Settings) -> EmergingParams:
    return EmergingParams(max_theme_score=settings.insights_max_theme_score,
                          min_cluster_size=settings.insights_min_cluster_size)


def _decided(es: Elasticsearch, index: str, area: str) -> list[dict[str, Any]]:
    """Topics of ``area`` a lead promoted or dismissed (their decisions carry over)."""
    resp = es.options(ignore_status=404).search(index=index, size=500, query={"bool": {"filter": [
        {"term": {"service_area": area}}, {"terms": {"status": [PROMOTED, DISMISSED]}}]}})
    return [h["_source"] for h in resp.get("hits", {}).get("hits", [])]


def topic_document(topic: Topic, area: str, window: tuple[datetime, datetime], days: int,
                   members: Iterable[Mapping[str, Any]], computed_at: str,
                   decided: Mapping[str, Any] | None) -> dict[str, Any]:
    """The index document of one topic; a decided earlier topic lends its id and decision."""
    doc = {"topic_id": topic.topic_id, "service_area": area, "computed_at": computed_at,
           "window_from": utc_iso(window[0]), "window_to": utc_iso(window[1]), "window_days": days,
           "size": topic.size, "earlier_sizes": list(topic.earlier_sizes), "growth": topic.growth,
           "emerging": topic.emerging, "keywords_fi": list(topic.keywords.get("fi", ())),
           "keywords_sv": list(topic.keywords.get("sv", ())), "quote_ids": list(topic.quote_ids),
           "units": sorted({m["unit"] for m in members}), "centroid": list(topic.centroid), "status": NEW,
           "decided_by": None, "decided_at": None, "promoted_theme": None}
    if decided:
        doc.update({k: decided.get(k) for k in ("topic_id", "status", "decided_by", "decided_at", "promoted_theme")})
    return doc


def emerging_event(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The insights.emerging event of a topic document."""
    event = {"schema_version": 1, "topic_id": doc["topic_id"], "service_area": doc["service_area"],
             "window_from": doc["window_from"], "window_to": doc["window_to"], "size": doc["size"],
             "earlier_sizes": doc["earlier_sizes"], "growth": doc["growth"],
             "keywords": {"fi": doc["keywords_fi"], "sv": doc["keywords_sv"]}, "quote_ids": doc["quote_ids"],
             "units": doc["units"], "detected_at": doc["computed_at"]}
    validate_event(INSIGHTS_EMERGING.schema, event)
    return event


@dataclass(frozen=True)
class EmergingReport:
    window_from: str
    window_to: str
    topics: list[dict[str, Any]]  # index documents, emerging first
    published: int


def run_emerging(settings: Settings, es: Elasticsearch, now: datetime, producer: Any | None = None,
                 areas: Iterable[str] | None = None) -> EmergingReport:
    """Cluster each service area's poorly covered recent feedback; write the topics to
    ``<alias>-insights-emerging`` and publish insights.emerging for new emerging ones (``producer``:
    a kafka-python KafkaProducer; None writes and publishes nothing)."""
    started = time.monotonic()
    days, earlier = settings.insights_window_days, settings.insights_earlier_windows
    edges = [now - timedelta(days=days * k) for k in range(earlier + 1, -1, -1)]  # oldest first
    params = emerging_params(settings)
    index = ensure_index(es, settings.index_alias, "insights-emerging") if producer is not None else None
    out: list[dict[str, Any]] = []
    published = 0
    for area in sorted(areas or service_areas()):
        windows = [_read(es, settings.index_alias, _uncovered_query(_period_query(a, b, area), params), TOPIC_FIELDS)
                   for a, b in zip(edges, edges[1:])]
        by_id = {d["feedback_id"]: d for d in windows[-1]}
        decided = _decided(es, index, area) if index else []
        for topic in find_topics(windows, params, scope=area):
            previous = next((p for p in decided if p.get("centroid") and same_topic(topic.centroid, p["centroid"])),
                            None)
            doc = topic_document(topic, area, (edges[-2], edges[-1]), days, (by_id[i] for i in topic.member_ids),
                                 utc_iso(now), previous)
            out.append(doc)
            if index is None:
                continue
            es.index(index=index, id=doc["topic_id"], document=doc)
            if doc["emerging"] and doc["status"] == NEW:
                event = emerging_event(doc)
                producer.send(settings.topic(INSIGHTS_EMERGING.name), key=doc["topic_id"].encode(),
                              value=dumps(event))
                published += 1
    if producer is not None:
        producer.flush()
        es.indices.refresh(index=index)
    out.sort(key=lambda d: (not d["emerging"], -d["growth"], d["service_area"], d["topic_id"]))
    log.info("insights_emerging_done", window_to=utc_iso(now), topics=len(out),
             emerging=sum(1 for d in out if d["emerging"]), published=published,
             seconds=round(time.monotonic() - started, 2))
    return EmergingReport(utc_iso(edges[-2]), utc_iso(edges[-1]), out, published)


def quotes(es: Elasticsearch, index: str, ids: Iterable[str]) -> dict[str, str]:
    """Redacted texts of ``ids`` read through ``index`` (a lead's area aliases, or the alias for a job):
    an id that is gone (erased) or outside the index is simply missing."""
    ids = list(ids)
    if not ids:
        return {}
    resp = es.options(ignore_status=404).search(index=index, size=len(ids), source=["text"],
                                                query={"ids": {"values": ids}})
    return {h["_id"]: h["_source"].get("text") for h in resp.get("hits", {}).get("hits", [])}
