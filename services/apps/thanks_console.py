"""The console's thanks page: a lead reads the recent thanks of their units, picks quotes into
a training set and exports the set as CSV or Markdown for staff sessions.

Area scoping as everywhere in the console (services/apps/lead_scope.py, fails closed): the
thanks are read through the lead's area aliases; a pick is accepted only for feedback found
there; the picks (``<alias>-training``, no text) are filtered by the lead's unit codes and
their text is read through the area aliases again at export time, so erased feedback drops
out of the set by itself and nothing of another area is ever shown or exported.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from pipelines import thanks
from pipelines.clock import utc_now
from pipelines.units import units
from services import metrics
from services.adapters.stores import async_ensure_index, training_index
from services.apps.lead_scope import covers_unit, lead_areas, unit_codes, user_index
from services.apps.urgent_console import FEEDBACK_ID
from services.apps.web import templates
from services.logs import get_logger
from services.settings import Settings

log = get_logger("console")
RECENT_DAYS = 28  # the page shows thanks received in this many days before now
LISTED = 100
EXPORT_MAX = 500  # a training set is read aloud, not mined


class PickIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback_id: str


def _bad_id(feedback_id: str) -> None:
    if not FEEDBACK_ID.match(feedback_id):
        raise HTTPException(422, {"error": "invalid", "errors": [
            {"field": "feedback_id", "problem": "must be a feedback id (36 characters, 0-9 a-f and -)"}]})


def _unit_param(areas: Any, unit: str | None) -> str | None:
    if unit is None or unit == "":
        return None
    if unit not in units():
        raise HTTPException(422, {"error": "invalid", "errors": [{"field": "unit", "problem": "unknown unit"}]})
    if not covers_unit(areas, unit):
        raise HTTPException(403, {"error": "forbidden", "errors": [
            {"field": "unit", "problem": f"unit {unit!r} is outside your service areas"}]})
    return unit


async def recent_thanks(settings: Settings, es: Any, user: str, unit: str | None,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """The thanks of the user's units (or one of them) received in RECENT_DAYS before ``now``, newest first."""
    index = user_index(settings, user)  # 403 for a user with no areas
    now = now or datetime.now(timezone.utc)
    resp = await es.options(ignore_status=404).search(
        index=index, size=LISTED, query=thanks.period_query(unit, now - timedelta(days=RECENT_DAYS), now),
        source=thanks.QUOTE_FIELDS + ["week"], sort=[{"received_at": "desc"}])
    return [h["_source"] for h in resp.get("hits", {}).get("hits", [])]


async def picks(settings: Settings, es: Any, user: str, unit: str | None = None) -> list[dict[str, Any]]:
    """The picks of the user's units (or one of them), newest first (ids and units, no text)."""
    allowed = unit_codes(lead_areas(settings, user))
    clauses: list[dict[str, Any]] = [{"term": {"unit": unit}}] if unit else []
    if allowed is not None:
        clauses.append({"terms": {"unit": allowed}})
    resp = await es.options(ignore_status=404).search(
        index=training_index(settings.index_alias), size=EXPORT_MAX, query={"bool": {"filter": clauses}},
        sort=[{"picked_at": "desc"}])
    return [h["_source"] for h in resp.get("hits", {}).get("hits", [])]


async def training_rows(settings: Settings, es: Any, user: str, unit: str | None) -> list[dict[str, str]]:
    """The user's training set with the redacted text, read through the user's area aliases."""
    index = user_index(settings, user)
    chosen = await picks(settings, es, user, unit)
    if not chosen:
        return []
    resp = await es.options(ignore_status=404).search(
        index=index, size=len(chosen), query={"ids": {"values": [p["feedback_id"] for p in chosen]}},
        source=["unit", "language", "week", "received_at", "text"])
    by_id = {h["_id"]: h["_source"] for h in resp.get("hits", {}).get("hits", [])}
    return [thanks.training_row(by_id[p["feedback_id"]], units().get(by_id[p["feedback_id"]].get("unit")))
            for p in chosen if p["feedback_id"] in by_id]


async def pick(settings: Settings, es: Any, user: str, feedback_id: str) -> dict[str, Any]:
    """Add a thank-you of the user's areas to the training set: 404 outside them or when the item
    is not thanks; picking twice keeps one pick."""
    _bad_id(feedback_id)
    index = user_index(settings, user)
    resp = await es.options(ignore_status=404).search(
        index=index, size=1, source=["unit", "service_area"],
        query={"bool": {"filter": [{"ids": {"values": [feedback_id]}}, thanks.thanks_filter()]}})
    hits = resp.get("hits", {}).get("hits", [])
    if not hits:
        raise HTTPException(404, {"error": "not_found", "errors": [
            {"field": "feedback_id", "problem": f"no thanks {feedback_id!r} in your service areas"}]})
    src = hits[0]["_source"]
    record = {"feedback_id": feedback_id, "unit": src["unit"], "service_area": src.get("service_area"),
              "picked_by": user, "picked_at": utc_now()}
    name = await async_ensure_index(es, settings.index_alias, "training")
    result = await es.options(ignore_status=409).index(index=name, id=feedback_id, document=record, op_type="create",
                                                       refresh="wait_for")
    created = result.get("result") == "created"
    if created:
        metrics.THANKS_QUOTES_PICKED.inc()
        log.info("thanks_quote_picked", feedback_id=feedback_id, unit=src["unit"], user=user)
    return {**record, "created": created}


