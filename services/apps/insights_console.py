"""Insights for service leads: key drivers and emerging topics in the API and the console.

Reads the insights jobs' indices (services/ops/insights.py). Those have no per-area aliases:
every document carries ``service_area`` and is filtered here by the lead's areas
(services/apps/lead_scope.py; a lead with none gets 403). Quotes of topics are the redacted
texts read through the lead's area aliases, like every other text the console shows.
A lead promotes a topic to a new theme (a new taxonomy version in ``<alias>-taxonomy-changes``,
never an edit of schemas/taxonomy.json) or dismisses it; both are recorded on the topic with
who and when, and the next run keeps the decision.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from pipelines.clock import utc_now
from pipelines.input_checks import free_text
from pipelines.taxonomy import theme_by_code, taxonomy_version
from pipelines.units import service_areas, units
from services import metrics
from services.adapters.stores import async_ensure_index, insights_index, taxonomy_changes_index
from services.apps.lead_scope import Areas, lead_areas, readable_index
from services.apps.web import templates
from services.logs import get_logger
from services.settings import Settings

log = get_logger("console")
TOPIC_ID = r"^t_[0-9a-f]{20}$"
Prototypes = Annotated[list[free_text(300, 3)], Field(max_length=10)]


class PromoteIn(BaseModel):
    """A new theme from an emerging topic: code, names and prototype sentences."""

    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{2,40}$")]
    fi: free_text(80, 2)
    sv: free_text(80, 2)
    en: free_text(80, 2)
    description: free_text(400, 0) = ""
    prototypes_fi: Annotated[list[free_text(300, 3)], Field(min_length=1, max_length=10)]
    prototypes_sv: Prototypes = []
    prototypes_en: Prototypes = []


def _forbidden_if_none(areas: Areas) -> None:
    if areas is not None and not areas:
        raise HTTPException(403, {"error": "forbidden", "errors": [
            {"field": "Authorization", "problem": "this user has no service areas; an administrator lists them "
                                                  "in FEEDBACK_LEAD_SERVICE_AREAS"}]})


def _area_filter(areas: Areas, service_area: str | None) -> list[dict[str, Any]]:
    """Filter clauses: the lead's areas, narrowed to ``service_area`` if given (403 outside them)."""
    _forbidden_if_none(areas)
    if service_area is not None:
        if service_area not in service_areas():
            raise HTTPException(422, {"error": "invalid", "errors": [
                {"field": "service_area", "problem": f"unknown service area {service_area!r}"}]})
        if areas is not None and service_area not in areas:
            raise HTTPException(403, {"error": "forbidden", "errors": [
                {"field": "service_area", "problem": f"{service_area!r} is outside your service areas"}]})
        return [{"term": {"service_area": service_area}}]
    return [] if areas is None else [{"terms": {"service_area": sorted(areas)}}]


async def latest_drivers(settings: Settings, es: Any, areas: Areas, service_area: str | None = None,
                         unit: str | None = None) -> dict[str, Any]:
    """The newest key-driver run: groups (units and areas) in the lead's areas, each with its ranked themes."""
    index = insights_index(settings.index_alias, "drivers")
    clauses = _area_filter(areas, service_area)
    if unit is not None:
        if unit not in units():
            raise HTTPException(422, {"error": "invalid", "errors": [
                {"field": "unit", "problem": f"unknown unit {unit!r}"}]})
        clauses.append({"term": {"unit": unit}})
    newest = await es.options(ignore_status=404).search(index=index, size=1, sort=[{"computed_at": "desc"}],
                                                         query={"bool": {"filter": clauses}}, source=["run_id"])
    hits = newest.get("hits", {}).get("hits", [])
    if not hits:
        return {"run_id": None, "groups": []}
    run_id = hits[0]["_source"]["run_id"]
    resp = await es.search(index=index, size=10000, query={"bool": {"filter": [*clauses, {"term": {"run_id": run_id}}]}},
                           sort=[{"scope": "desc"}, {"service_area": "asc"}, {"unit": "asc"}])
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for h in resp["hits"]["hits"]:
        d = h["_source"]
        key = (d["scope"], d["unit"] or d["service_area"])
        g = groups.setdefault(key, {"drivers": [], "too_rare": []})
        if d["theme"] is None:
            g.update({k: d.get(k) for k in ("scope", "unit", "unit_name", "service_area", "outcome", "n",
                                            "mean_satisfaction", "status", "reason", "period_from", "period_to",
                                            "computed_at")})
        elif d.get("too_rare"):
            g["too_rare"].append({"theme": d["theme"], "n": d["theme_n"]})
        else:
            g["drivers"].append({k: d.get(k) for k in ("rank", "theme", "theme_label_fi", "theme_label_sv",
                                                        "theme_label_en", "theme_n", "prevalence", "effect",
                                                        "effect_low", "effect_high", "impact", "impact_low",
                                                        "impact_high", "clear")})
    for g in groups.values():
        g["drivers"].sort(key=lambda r: r["rank"])
    return {"run_id": run_id, "groups": list(groups.values())}


