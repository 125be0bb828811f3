"""The service-lead console: pick unit, themes and period, see what matches, write the
message in Finnish, Swedish and/or English, preview the email, publish.

Plain HTML pages (Jinja2 templates in services/templates/) and a little vanilla JS
(services/static/console.js) over the JSON endpoints below; no build step.

Authentication: the login form takes the user's API token (settings.api_tokens) and
answers with a signed, HttpOnly, SameSite=Strict session cookie (pipelines/
console_session.py). The cookie carries a fingerprint of the token, so revoking a
token ends its sessions. Every state-changing JSON call also needs the session's
CSRF token in ``X-CSRF-Token``. Publishing goes through the same event and topic as
``POST /v1/actions``: the action records who (published_by) and when
(published_at), and the closure worker copies every action into the audit store
``<alias>-actions`` that the console and the public board read.

``console_router`` also mounts the public board (services/apps/board.py) and the privacy
endpoints (services/apps/privacy_api.py), so services/apps/api.py includes one router.
"""
from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from pipelines import console_session as sessions
from pipelines.actions import ActionIn, Messages, action_event
from pipelines.clock import utc_iso
from pipelines.closure import matching_query
from pipelines.closure_stats import closure_stats, closure_stats_query
from pipelines.input_checks import identifier
from pipelines.messages import render
from pipelines.optout import opt_out_url
from pipelines.taxonomy import themes
from pipelines.units import units
from schemas.validate import validate_event
from services import metrics
from services.adapters.kafka_io import dumps
from services.apps.http_common import send_or_503
from services.apps.lead_scope import (Areas, covers_unit, lead_areas, readable_index, require_unit, unit_codes,
                                      user_index)
from services.logs import get_logger
from services.apps.throttle import AuthGuard
from services.apps.tokens import token_user
from services.apps.thanks_console import thanks_router
from services.apps.urgent_console import urgent_router
from services.apps.insights_console import insights_console_router
from services.settings import Settings
from services.adapters.stores import actions_index
from services.topics import CLOSURE_ACTIONS
from services.apps.web import STATIC_DIR, templates

log = get_logger("console")
COOKIE = "feedback_console"
ASSETS = {"console.js": "text/javascript", "style.css": "text/css"}
# Pages carry no inline script or style, so the policy can forbid both.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
EXAMPLE_REF = "r_" + "0" * 24


class Selection(ActionIn):
    """Unit, themes and period: enough to count matches before any message is written."""

    messages: Messages | None = None  # type: ignore[assignment]


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unit: identifier(64, min_length=1)
    messages: Messages


def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def preview_request(event: dict[str, Any]) -> dict[str, Any]:
    """Search body: matching feedback, and how many distinct consenting respondents."""
    return {"size": 0, "query": matching_query(event), "track_total_hits": True,
            "aggs": {"consenting": {"filter": {"term": {"follow_up_consent": True}},
                                    "aggs": {"people": {"cardinality": {"field": "respondent_ref"}}}}}}


async def preview_counts(settings: Settings, state: dict[str, Any], body: ActionIn, user: str) -> dict[str, int]:
    """How much feedback an action would answer and how many consenting respondents would hear of
    it (the console's and the API's one preview): only for a unit in the lead's areas, and
    exact counts past Elasticsearch's default 10,000 (``track_total_hits``)."""
    areas = lead_areas(settings, user)
    require_unit(areas, body.unit)
    event = {"unit": body.unit, "themes": body.themes,
             "period": {"from": utc_iso(body.period.from_), "to": utc_iso(body.period.to)}}
    resp = await state["es"].search(index=readable_index(settings.index_alias, areas), **preview_request(event))
    return {"feedback": resp["hits"]["total"]["value"],
            "consenting_respondents": resp["aggregations"]["consenting"]["people"]["value"]}


