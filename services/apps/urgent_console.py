"""The console's urgent page: a lead's unacknowledged urgent items, and acknowledging one.

The list comes from the urgent worker's state store (``<alias>-urgent``, no area aliases:
filtered here by the lead's unit codes, as the recent actions are) and the redacted text
from the feedback alias through the lead's area aliases, so a lead sees and acknowledges
only items of their own service areas. Acknowledging publishes a feedback.urgent_acks
event; the worker records it (and so stops the escalation) within seconds. Both an HTML
form (no script needed) and a JSON endpoint acknowledge, through the same function.
"""
from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipelines import urgent as domain
from pipelines.clock import utc_now
from pipelines.units import units
from schemas.validate import validate_event
from services.adapters.kafka_io import dumps
from services.adapters.stores import urgent_index
from services.apps.http_common import send_or_503
from services.apps.lead_scope import lead_areas, readable_index, unit_codes
from services.apps.web import templates
from services.logs import get_logger
from services.settings import Settings
from services.topics import URGENT_ACKS

log = get_logger("console")
FEEDBACK_ID = re.compile(r"^[0-9a-f-]{36}$")
LISTED = 200  # the oldest unacknowledged items first; more than this is a backlog to fix elsewhere


def _not_found(feedback_id: str) -> HTTPException:
    return HTTPException(404, {"error": "not_found", "errors": [
        {"field": "feedback_id", "problem": f"no urgent item {feedback_id!r} in your service areas"}]})


async def unacknowledged(settings: Settings, es: Any, user: str) -> list[dict[str, Any]]:
    """The user's unacknowledged urgent items, oldest first, each with its redacted text."""
    areas = lead_areas(settings, user)
    resp = await es.options(ignore_status=404).search(
        index=urgent_index(settings.index_alias), size=LISTED, query=domain.unacknowledged_query(unit_codes(areas)),
        sort=[{"duty_email_sent_at": "asc"}])
    items = [h["_source"] for h in resp.get("hits", {}).get("hits", [])]
    if items:
        texts = await es.options(ignore_status=404).search(
            index=readable_index(settings.index_alias, areas), size=len(items), source=["text"],
            query={"ids": {"values": [i["feedback_id"] for i in items]}})
        by_id = {h["_id"]: h["_source"].get("text") for h in texts.get("hits", {}).get("hits", [])}
        for item in items:
            unit = units().get(item["unit"])
            item["text"] = by_id.get(item["feedback_id"])
            item["unit_name"] = unit.names["fi"] if unit else item["unit"]
    return items


async def acknowledge(settings: Settings, state: dict[str, Any], user: str, feedback_id: str) -> dict[str, Any]:
    """Publish the user's acknowledgement of an item in their areas: 404 outside them or when
    there is no such item, 409 when it was acknowledged already."""
    if not FEEDBACK_ID.match(feedback_id):
        raise HTTPException(422, {"error": "invalid", "errors": [
            {"field": "feedback_id", "problem": "must be a feedback id (36 characters, 0-9 a-f and -)"}]})
    allowed = unit_codes(lead_areas(settings, user))
    query: dict[str, Any] = {"bool": {"filter": [{"ids": {"values": [feedback_id]}}]}}
    if allowed is not None:
        query["bool"]["filter"].append({"terms": {"unit": allowed}})
    resp = await state["es"].options(ignore_status=404).search(index=urgent_index(settings.index_alias), size=1,
                                                               query=query)
    hits = resp.get("hits", {}).get("hits", [])
    if not hits:
        raise _not_found(feedback_id)
    item = hits[0]["_source"]
    if item["status"] == domain.ACKNOWLEDGED:
        raise HTTPException(409, {"error": "already_acknowledged", "errors": [
            {"field": "feedback_id", "problem": f"acknowledged by {item.get('acknowledged_by')} at "
                                                f"{item.get('acknowledged_at')}"}]})
    event = {"schema_version": 1, "feedback_id": feedback_id, "acknowledged_by": user, "acknowledged_at": utc_now()}
    validate_event(URGENT_ACKS.schema, event)
    await send_or_503(state["producer"], settings.topic(URGENT_ACKS.name), dumps(event), feedback_id.encode(),
                      settings.ingest_kafka_timeout_s)
    log.info("urgent_acknowledged_in_console", feedback_id=feedback_id, unit=item["unit"], user=user)
    return {"feedback_id": feedback_id, "acknowledged_by": user, "acknowledged_at": event["acknowledged_at"]}


def urgent_router(settings: Settings, state: dict[str, Any], current: Callable[[Request], Any],
                  api_user: Callable[..., str], headers: Callable[[Response], Response]) -> APIRouter:
    """The urgent page and its endpoints; ``current`` and ``api_user`` are the console's session
    checks, ``headers`` its security headers."""
    router = APIRouter(include_in_schema=False)

    @router.get("/console/urgent")
    async def urgent_page(request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        items = await unacknowledged(settings, state["es"], session.user)
        return headers(templates.TemplateResponse(request, "urgent.html", {
            "user": session.user, "csrf": session.csrf, "items": items,
            "escalate_after_min": round(settings.urgent_escalate_after_s / 60, 1)}))

    @router.post("/console/urgent/{feedback_id}/ack")
    async def acknowledge_form(feedback_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not hmac.compare_digest((form.get("csrf") or [""])[0].encode(), session.csrf.encode()):
            raise HTTPException(403, {"error": "csrf", "errors": [
                {"field": "csrf", "problem": "missing or wrong CSRF token"}]})
        await acknowledge(settings, state, session.user, feedback_id)
        return RedirectResponse("/console/urgent", status_code=303)

    @router.get("/console/api/urgent")
    async def urgent_list(user: str = Depends(api_user)) -> dict[str, Any]:
        return {"items": await unacknowledged(settings, state["es"], user)}

    @router.post("/console/api/urgent/{feedback_id}/ack", status_code=202)
    async def acknowledge_json(feedback_id: str, user: str = Depends(api_user)) -> dict[str, Any]:
        return await acknowledge(settings, state, user, feedback_id)

    return router
