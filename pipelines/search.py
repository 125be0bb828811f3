"""Search for service leads, as pure Elasticsearch request builders.

- keyword: BM25 on the language sub-fields of ``text`` (``text.fi`` + ``text.fi_light``,
  ``text.sv``, ``text.en``); with a language given only that language's fields and
  documents, otherwise one should clause per language, each limited to documents in
  that language, so every document is matched with its own analyzer.
- semantic: kNN on ``embedding`` with the embedder's query vector, filters applied
  inside the kNN search (pre-filtering: k hits that all pass the filters).
- hybrid: keyword and kNN run side by side and are fused here with reciprocal rank
  fusion, because the local Elasticsearch has no RRF retriever (x-pack, licensed).
- more like this: kNN with a stored document's embedding, the document itself excluded.
- deep paging: ``search_after`` on a total sort order (``feedback_id`` breaks ties),
  carried between pages in an opaque cursor bound to the query it came from.
- aggregations: theme by sentiment by week, and a summary per unit.

Nothing here talks to Elasticsearch; services.apps.search_api does.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pipelines.documents import LOCAL_TZ

LANGUAGES = ("fi", "sv", "en")
# Sub-fields searched per language. Finnish uses both stemmers: snowball for precision,
# light_finnish for recall across inflections (jonotin -> jono).
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "fi": ("text.fi", "text.fi_light"),
    "sv": ("text.sv",),
    "en": ("text.en",),
}
# The only fields a search result carries: never respondent_ref (a pseudonym that links a
# person's feedback) and never the embedding (large, and invertible enough to matter).
RESULT_FIELDS: tuple[str, ...] = (
    "feedback_id", "channel", "unit", "unit_name", "service_area", "received_at", "submitted_at", "week",
    "text", "language", "rating", "rating_scale", "theme_codes", "primary_theme", "theme_labels_fi",
    "theme_labels_sv", "theme_labels_en", "sentiment", "sentiment_score", "urgent", "urgency_reasons",
    "is_duplicate", "duplicate_of", "closure_status", "closure_action_ids", "closed_at",
)
FORBIDDEN_FIELDS = frozenset({"respondent_ref", "embedding"})
RRF_RANK_CONSTANT = 60
MAX_RESULT_WINDOW = 1000  # kNN and hybrid pages go at most this deep; keyword pages have no limit
Mode = Literal["keyword", "semantic", "hybrid", "browse"]
Sort = Literal["relevance", "newest", "oldest"]


class CursorError(ValueError):
    """A cursor that is malformed or belongs to another query."""


@dataclass(frozen=True)
class Filters:
    """Facets a lead narrows a search by; empty tuples and None mean "any"."""

    units: tuple[str, ...] = ()
    service_areas: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    closure_status: tuple[str, ...] = ()
    urgent: bool | None = None
    received_from: str | None = None  # ISO 8601, inclusive
    received_to: str | None = None  # ISO 8601, inclusive
    include_duplicates: bool = True


def filter_clauses(f: Filters) -> list[dict[str, Any]]:
    """Filter-context clauses (cached by Elasticsearch, no effect on scores)."""
    clauses: list[dict[str, Any]] = []
    for fld, values in (("unit", f.units), ("service_area", f.service_areas), ("channel", f.channels),
                        ("theme_codes", f.themes), ("sentiment", f.sentiments), ("language", f.languages),
                        ("closure_status", f.closure_status)):
        if values:
            clauses.append({"terms": {fld: sorted(set(values))}})
    if f.urgent is not None:
        clauses.append({"term": {"urgent": f.urgent}})
    if f.received_from or f.received_to:
        rng: dict[str, str] = {}
        if f.received_from:
            rng["gte"] = f.received_from
        if f.received_to:
            rng["lte"] = f.received_to
        clauses.append({"range": {"received_at": rng}})
    if not f.include_duplicates:
        clauses.append({"bool": {"must_not": [{"term": {"is_duplicate": True}}]}})
    return clauses


def _match(fields: Sequence[str], text: str) -> dict[str, Any]:
    if len(fields) == 1:
        return {"match": {fields[0]: {"query": text}}}
    # most_fields: a document matching both Finnish stemmings ranks above one matching one.
    return {"multi_match": {"query": text, "fields": list(fields), "type": "most_fields"}}


def text_query(text: str, language: str | None = None) -> dict[str, Any]:
    """The scoring part of a keyword search for ``text`` written in ``language`` (or any)."""
    if language in TEXT_FIELDS:
        return {"bool": {"filter": [{"term": {"language": language}}],
                         "must": [_match(TEXT_FIELDS[language], text)]}}
    should: list[dict[str, Any]] = [
        {"bool": {"filter": [{"term": {"language": lang}}], "must": [_match(fields, text)]}}
        for lang, fields in TEXT_FIELDS.items()
    ]
    # Undetermined language ("und", short kiosk comments): the standard analyzer.
    should.append({"bool": {"must_not": [{"terms": {"language": list(LANGUAGES)}}],
                            "must": [{"match": {"text": {"query": text}}}]}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def keyword_query(text: str | None, language: str | None, filters: Filters) -> dict[str, Any]:
    """Bool query: text scored (if any), facets filtered."""
    query: dict[str, Any] = {"filter": filter_clauses(filters)}
    if text:
        query["must"] = [text_query(text, language)]
    return {"bool": query}


def sort_order(mode: Mode, sort: Sort = "relevance") -> list[dict[str, Any]]:
    """A total order for search_after: feedback_id (unique) breaks every tie."""
    if sort == "relevance" and mode == "keyword":
        return [{"_score": "desc"}, {"received_at": "desc"}, {"feedback_id": "asc"}]
    direction = "asc" if sort == "oldest" else "desc"
    return [{"received_at": direction}, {"feedback_id": "asc"}]


def highlight_spec(language: str | None) -> dict[str, Any]:
    """Highlighted fragments of the text fields. The ``html`` encoder escapes the feedback text
    itself (a resident's ``<script>`` comes back as ``&lt;script&gt;``), so the only markup in
    a fragment is the ``<em>`` around matching terms and a page may insert it as HTML."""
    fields = TEXT_FIELDS.get(language or "", ()) or tuple(f for fs in TEXT_FIELDS.values() for f in fs) + ("text",)
    return {"fields": {f: {"number_of_fragments": 2, "fragment_size": 160} for f in fields},
            "pre_tags": ["<em>"], "post_tags": ["</em>"], "encoder": "html", "require_field_match": True}


def keyword_body(text: str | None, language: str | None, filters: Filters, size: int, *,
                 sort: Sort = "relevance", search_after: list[Any] | None = None) -> dict[str, Any]:
    """Search body of a keyword (or, without text, browse) page."""
    mode: Mode = "keyword" if text else "browse"
    body: dict[str, Any] = {
        "query": keyword_query(text, language, filters),
        "size": size,
        "sort": sort_order(mode, sort),
        "_source": list(RESULT_FIELDS),
        "track_total_hits": True,
    }
    if text:
        body["highlight"] = highlight_spec(language)
    if search_after:
        body["search_after"] = search_after
    return body


def knn_clause(vector: Sequence[float], filters: Filters, k: int, *, num_candidates: int | None = None,
               exclude_ids: Iterable[str] = ()) -> dict[str, Any]:
    """The kNN section: k nearest by cosine among documents passing the filters."""
    clauses = filter_clauses(filters)
    excluded = sorted(set(exclude_ids))
    if excluded:
        clauses.append({"bool": {"must_not": [{"ids": {"values": excluded}}]}})
    knn: dict[str, Any] = {
        "field": "embedding",
        "query_vector": [float(x) for x in vector],
        "k": k,
        # More candidates per shard than k: better recall of HNSW for a little latency.
        "num_candidates": max(num_candidates or 0, min(10_000, max(100, 2 * k))),
    }
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    return knn


def knn_body(vector: Sequence[float], filters: Filters, size: int, offset: int = 0, *,
             exclude_ids: Iterable[str] = ()) -> dict[str, Any]:
    """Search body of a semantic page (hits ``offset`` .. ``offset + size`` of the k nearest)."""
    k = min(MAX_RESULT_WINDOW, offset + size)
    return {"knn": knn_clause(vector, filters, k, exclude_ids=exclude_ids), "from": offset,
            "size": max(0, k - offset), "_source": list(RESULT_FIELDS)}


def hybrid_window(offset: int, size: int) -> int:
    """How many hits each side of a hybrid search contributes to the fusion."""
    return min(MAX_RESULT_WINDOW, max(100, 2 * (offset + size)))


def hybrid_bodies(text: str, language: str | None, vector: Sequence[float], filters: Filters,
                  offset: int, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword and the kNN body of one hybrid page: ids and ranks only (run both, then
    :func:`fuse_page`, then fetch the page with :func:`page_body`). Sources and highlights
    of the whole fusion window would cost more than the searches themselves."""
    window = hybrid_window(offset, size)
    kw = keyword_body(text, language, filters, window)
    for key in ("track_total_hits", "highlight"):
        kw.pop(key)
    kw["_source"] = False
    knn = knn_body(vector, filters, window)
    knn["_source"] = False
    return kw, knn


def page_body(ids: Sequence[str], text: str | None = None, language: str | None = None) -> dict[str, Any]:
    """The documents of a fused page, with highlights of ``text`` where it matches."""
    query: dict[str, Any] = {"bool": {"filter": [{"ids": {"values": list(ids)}}]}}
    body: dict[str, Any] = {"query": query, "size": len(ids), "_source": list(RESULT_FIELDS)}
    if text:
        query["bool"]["should"] = [text_query(text, language)]
        body["highlight"] = highlight_spec(language)
    return body


def rrf(rankings: Sequence[Sequence[str]], rank_constant: int = RRF_RANK_CONSTANT) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (rank_constant + rank(d)).

    Ranks start at 1. Ties are broken by the best single rank, then by id, so the fused
    order is deterministic (stable pages).
    """
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (rank_constant + rank)
            best[doc_id] = min(best.get(doc_id, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


# --- cursors -------------------------------------------------------------------------


def query_fingerprint(params: dict[str, Any]) -> str:
    """A short hash of what defines a result list (query, mode, filters, sort; not size)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, *, search_after: list[Any] | None = None, offset: int | None = None) -> str:
    """An opaque token for the next page: a search_after position or an offset."""
    state: dict[str, Any] = {"v": 1, "q": fingerprint}
    if search_after is not None:
        state["a"] = search_after
    if offset is not None:
        state["o"] = offset
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> dict[str, Any]:
    """``{"search_after": [...]}`` or ``{"offset": n}``; CursorError if foreign or broken."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise CursorError("cursor is not valid") from exc
    if not isinstance(state, dict) or state.get("v") != 1:
        raise CursorError("cursor is not valid")
    if state.get("q") != fingerprint:
        raise CursorError("cursor belongs to a different query; start again without it")
    if isinstance(state.get("a"), list):
        return {"search_after": state["a"]}
    offset = state.get("o")
    if isinstance(offset, int) and 0 <= offset <= MAX_RESULT_WINDOW:
        return {"offset": offset}
    raise CursorError("cursor is not valid")


# --- aggregations ----------------------------------------------------------------------

Interval = Literal["day", "week", "month"]


def aggregations_body(query: dict[str, Any], *, interval: Interval = "week", top_themes: int = 30,
                      top_units: int = 200) -> dict[str, Any]:
    """size-0 body: theme -> sentiment -> time bucket, and per-unit summaries."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": query,
        "aggs": {
            "themes": {
                "terms": {"field": "theme_codes", "size": top_themes},
                "aggs": {"sentiment": {
                    "terms": {"field": "sentiment", "size": 3},
                    "aggs": {"period": {"date_histogram": {
                        "field": "received_at", "calendar_interval": interval, "time_zone": str(LOCAL_TZ),
                        "format": "yyyy-MM-dd"}}},
                }},
            },
            "units": {
                "terms": {"field": "unit", "size": top_units},
                "aggs": {
                    "sentiment": {"terms": {"field": "sentiment", "size": 3}},
                    "urgent": {"filter": {"term": {"urgent": True}}},
                    "closed": {"filter": {"term": {"closure_status": "closed"}}},
                    "hours_to_closure": {"avg": {"field": "hours_to_closure"}},
                    "top_themes": {"terms": {"field": "theme_codes", "size": 3}},
                },
            },
        },
    }