async def unpick(settings: Settings, es: Any, user: str, feedback_id: str) -> None:
    """Remove a pick of the user's units; 404 when there is none in the user's areas."""
    _bad_id(feedback_id)
    mine = {p["feedback_id"] for p in await picks(settings, es, user)}
    if feedback_id not in mine:
        raise HTTPException(404, {"error": "not_found", "errors": [
            {"field": "feedback_id", "problem": f"no pick {feedback_id!r} in your service areas"}]})
    await es.delete(index=training_index(settings.index_alias), id=feedback_id, refresh="wait_for")
    log.info("thanks_quote_unpicked", feedback_id=feedback_id, user=user)


def _attachment(body: str, media_type: str, filename: str) -> Response:
    return Response(body.encode("utf-8"), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def thanks_router(settings: Settings, state: dict[str, Any], current: Callable[[Request], Any],
                  api_user: Callable[..., str], headers: Callable[[Response], Response]) -> APIRouter:
    """The thanks page and its endpoints; ``current`` and ``api_user`` are the console's session
    checks, ``headers`` its security headers."""
    router = APIRouter(include_in_schema=False)

    async def form_session(request: Request) -> Any:
        session = current(request)
        if session is None:
            return None
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not hmac.compare_digest((form.get("csrf") or [""])[0].encode(), session.csrf.encode()):
            raise HTTPException(403, {"error": "csrf", "errors": [
                {"field": "csrf", "problem": "missing or wrong CSRF token"}]})
        return session

    @router.get("/console/thanks")
    async def thanks_page(request: Request, unit: str | None = None) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        areas = lead_areas(settings, session.user)
        unit = _unit_param(areas, unit)
        items = await recent_thanks(settings, state["es"], session.user, unit)
        picked = {p["feedback_id"] for p in await picks(settings, state["es"], session.user)}
        for item in items:
            u = units().get(item.get("unit"))
            item["unit_name"] = u.names["fi"] if u else item.get("unit")
            item["picked"] = item["feedback_id"] in picked
        mine = sorted((u for u in units().values() if covers_unit(areas, u.code)),
                      key=lambda u: (u.service_area, u.names["fi"]))
        query = f"?unit={unit}" if unit else ""
        return headers(templates.TemplateResponse(request, "thanks.html", {
            "user": session.user, "csrf": session.csrf, "items": items, "unit": unit, "units": mine,
            "days": RECENT_DAYS, "picked_count": len(picked), "query": query}))

    @router.post("/console/thanks/{feedback_id}/pick")
    async def pick_form(feedback_id: str, request: Request) -> Response:
        session = await form_session(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        await pick(settings, state["es"], session.user, feedback_id)
        return RedirectResponse(f"/console/thanks#item-{feedback_id}", status_code=303)

    @router.post("/console/thanks/{feedback_id}/unpick")
    async def unpick_form(feedback_id: str, request: Request) -> Response:
        session = await form_session(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        await unpick(settings, state["es"], session.user, feedback_id)
        return RedirectResponse(f"/console/thanks#item-{feedback_id}", status_code=303)

    @router.post("/console/api/thanks/picks", status_code=201)
    async def pick_json(body: PickIn, user: str = Depends(api_user)) -> dict[str, Any]:
        return await pick(settings, state["es"], user, body.feedback_id)

    @router.get("/console/api/thanks")
    async def thanks_list(unit: str | None = None, user: str = Depends(api_user)) -> dict[str, Any]:
        unit = _unit_param(lead_areas(settings, user), unit)
        return {"days": RECENT_DAYS, "items": await recent_thanks(settings, state["es"], user, unit)}

    @router.get("/console/thanks/training.{fmt}")
    async def export(fmt: str, unit: str | None = None, user: str = Depends(api_user)) -> Response:
        if fmt not in ("csv", "md"):
            raise HTTPException(404, {"error": "not_found", "errors": [
                {"field": "format", "problem": "training.csv or training.md"}]})
        unit = _unit_param(lead_areas(settings, user), unit)
        rows = await training_rows(settings, state["es"], user, unit)
        name = f"thanks-training-{unit or 'all'}"
        log.info("thanks_training_exported", user=user, unit=unit, rows=len(rows), format=fmt)
        if fmt == "csv":
            return _attachment(thanks.training_csv(rows), "text/csv; charset=utf-8", f"{name}.csv")
        title = "Kiitokset tiimille / Tack till teamet / Thanks to the team"
        return _attachment(thanks.training_markdown(rows, title), "text/markdown; charset=utf-8", f"{name}.md")

    return router
