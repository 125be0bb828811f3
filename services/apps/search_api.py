"""Search API for service leads: keyword, semantic and hybrid search, more like this,
aggregations; mounted by services.apps.api under ``/v1/search``.

The query builders are pure (pipelines.search); this module validates requests,
embeds query text, talks to Elasticsearch and shapes responses. Results never carry
``respondent_ref`` or embeddings: the source is filtered on the way out and again by
the response model.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from elasticsearch import ApiError, AsyncElasticsearch
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.clock import utc_iso
from pipelines import search as q
from pipelines.taxonomy import theme_by_code
from pipelines.units import service_areas, units
from services.apps.lead_scope import user_index
from services.logs import get_logger
from services.settings import Settings

log = get_logger("search")

Channel = Literal["survey", "app", "kiosk"]
Sentiment = Literal["negative", "neutral", "positive"]
DocLanguage = Literal["fi", "sv", "en", "und"]
QueryLanguage = Literal["fi", "sv", "en"]
ClosureStatus = Literal["open", "closed"]


class SearchFilters(BaseModel):
    """Facets; every list means "any of these", an empty list means "any"."""

    model_config = ConfigDict(extra="forbid")
    unit: list[str] = Field(default_factory=list, description="Unit codes (schemas/units.json).")
    service_area: list[str] = Field(default_factory=list, description="Service area codes.")
    channel: list[Channel] = Field(default_factory=list)
    theme: list[str] = Field(default_factory=list, description="Theme codes (schemas/taxonomy.json); any of them.")
    sentiment: list[Sentiment] = Field(default_factory=list)
    language: list[DocLanguage] = Field(default_factory=list, description="Language of the feedback.")
    urgent: bool | None = Field(None, description="Only urgent (true) or only non-urgent (false) items.")
    closure_status: list[ClosureStatus] = Field(default_factory=list,
                                                description="open: no \"you said, we did\" answer yet.")
    received_from: datetime | None = Field(None, description="Received at or after (ISO 8601).")
    received_to: datetime | None = Field(None, description="Received at or before (ISO 8601).")
    include_duplicates: bool = Field(True, description="Include items flagged as near-duplicates.")

    @field_validator("unit")
    @classmethod
    def _units(cls, v: list[str]) -> list[str]:
        unknown = [u for u in v if u not in units()]
        if unknown:
            raise ValueError(f"unknown unit codes {unknown}")
        return v

    @field_validator("service_area")
    @classmethod
    def _areas(cls, v: list[str]) -> list[str]:
        unknown = [a for a in v if a not in service_areas()]
        if unknown:
            raise ValueError(f"unknown service areas {unknown}")
        return v

    @field_validator("theme")
    @classmethod
    def _themes(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in theme_by_code()]
        if unknown:
            raise ValueError(f"unknown theme codes {unknown}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "SearchFilters":
        if self.received_from and self.received_to and self.received_to < self.received_from:
            raise ValueError("received_to is before received_from")
        return self

    def to_filters(self) -> q.Filters:
        return q.Filters(
            units=tuple(self.unit), service_areas=tuple(self.service_area), channels=tuple(self.channel),
            themes=tuple(self.theme), sentiments=tuple(self.sentiment), languages=tuple(self.language),
            closure_status=tuple(self.closure_status), urgent=self.urgent,
            received_from=utc_iso(self.received_from) if self.received_from else None,
            received_to=utc_iso(self.received_to) if self.received_to else None,
            include_duplicates=self.include_duplicates)


class SearchRequest(BaseModel):
    """One page of a search. Send ``next_cursor`` of a response back as ``cursor`` for the next."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"q": "jono", "mode": "hybrid", "language": "fi",
         "filters": {"service_area": ["emergency"], "sentiment": ["negative"]}, "size": 20}]})
    q: Annotated[str | None, Field(max_length=500, description="Search text; empty lists by filters only.")] = None
    mode: Literal["keyword", "semantic", "hybrid"] = Field(
        "hybrid", description="keyword: words (stemmed per language); semantic: meaning (embedding kNN); "
                              "hybrid: both, fused by reciprocal rank.")
    language: QueryLanguage | None = Field(
        None, description="Language of the search text: searches that language's analyzer and feedback only. "
                          "Unset: every language, each document with its own analyzer.")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: Literal["relevance", "newest", "oldest"] = Field(
        "relevance", description="Keyword and filter-only searches; semantic and hybrid rank by relevance.")
    size: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=4000, description="next_cursor of the previous page.")

    @model_validator(mode="after")
    def _semantic_needs_text(self) -> "SearchRequest":
        if self.mode == "semantic" and not self.q:
            raise ValueError("semantic search needs q")
        return self


