"""The public "you said, we did" board: per unit and language, HTML and a JSON Feed.

No authentication: it shows what service leads chose to publish (title, message,
themes, period, date) and how much feedback each action answers, counted live
from the feedback index (so erased feedback stops counting). Never who published,
respondent refs or feedback text (pipelines/board.py picks the public fields), with one
exception: a unit that opted in to the thanks digest shows a few thank-yous that passed
pipelines/thanks.public_quote (short, nothing redacted in them); every unit shows its
count of thanks.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from pipelines import thanks
from pipelines.board import HEADINGS, LANGUAGES, BoardEntry, board_entries, board_language, json_feed
from pipelines.units import service_areas, units
from services.settings import Settings
from services.adapters.stores import actions_index
from services.apps.web import templates

BOARD_SIZE = 50
CSP = "default-src 'self'; script-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"


async def load_board(es: Any, alias: str, unit: str, lang: str, size: int = BOARD_SIZE) -> list[BoardEntry]:
    """The unit's published actions (newest first) with live feedback counts."""
    resp = await es.options(ignore_status=404).search(
        index=actions_index(alias), size=size, query={"term": {"unit": unit}}, sort=[{"published_at": "desc"}])
    actions = [h["_source"] for h in resp.get("hits", {}).get("hits", [])]
    counts: dict[str, int] = {}
    if actions:
        ids = [a["action_id"] for a in actions]
        agg = await es.search(index=alias, size=0, query={"terms": {"closure_action_ids": ids}},
                              aggs={"by_action": {"terms": {"field": "closure_action_ids", "include": ids,
                                                            "size": len(ids)}}})
        counts = {b["key"]: b["doc_count"] for b in agg["aggregations"]["by_action"]["buckets"]}
    return board_entries(actions, counts, lang)


async def load_thanks(es: Any, alias: str, unit: str, lang: str, now: datetime | None = None) -> thanks.BoardThanks:
    """The unit's thanks of the last BOARD_DAYS (relative to now): the count, and public quotes
    if the unit opted in to the thanks digest."""
    now = now or datetime.now(timezone.utc)
    query = thanks.period_query(unit, now - timedelta(days=thanks.BOARD_DAYS), now)
    count = int((await es.count(index=alias, query=query))["count"])
    opt_in = units()[unit].thanks_digest
    quotes: tuple[thanks.Quote, ...] = ()
    if count and opt_in and opt_in.enabled:
        resp = await es.search(index=alias, size=thanks.QUOTE_POOL, query=query, source=thanks.QUOTE_FIELDS,
                               sort=thanks.QUOTE_SORT)
        quotes = tuple(thanks.board_quotes([h["_source"] for h in resp["hits"]["hits"]], lang))
    return thanks.BoardThanks(count, thanks.BOARD_DAYS, quotes)


def _public(response: Response) -> Response:
    response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def board_router(settings: Settings, state: dict[str, Any]) -> APIRouter:
    router = APIRouter(tags=["board"])
    base = settings.public_base_url.rstrip("/")

    def known(unit: str) -> None:
        if unit not in units():
            raise HTTPException(404, {"error": "not_found", "errors": [{"field": "unit", "problem": "unknown unit"}]})

    @router.get("/board", include_in_schema=False)
    async def board_index(request: Request, lang: str = "fi") -> Response:
        lang = board_language(lang)
        areas = service_areas()
        grouped: dict[str, list[Any]] = {}
        for u in sorted(units().values(), key=lambda u: u.names[lang]):
            grouped.setdefault(areas[u.service_area][lang], []).append(u)
        return _public(templates.TemplateResponse(request, "board_index.html", {
            "lang": lang, "t": HEADINGS[lang], "groups": sorted(grouped.items()), "languages": LANGUAGES}))

    # Declared before /board/{unit}, which would otherwise take "turku-ed.json" as a unit code.
    @router.get("/board/{unit}.json", summary="Published actions of a unit as a JSON Feed 1.1 (same as feed.json)")
    async def board_json(unit: str, lang: str = "fi") -> Response:
        return await board_feed(unit, lang)

    @router.get("/board/{unit}", include_in_schema=False)
    async def board_page(request: Request, unit: str, lang: str = "fi") -> Response:
        known(unit)
        lang = board_language(lang)
        entries = await load_board(state["es"], settings.index_alias, unit, lang)
        unit_thanks = await load_thanks(state["es"], settings.index_alias, unit, lang)
        return _public(templates.TemplateResponse(request, "board.html", {
            "lang": lang, "t": HEADINGS[lang], "unit": unit, "unit_name": units()[unit].names[lang],
            "entries": entries, "languages": LANGUAGES, "feed_url": f"/board/{unit}/feed.json?lang={lang}",
            "thanks": unit_thanks, "tt": thanks.BOARD_TEXT[lang]}))

    @router.get("/board/{unit}/feed.json", summary="Published actions of a unit as a JSON Feed 1.1")
    async def board_feed(unit: str, lang: str = "fi") -> Response:
        known(unit)
        lang = board_language(lang)
        entries = await load_board(state["es"], settings.index_alias, unit, lang)
        feed = json_feed(entries, unit=unit, unit_name=units()[unit].names[lang], lang=lang,
                         home_url=f"{base}/board/{unit}?lang={lang}", feed_url=f"{base}/board/{unit}/feed.json?lang={lang}")
        return _public(JSONResponse(feed, media_type="application/feed+json"))

    return router