async def topics(settings: Settings, es: Any, areas: Areas, service_area: str | None = None,
                 include_all: bool = False) -> list[dict[str, Any]]:
    """The lead's topics of the newest run per area (emerging and undecided unless ``include_all``),
    each with its quotes: redacted texts read through the lead's area aliases."""
    clauses = _area_filter(areas, service_area)
    if not include_all:
        clauses += [{"term": {"emerging": True}}, {"term": {"status": "new"}}]
    resp = await es.options(ignore_status=404).search(
        index=insights_index(settings.index_alias, "emerging"), size=200, query={"bool": {"filter": clauses}},
        sort=[{"computed_at": "desc"}, {"growth": "desc"}], source={"excludes": ["centroid"]})
    found = [h["_source"] for h in resp.get("hits", {}).get("hits", [])]
    newest: dict[str, str] = {}
    for t in found:
        newest.setdefault(t["service_area"], t["computed_at"])
    found = [t for t in found if t["computed_at"] == newest[t["service_area"]] or t["status"] != "new"]
    ids = [q for t in found for q in t["quote_ids"]]
    texts: dict[str, str] = {}
    if ids:
        got = await es.options(ignore_status=404).search(index=readable_index(settings.index_alias, areas),
                                                         size=len(ids), source=["text"], query={"ids": {"values": ids}})
        texts = {h["_id"]: h["_source"].get("text") for h in got.get("hits", {}).get("hits", [])}
    for t in found:
        t["quotes"] = [texts[q] for q in t["quote_ids"] if q in texts]
    return found


async def _topic_in_areas(settings: Settings, es: Any, areas: Areas, topic_id: str) -> dict[str, Any]:
    import re

    if not re.match(TOPIC_ID, topic_id):
        raise HTTPException(422, {"error": "invalid", "errors": [
            {"field": "topic_id", "problem": "must look like t_ and 20 hex digits"}]})
    clauses = [{"ids": {"values": [topic_id]}}, *_area_filter(areas, None)]
    resp = await es.options(ignore_status=404).search(index=insights_index(settings.index_alias, "emerging"), size=1,
                                                      query={"bool": {"filter": clauses}})
    hits = resp.get("hits", {}).get("hits", [])
    if not hits:
        raise HTTPException(404, {"error": "not_found", "errors": [
            {"field": "topic_id", "problem": f"no topic {topic_id!r} in your service areas"}]})
    topic = hits[0]["_source"]
    if topic["status"] != "new":
        raise HTTPException(409, {"error": "already_decided", "errors": [
            {"field": "topic_id", "problem": f"{topic['status']} by {topic.get('decided_by')} at {topic.get('decided_at')}"}]})
    return topic


async def dismiss(settings: Settings, es: Any, user: str, topic_id: str) -> dict[str, Any]:
    """Mark a topic of the user's areas dismissed (the next runs keep it dismissed)."""
    await _topic_in_areas(settings, es, lead_areas(settings, user), topic_id)
    decided = {"status": "dismissed", "decided_by": user, "decided_at": utc_now()}
    await es.update(index=insights_index(settings.index_alias, "emerging"), id=topic_id, doc=decided,
                    refresh="wait_for")
    metrics.INSIGHTS_DECISIONS.labels("dismissed").inc()
    log.info("emerging_topic_dismissed", topic_id=topic_id, user=user)
    return {"topic_id": topic_id, **decided}


async def promote(settings: Settings, es: Any, user: str, topic_id: str, body: PromoteIn) -> dict[str, Any]:
    """Write a new taxonomy version that adds ``body`` as a theme, and mark the topic promoted."""
    topic = await _topic_in_areas(settings, es, lead_areas(settings, user), topic_id)
    if body.code in theme_by_code():
        raise HTTPException(409, {"error": "exists", "errors": [
            {"field": "code", "problem": f"theme {body.code!r} exists in taxonomy {taxonomy_version()}"}]})
    index = await async_ensure_index(es, settings.index_alias, "taxonomy-changes")
    now = utc_now()
    for _ in range(5):  # another promotion may take the next version number first
        count = (await es.count(index=index))["count"]
        previous = taxonomy_version() if count == 0 else f"{taxonomy_version()}+{count}"
        change = {"version": f"{taxonomy_version()}+{count + 1}", "based_on": previous, "change": "add_theme",
                  **body.model_dump(), "service_area": topic["service_area"], "source_topic_id": topic_id,
                  "promoted_by": user, "promoted_at": now}
        resp = await es.options(ignore_status=409).index(index=index, id=change["version"], document=change,
                                                          op_type="create", refresh="wait_for")
        if resp.meta.status != 409:
            break
    else:
        raise HTTPException(409, {"error": "busy", "errors": [
            {"field": "code", "problem": "other promotions took every version number tried; try again"}]})
    decided = {"status": "promoted", "decided_by": user, "decided_at": now, "promoted_theme": body.code}
    await es.update(index=insights_index(settings.index_alias, "emerging"), id=topic_id, doc=decided,
                    refresh="wait_for")
    metrics.INSIGHTS_DECISIONS.labels("promoted").inc()
    log.info("emerging_topic_promoted", topic_id=topic_id, user=user, theme=body.code, version=change["version"])
    return {"topic_id": topic_id, "taxonomy_version": change["version"], **decided}