def period_label(start: str, interval: Interval) -> str:
    """``2026-W44`` for a week starting ``2026-10-26``; the date itself for days; ``2026-10`` for months."""
    day = date.fromisoformat(start[:10])
    if interval == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()[:7] if interval == "month" else day.isoformat()


def theme_sentiment_rows(aggs: dict[str, Any], interval: Interval = "week") -> list[dict[str, Any]]:
    """Flatten the theme/sentiment/period buckets into rows with a count each."""
    rows = []
    for theme in aggs["themes"]["buckets"]:
        for sent in theme["sentiment"]["buckets"]:
            for period in sent["period"]["buckets"]:
                if period["doc_count"]:
                    rows.append({"theme": theme["key"], "sentiment": sent["key"],
                                 "period_start": period["key_as_string"],
                                 "period": period_label(period["key_as_string"], interval),
                                 "count": period["doc_count"]})
    return sorted(rows, key=lambda r: (r["period_start"], r["theme"], r["sentiment"]))


def unit_rows(aggs: dict[str, Any]) -> list[dict[str, Any]]:
    """One summary per unit: volume, sentiment split, urgent items, closure rate and time."""
    rows = []
    for b in aggs["units"]["buckets"]:
        sentiment = {s["key"]: s["doc_count"] for s in b["sentiment"]["buckets"]}
        count = b["doc_count"]
        hours = b["hours_to_closure"]["value"]
        rows.append({
            "unit": b["key"], "count": count,
            "negative": sentiment.get("negative", 0), "neutral": sentiment.get("neutral", 0),
            "positive": sentiment.get("positive", 0), "urgent": b["urgent"]["doc_count"],
            "closed": b["closed"]["doc_count"],
            "closure_rate": round(b["closed"]["doc_count"] / count, 4) if count else 0.0,
            "avg_hours_to_closure": round(hours, 2) if hours is not None else None,
            "top_themes": [t["key"] for t in b["top_themes"]["buckets"]],
        })
    return rows


def safe_source(source: dict[str, Any]) -> dict[str, Any]:
    """A hit's _source without any forbidden field, whatever the request asked for."""
    return {k: v for k, v in source.items() if k not in FORBIDDEN_FIELDS}


@dataclass
class FusedPage:
    """One page of a hybrid search."""

    ids: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    more: bool = False


def fuse_page(keyword_ids: Sequence[str], knn_ids: Sequence[str], offset: int, size: int) -> FusedPage:
    """The ``offset`` .. ``offset + size`` slice of the RRF fusion of both rankings."""
    fused = rrf([keyword_ids, knn_ids])
    page = fused[offset:offset + size]
    return FusedPage([i for i, _ in page], dict(page),
                     more=len(fused) > offset + size and offset + size < MAX_RESULT_WINDOW)