class SimilarRequest(BaseModel):
    """More like one feedback item, within the filters."""

    model_config = ConfigDict(extra="forbid")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    size: int = Field(10, ge=1, le=100)
    cursor: str | None = Field(None, max_length=4000)


class FeedbackHit(BaseModel):
    """One feedback item as a service lead sees it: redacted text and facets, no personal data."""

    model_config = ConfigDict(extra="ignore")
    feedback_id: str
    score: float | None = Field(None, description="BM25 (keyword), cosine-based (semantic) or RRF (hybrid).")
    text: str
    language: str
    channel: str
    unit: str
    unit_name: str | None = None
    service_area: str | None = None
    received_at: datetime
    submitted_at: datetime | None = None
    week: str | None = None
    themes: list[str] = Field(default_factory=list)
    theme_labels: dict[str, list[str]] = Field(default_factory=dict, description="Theme labels by language.")
    sentiment: Sentiment
    sentiment_score: float | None = None
    urgent: bool = False
    urgency_reasons: list[str] = Field(default_factory=list)
    rating: int | None = None
    rating_scale: int | None = None
    is_duplicate: bool = False
    duplicate_of: str | None = None
    closure_status: ClosureStatus | None = None
    closure_action_ids: list[str] = Field(default_factory=list)
    closed_at: datetime | None = None
    highlight: list[str] = Field(default_factory=list, description="Matching fragments as HTML: the text "
                                                                   "HTML-escaped, matching terms in <em>.")


class SearchResponse(BaseModel):
    mode: Literal["keyword", "semantic", "hybrid", "browse"]
    total: int | None = Field(None, description="Matches (keyword and filter-only searches); semantic and "
                                                "hybrid results are nearest neighbours and have no total.")
    hits: list[FeedbackHit]
    next_cursor: str | None = Field(None, description="Send as cursor for the next page; null on the last.")