def bar(driver: dict[str, Any], scale: float, width: int = 240) -> dict[str, float]:
    """SVG geometry of one impact bar with its interval: x of the bar, its width, the whisker ends.
    Zero sits in the middle; ``scale`` is the largest magnitude drawn."""
    mid, half = width / 2, width / 2 - 4
    px = (lambda v: mid + half * max(-1.0, min(1.0, v / scale))) if scale else (lambda v: mid)
    x0, x1 = sorted((px(0.0), px(driver["impact"])))
    return {"x": round(x0, 1), "w": round(max(x1 - x0, 1.0), 1), "lo": round(px(driver["impact_low"]), 1),
            "hi": round(px(driver["impact_high"]), 1), "mid": mid, "width": width}


def insights_api_router(settings: Settings, state: dict[str, Any], user: Callable[..., str]) -> APIRouter:
    """``GET /v1/insights/drivers`` and ``/v1/insights/emerging`` for bearer-token clients."""
    router = APIRouter(tags=["insights"])

    @router.get("/v1/insights/drivers", summary="Key drivers of the newest run, per unit and service area")
    async def drivers(service_area: str | None = None, unit: str | None = None,
                      who: str = Depends(user)) -> dict[str, Any]:
        return await latest_drivers(settings, state["es"], lead_areas(settings, who), service_area, unit)

    @router.get("/v1/insights/emerging", summary="Emerging topics with redacted quotes")
    async def emerging(service_area: str | None = None,
                       all: bool = Query(False, description="Also steady and decided topics."),  # noqa: A002
                       who: str = Depends(user)) -> dict[str, Any]:
        return {"topics": await topics(settings, state["es"], lead_areas(settings, who), service_area, all)}

    return router


def insights_console_router(settings: Settings, state: dict[str, Any], current: Callable[[Request], Any],
                            api_user: Callable[..., str], headers: Callable[[Response], Response]) -> APIRouter:
    """The console's insights page and its promote/dismiss forms and JSON endpoints."""
    router = APIRouter(include_in_schema=False)

    async def form_of(request: Request, session: Any) -> dict[str, list[str]]:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not hmac.compare_digest((form.get("csrf") or [""])[0].encode(), session.csrf.encode()):
            raise HTTPException(403, {"error": "csrf", "errors": [{"field": "csrf", "problem": "missing or wrong CSRF token"}]})
        return form

    @router.get("/console/insights")
    async def page(request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        areas = lead_areas(settings, session.user)
        data = await latest_drivers(settings, state["es"], areas)
        for g in data["groups"]:
            scale = max([abs(v) for d in g["drivers"] for v in (d["impact_low"], d["impact_high"])] or [0.0])
            for d in g["drivers"]:
                d["bar"] = bar(d, scale)
        found = await topics(settings, state["es"], areas)
        return headers(templates.TemplateResponse(request, "insights.html", {
            "user": session.user, "csrf": session.csrf, "run_id": data["run_id"],
            "units": [g for g in data["groups"] if g.get("scope") == "unit"],
            "areas": [g for g in data["groups"] if g.get("scope") == "service_area"], "topics": found,
            "area_names": {code: names["fi"] for code, names in service_areas().items()}}))

    @router.post("/console/insights/topics/{topic_id}/dismiss")
    async def dismiss_form(topic_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        await form_of(request, session)
        await dismiss(settings, state["es"], session.user, topic_id)
        return RedirectResponse("/console/insights", status_code=303)

    @router.post("/console/insights/topics/{topic_id}/promote")
    async def promote_form(topic_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        form = await form_of(request, session)
        one = {k: (form.get(k) or [""])[0] for k in ("code", "fi", "sv", "en", "description")}
        lists = {f"prototypes_{lang}": [line.strip() for line in (form.get(f"prototypes_{lang}") or [""])[0].splitlines()
                                        if line.strip()] for lang in ("fi", "sv", "en")}
        try:
            body = PromoteIn(**one, **lists)
        except ValidationError as exc:
            raise HTTPException(422, {"error": "invalid", "errors": [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]}) from exc
        await promote(settings, state["es"], session.user, topic_id, body)
        return RedirectResponse("/console/insights", status_code=303)

    @router.post("/console/api/insights/topics/{topic_id}/dismiss")
    async def dismiss_json(topic_id: str, user: str = Depends(api_user)) -> dict[str, Any]:
        return await dismiss(settings, state["es"], user, topic_id)

    @router.post("/console/api/insights/topics/{topic_id}/promote")
    async def promote_json(topic_id: str, body: PromoteIn, user: str = Depends(api_user)) -> dict[str, Any]:
        return await promote(settings, state["es"], user, topic_id, body)

    return router