async def publish_action(settings: Settings, state: dict[str, Any], body: ActionIn, user: str,
                         via: str) -> dict[str, Any]:
    """Publish a lead's action on closure.actions (the console's and the API's one way): only for a
    unit in the lead's areas, 503 while Kafka cannot take it."""
    require_unit(lead_areas(settings, user), body.unit)
    event = action_event(body, user)
    validate_event("closure.actions", event)
    await send_or_503(state["producer"], settings.topic(CLOSURE_ACTIONS.name), dumps(event),
                      event["action_id"].encode(), settings.ingest_kafka_timeout_s)
    log.info("action_published", action_id=event["action_id"], unit=event["unit"], published_by=user, via=via)
    return {"action_id": event["action_id"], "published_by": user, "published_at": event["published_at"]}


def actions_query(unit: str | None, areas: Areas) -> dict[str, Any]:
    """Published actions of ``unit`` (or all), only of units in ``areas`` (None: every area).

    The audit store has no per-area aliases: actions are filtered by their unit here.
    """
    clauses: list[dict[str, Any]] = [{"term": {"unit": unit}}] if unit else []
    allowed = unit_codes(areas)
    if allowed is not None:
        clauses.append({"terms": {"unit": allowed}})
    return {"bool": {"filter": clauses}}


def email_previews(settings: Settings, unit: str, messages: dict[str, str]) -> list[dict[str, str]]:
    """What a respondent who chose each language would get (with the language fallback)."""
    key = settings.pseudonym_key.get_secret_value().encode()
    names = units()[unit].names if unit in units() else {"fi": unit}
    link = opt_out_url(settings.public_base_url, key, EXAMPLE_REF, time.time())
    out = []
    for lang in ("fi", "sv", "en"):
        msg = render(lang, messages, names, link)
        out.append({"for_language": lang, "language": msg.language, "subject": msg.subject, "body": msg.body,
                    "from": settings.mail_from})
    return out