class AggregationsRequest(BaseModel):
    """Counts for the filtered (and optionally keyword-matched) feedback."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    q: Annotated[str | None, Field(max_length=500)] = None
    language: QueryLanguage | None = None
    filters: SearchFilters = Field(default_factory=SearchFilters)
    interval: Literal["day", "week", "month"] = "week"


class ThemeSentimentPeriod(BaseModel):
    theme: str
    sentiment: Sentiment
    period: str = Field(description="2026-W44 (week, Helsinki time), 2026-10-26 (day) or 2026-10 (month).")
    period_start: str
    count: int


class UnitSummary(BaseModel):
    unit: str
    unit_name: str | None = None
    count: int
    negative: int
    neutral: int
    positive: int
    urgent: int
    closed: int
    closure_rate: float = Field(description="Share of the unit's feedback answered by an action.")
    avg_hours_to_closure: float | None = None
    top_themes: list[str]


class AggregationsResponse(BaseModel):
    total: int
    themes_by_sentiment: list[ThemeSentimentPeriod] = Field(
        description="Theme by sentiment by period: one row per non-empty combination.")
    units: list[UnitSummary]


@lru_cache(maxsize=256)
def _query_vector(embedder_spec: str, text: str) -> tuple[float, ...]:
    from pipelines.embedding import make_embedder

    # Cached: paging through one search embeds its text once.
    return tuple(float(x) for x in make_embedder(embedder_spec).encode([text], kind="query")[0])


def _hit(source: dict[str, Any], score: float | None, highlight: dict[str, list[str]] | None = None) -> FeedbackHit:
    src = q.safe_source(source)
    fragments: list[str] = []
    for frags in (highlight or {}).values():
        fragments.extend(f for f in frags if f not in fragments)
    return FeedbackHit(
        **src, score=score, themes=src.get("theme_codes") or [],
        theme_labels={lang: src.get(f"theme_labels_{lang}") or [] for lang in ("fi", "sv", "en")},
        highlight=fragments[:3])


def _es_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """A search body as keyword arguments of the Python client (``from`` is ``from_``)."""
    return {("from_" if k == "from" else k): v for k, v in body.items()}


def search_router(settings: Settings, es: Callable[[], AsyncElasticsearch],
                  user: Callable[..., str]) -> APIRouter:
    """The ``/v1/search`` router; ``es`` returns the app's client, ``user`` is its bearer-token dependency.

    Every search goes to the index expression of the user's service areas (services.apps.lead_scope).
    """
    router = APIRouter(prefix="/v1/search", tags=["search"], dependencies=[Depends(user)],
                       responses={401: {"description": "Missing or unknown bearer token"},
                                  502: {"description": "Elasticsearch failed"}})

    def readable(who: str = Depends(user)) -> str:
        return user_index(settings, who)

    async def vector(text: str) -> list[float]:
        return list(await asyncio.to_thread(_query_vector, settings.embedder, text))

    async def call(coro: Any) -> Any:
        try:
            return await coro
        except ApiError as exc:
            log.warning("search_backend_error", status=exc.meta.status, error=str(exc)[:300])
            raise HTTPException(status_code=502, detail={"error": "search_backend_error"}) from exc

    def cursor_position(token: str | None, fingerprint: str) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return q.decode_cursor(token, fingerprint)
        except q.CursorError as exc:
            raise HTTPException(status_code=400, detail={"error": "invalid_cursor", "errors": [
                {"field": "cursor", "problem": str(exc)}]}) from exc

    async def knn_page(index: str, vec: list[float], filters: q.Filters, size: int, fingerprint: str,
                       offset: int, exclude: tuple[str, ...] = ()) -> SearchResponse:
        resp = await call(es().search(index=index, **_es_kwargs(q.knn_body(vec, filters, size, offset,
                                                                             exclude_ids=exclude))))
        hits = resp["hits"]["hits"]
        nxt = offset + len(hits)
        more = len(hits) == size and nxt < q.MAX_RESULT_WINDOW
        return SearchResponse(mode="semantic", hits=[_hit(h["_source"], h["_score"]) for h in hits],
                              next_cursor=q.encode_cursor(fingerprint, offset=nxt) if more else None)

    @router.post("", response_model=SearchResponse, summary="Search feedback (keyword, semantic or hybrid)")
    async def search(body: SearchRequest, index: str = Depends(readable)) -> SearchResponse:
        filters = body.filters.to_filters()
        mode: q.Mode = body.mode if body.q else "browse"
        fingerprint = q.query_fingerprint({**body.model_dump(mode="json", exclude={"size", "cursor"}), "mode": mode})
        position = cursor_position(body.cursor, fingerprint)
        if mode in ("keyword", "browse"):
            if "offset" in position:
                raise HTTPException(status_code=400, detail={"error": "invalid_cursor"})
            req = q.keyword_body(body.q, body.language, filters, body.size, sort=body.sort,
                                 search_after=position.get("search_after"))
            resp = await call(es().search(index=index, **_es_kwargs(req)))
            hits = resp["hits"]["hits"]
            nxt = (q.encode_cursor(fingerprint, search_after=hits[-1]["sort"])
                   if len(hits) == body.size else None)
            return SearchResponse(mode=mode, total=resp["hits"]["total"]["value"], next_cursor=nxt,
                                  hits=[_hit(h["_source"], h.get("_score"), h.get("highlight")) for h in hits])
        if "search_after" in position:
            raise HTTPException(status_code=400, detail={"error": "invalid_cursor"})
        offset = position.get("offset", 0)
        assert body.q is not None
        vec = await vector(body.q)
        if body.language:  # the query's language limits the nearest neighbours too, as in keyword
            filters = replace(filters, languages=(body.language,))
        if mode == "semantic":
            return await knn_page(index, vec, filters, body.size, fingerprint, offset)
        kw_body, knn_body = q.hybrid_bodies(body.q, body.language, vec, filters, offset, body.size)
        resp = await call(es().msearch(searches=[{"index": index}, kw_body, {"index": index}, knn_body]))
        for part in resp["responses"]:
            if "error" in part:
                log.warning("search_backend_error", error=str(part["error"])[:300])
                raise HTTPException(status_code=502, detail={"error": "search_backend_error"})
        kw_ids, knn_ids = ([h["_id"] for h in r["hits"]["hits"]] for r in resp["responses"])
        page = q.fuse_page(kw_ids, knn_ids, offset, body.size)
        docs: dict[str, Any] = {}
        if page.ids:
            found = await call(es().search(index=index, **_es_kwargs(q.page_body(page.ids, body.q, body.language))))
            docs = {h["_id"]: h for h in found["hits"]["hits"]}
        return SearchResponse(
            mode="hybrid",
            # A document deleted between the two requests (erasure) is simply left out.
            hits=[_hit(docs[i]["_source"], round(page.scores[i], 6), docs[i].get("highlight"))
                  for i in page.ids if i in docs],
            next_cursor=q.encode_cursor(fingerprint, offset=offset + len(page.ids)) if page.more else None)

    @router.post("/similar/{feedback_id}", response_model=SearchResponse,
                 summary="More like this: feedback nearest in meaning to one item",
                 responses={404: {"description": "No such feedback (or not in the user's service areas)"},
                            422: {"description": "The item has no text (no embedding) or the body is invalid"}})
    async def similar(feedback_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
                      body: SimilarRequest | None = None, index: str = Depends(readable)) -> SearchResponse:
        body = body or SimilarRequest()
        # A search, not a get: the area aliases' filters apply, so another area's item is absent (404).
        found = await call(es().search(index=index, query={"ids": {"values": [feedback_id]}}, size=1,
                                       source_includes=["embedding"]))
        hits = found["hits"]["hits"]
        if not hits:
            raise HTTPException(status_code=404, detail={"error": "not_found", "errors": [
                {"field": "feedback_id", "problem": "no such feedback"}]})
        vec = hits[0]["_source"].get("embedding")
        if not vec:
            raise HTTPException(status_code=422, detail={"error": "no_embedding", "errors": [
                {"field": "feedback_id", "problem": "this feedback has no text to compare"}]})
        fingerprint = q.query_fingerprint({"similar": feedback_id,
                                           **body.model_dump(mode="json", exclude={"size", "cursor"})})
        position = cursor_position(body.cursor, fingerprint)
        if "search_after" in position:
            raise HTTPException(status_code=400, detail={"error": "invalid_cursor"})
        return await knn_page(index, vec, body.filters.to_filters(), body.size, fingerprint,
                              position.get("offset", 0), exclude=(feedback_id,))

    @router.post("/aggregations", response_model=AggregationsResponse,
                 summary="Theme by sentiment by week, and a summary per unit")
    async def aggregations(body: AggregationsRequest, index: str = Depends(readable)) -> AggregationsResponse:
        query = q.keyword_query(body.q, body.language, body.filters.to_filters())
        resp = await call(es().search(index=index, **_es_kwargs(q.aggregations_body(query, interval=body.interval))))
        aggs = resp["aggregations"]
        names = units()
        return AggregationsResponse(
            total=resp["hits"]["total"]["value"],
            themes_by_sentiment=[ThemeSentimentPeriod(**r) for r in q.theme_sentiment_rows(aggs, body.interval)],
            units=[UnitSummary(**r, unit_name=names[r["unit"]].names["fi"] if r["unit"] in names else None)
                   for r in q.unit_rows(aggs)])

    return router