def _console(settings: Settings, state: dict[str, Any], guard: AuthGuard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    key = sessions.session_key(settings.pseudonym_key.get_secret_value().encode())
    lifetime_s = settings.console_session_hours * 3600
    secure = settings.public_base_url.startswith("https://")

    def current(request: Request) -> sessions.Session | None:
        session = sessions.decode(key, request.cookies.get(COOKIE))
        if session is None:
            return None
        token = settings.api_tokens.get(session.user)
        if token is None or not hmac.compare_digest(
                sessions.token_fingerprint(key, token.get_secret_value()).encode(), session.token_fp.encode()):
            return None  # the user's token was removed or changed: the session ends with it
        return session

    def api_user(request: Request) -> str:
        session = current(request)
        if session is None:
            raise HTTPException(401, {"error": "unauthorized", "errors": [
                {"field": "session", "problem": "sign in at /console/login"}]})
        if request.method != "GET" and not hmac.compare_digest(
                request.headers.get("x-csrf-token", "").encode(), session.csrf.encode()):
            raise HTTPException(403, {"error": "csrf", "errors": [
                {"field": "X-CSRF-Token", "problem": "missing or wrong CSRF token"}]})
        return session.user

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, {"error": "not_found"})
        resp = FileResponse(STATIC_DIR / name, media_type=ASSETS[name])
        resp.headers["Cache-Control"] = "public, max-age=300"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    @router.get("/console/login")
    async def login_page(request: Request) -> Response:
        if current(request):
            return RedirectResponse("/console", status_code=303)
        return security_headers(templates.TemplateResponse(request, "login.html", {"error": None}))

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        client = guard.client(request)
        wait = guard.retry_after(client, "console")
        if wait:
            metrics.CONSOLE_LOGINS.labels("throttled").inc()
            resp = templates.TemplateResponse(
                request, "login.html", {"error": "Too many attempts; wait a few minutes."}, status_code=429)
            resp.headers["Retry-After"] = str(wait)
            return security_headers(resp)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        user = token_user(settings, token)
        if user is None:
            guard.failed(client, "console")
            metrics.CONSOLE_LOGINS.labels("rejected").inc()
            log.info("console_login_rejected")
            return security_headers(templates.TemplateResponse(
                request, "login.html", {"error": "Unknown token."}, status_code=401))
        session = sessions.new_session(key, user, token, lifetime_s)
        resp = RedirectResponse("/console", status_code=303)
        resp.set_cookie(COOKIE, sessions.encode(key, session), max_age=int(lifetime_s), httponly=True,
                        samesite="strict", secure=secure, path="/")
        metrics.CONSOLE_LOGINS.labels("ok").inc()
        log.info("console_login", user=user)
        return resp

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        session = current(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if session and hmac.compare_digest((form.get("csrf") or [""])[0].encode(), session.csrf.encode()):
            log.info("console_logout", user=session.user)
        resp = RedirectResponse("/console/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @router.get("/console")
    async def console_page(request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/console/login", status_code=303)
        areas = lead_areas(settings, session.user)
        context = {
            "user": session.user, "csrf": session.csrf,
            "units": sorted((u for u in units().values() if covers_unit(areas, u.code)),
                            key=lambda u: (u.service_area, u.names["fi"])),
            "themes": themes(), "public_base_url": settings.public_base_url,
        }
        return security_headers(templates.TemplateResponse(request, "console.html", context))

    @router.post("/console/api/preview")
    async def preview(body: Selection, user: str = Depends(api_user)) -> dict[str, Any]:
        return await preview_counts(settings, state, body, user)

    @router.post("/console/api/render")
    async def render_preview(body: RenderIn, user: str = Depends(api_user)) -> dict[str, Any]:  # noqa: ARG001
        return {"previews": email_previews(settings, body.unit, body.messages.model_dump(exclude_none=True))}

    @router.post("/console/api/publish", status_code=202)
    async def publish(body: ActionIn, user: str = Depends(api_user)) -> dict[str, Any]:
        return await publish_action(settings, state, body, user, via="console")

    @router.get("/console/api/actions")
    async def recent_actions(unit: str | None = None, user: str = Depends(api_user)) -> dict[str, Any]:
        resp = await state["es"].options(ignore_status=404).search(
            index=actions_index(settings.index_alias), size=50, query=actions_query(unit, lead_areas(settings, user)),
            sort=[{"published_at": "desc"}])
        hits = resp.get("hits", {}).get("hits", [])
        return {"actions": [h["_source"] for h in hits]}

    @router.get("/console/api/stats")
    async def stats(user: str = Depends(api_user)) -> dict[str, Any]:
        index = user_index(settings, user)  # 403 first for a user with no areas
        resp = await state["es"].search(index=index, **closure_stats_query(settings.closure_metrics_window_days))
        return {"window_days": settings.closure_metrics_window_days, "units": [
            {"unit": s.unit, "feedback": s.feedback, "closed": s.closed, "closure_rate": round(s.rate, 4),
             "median_hours_to_closure": s.median_hours} for s in closure_stats(resp).values()]}

    router.include_router(urgent_router(settings, state, current, api_user, security_headers))
    router.include_router(thanks_router(settings, state, current, api_user, security_headers))
    router.include_router(insights_console_router(settings, state, current, api_user, security_headers))
    return router


def console_router(settings: Settings, state: dict[str, Any], guard: AuthGuard) -> APIRouter:
    """Everything services/apps/api.py serves besides its own endpoints: console, board, privacy.

    ``state`` is the API's lifespan state (``es``: AsyncElasticsearch, ``producer``:
    AIOKafkaProducer), read at request time; ``guard`` the API's failed-credential throttle.
    """
    from services.apps.board import board_router
    from services.apps.privacy_api import privacy_router

    router = APIRouter()
    router.include_router(_console(settings, state, guard))
    router.include_router(board_router(settings, state))
    router.include_router(privacy_router(settings, state, guard))
    return router
