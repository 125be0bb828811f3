"""Privacy endpoints of the API: the opt-out link and erasure.

``GET /v1/opt-out?ref=&token=`` (the link in every message) only shows a confirmation page
with a button: mail scanners and link previews fetch links, and must not unsubscribe anyone.
``POST`` (that button, or RFC 8058 one-click unsubscribe from mail clients) withdraws
follow-up consent: it reads the respondent's current record from the compacted
respondent.contacts topic (one partition scanned, services/adapters/contacts_store.py) and
publishes it again with ``consent.follow_up = false``. Links expire after
settings.opt_out_link_days (pipelines/optout.py); an expired one says how else to opt out. The notifier checks consent at send time, so nothing
more is sent; the respondent's documents get ``follow_up_consent = false`` so the
console's counts drop at once.

``POST /v1/erasure`` (bearer token of a user in settings.privacy_officers) erases a
respondent named by respondent_ref, email or phone (services/ops/erasure.py).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from elasticsearch.helpers import async_bulk
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, model_validator

from pipelines.clock import utc_now
from pipelines.contacts import withdraw_consent
from pipelines.input_checks import identifier
from pipelines.optout import opt_out_status
from schemas.validate import validate_event
from services import metrics
from services.adapters.contacts_store import read_contact
from services.ops.erasure import erase
from services.adapters.kafka_io import dumps
from services.logs import get_logger
from services.workers.faults import is_transient
from services.settings import Settings
from services.apps.http_common import KAFKA_RETRY_AFTER_S
from services.apps.throttle import AuthGuard
from services.apps.tokens import bearer_user
from services.topics import RESPONDENT_CONTACTS
from services.apps.web import templates

log = get_logger("privacy")
OPT_OUT_TEXT = {
    "fi": {"title": "Viestien peruminen",
           "withdrawn": "Suostumuksesi on peruttu. Emme enää lähetä sinulle viestejä palautteesi perusteella "
                        "tehdyistä muutoksista.",
           "already_withdrawn": "Suostumuksesi oli jo peruttu. Emme lähetä sinulle näitä viestejä.",
           "no_contact": "Yhteystietojasi ei ole meillä tallessa, joten peruttavaa ei ole.",
           "invalid": "Linkki ei kelpaa. Tarkista, että kopioit sen kokonaan.",
           "confirm": "Haluatko, ettemme enää lähetä sinulle viestejä palautteesi perusteella tehdyistä "
                      "muutoksista?",
           "button": "Peru viestit",
           "unavailable": "Perumista ei voitu juuri nyt tallentaa. Yritä hetken päästä uudelleen samasta "
                          "linkistä.",
           "expired": "Linkki on vanhentunut. Voit perua viestit uusimman viestimme linkistä tai kirjoittamalla "
                      "osoitteeseen {contact}."},
    "sv": {"title": "Avbeställning",
           "withdrawn": "Ditt samtycke har återkallats. Vi skickar inte längre meddelanden om förändringar "
                        "som gjorts utifrån din respons.",
           "already_withdrawn": "Ditt samtycke var redan återkallat. Vi skickar inga sådana meddelanden.",
           "no_contact": "Vi har inga kontaktuppgifter sparade för dig, så det finns inget att avbeställa.",
           "invalid": "Länken är ogiltig. Kontrollera att du kopierade hela länken.",
           "confirm": "Vill du att vi slutar skicka meddelanden om förändringar som gjorts utifrån din respons?",
           "button": "Avbeställ meddelanden",
           "unavailable": "Avbeställningen kunde inte sparas just nu. Försök igen om en stund med samma länk.",
           "expired": "Länken har gått ut. Du kan avbeställa via länken i vårt senaste meddelande eller genom att "
                      "skriva till {contact}."},
    "en": {"title": "Unsubscribe",
           "withdrawn": "Your consent has been withdrawn. We will no longer send you messages about changes "
                        "made because of your feedback.",
           "already_withdrawn": "Your consent had already been withdrawn. We do not send you these messages.",
           "no_contact": "We hold no contact details for you, so there is nothing to unsubscribe.",
           "invalid": "This link is not valid. Please check that you copied all of it.",
           "confirm": "Do you want us to stop sending you messages about changes made because of your feedback?",
           "button": "Unsubscribe",
           "unavailable": "Your request could not be saved just now. Please try again in a moment with the same link.",
           "expired": "This link has expired. You can unsubscribe with the link in our latest message, or by "
                      "writing to {contact}."},
}

# HTTP status per outcome of an opt-out link; the rest are 200.
STATUS = {"invalid": 403, "expired": 410, "unavailable": 503}


class ErasureIn(BaseModel):
    """Exactly one of: the pseudonymous ref, the email, or the phone number."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    respondent_ref: identifier(64) | None = None
    email: identifier(254) | None = None
    phone: identifier(32) | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ErasureIn":
        if sum(1 for v in (self.respondent_ref, self.email, self.phone) if v) != 1:
            raise ValueError("name exactly one of respondent_ref, email or phone")
        return self


def _language(request: Request) -> str:
    accept = request.headers.get("accept-language", "")
    for part in accept.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in OPT_OUT_TEXT:
            return code
    return "fi"


def privacy_router(settings: Settings, state: dict[str, Any], guard: AuthGuard) -> APIRouter:
    router = APIRouter(tags=["privacy"])
    key = settings.pseudonym_key.get_secret_value().encode()
    bearer = bearer_user(settings, guard)

    async def mark_no_consent(ref: str) -> int:
        """follow_up_consent=false on the respondent's documents (console counts, closure matching)."""
        es = state["es"]
        resp = await es.search(index=settings.index_alias, size=10_000, _source=False,
                                query={"term": {"respondent_ref": ref}})
        actions = [{"_op_type": "update", "_index": h["_index"], "_id": h["_id"], "retry_on_conflict": 3,
                    "doc": {"follow_up_consent": False}} for h in resp["hits"]["hits"]]
        if actions:
            await async_bulk(es, actions, raise_on_error=False)
        return len(actions)

    async def withdraw(ref: str) -> tuple[str, str]:
        """(outcome, the respondent's language)."""
        record = await asyncio.get_running_loop().run_in_executor(None, read_contact, settings, ref)
        if record is None:
            return "no_contact", "fi"
        lang = record.get("language") or "fi"
        if not record["consent"]["follow_up"]:
            return "already_withdrawn", lang
        updated = withdraw_consent(record, utc_now())
        validate_event("respondent.contacts", updated)
        async with asyncio.timeout(settings.ingest_kafka_timeout_s):
            await state["producer"].send_and_wait(settings.topic(RESPONDENT_CONTACTS.name), dumps(updated),
                                                  key=ref.encode())
        try:
            await mark_no_consent(ref)
        except Exception as exc:  # noqa: BLE001 - consent is withdrawn; the counts catch up later
            log.warning("opt_out_documents_not_marked", error=type(exc).__name__)
        return "withdrawn", lang

    def link_status(ref: str, token: str) -> str:
        """valid, expired or invalid (counted unless valid: a valid link counts by what it did)."""
        status = opt_out_status(key, ref, token, time.time(), settings.opt_out_link_days * 86_400)
        if status != "valid":
            metrics.OPT_OUTS.labels(status).inc()
        return status

    def page(request: Request, lang: str, outcome: str, ref: str = "", token: str = "") -> Response:
        text = OPT_OUT_TEXT[lang]
        resp = templates.TemplateResponse(request, "opt_out.html", {
            "lang": lang, "title": text["title"], "message": text[outcome].format(contact=settings.mail_from),
            "outcome": outcome, "button": text["button"], "ref": ref, "token": token},
            status_code=STATUS.get(outcome, 200))
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Referrer-Policy"] = "no-referrer"  # the link is a credential
        return resp

    @router.get("/v1/opt-out", response_class=HTMLResponse,
                summary="The link in messages: a confirmation page (changes nothing)")
    async def opt_out_page(request: Request, ref: str = "", token: str = "") -> Response:
        status = link_status(ref, token)
        return page(request, _language(request), "confirm" if status == "valid" else status, ref, token)

    @router.post("/v1/opt-out", summary="Withdraw follow-up consent: the page's button, or RFC 8058 one-click "
                                        "unsubscribe (List-Unsubscribe-Post)")
    async def opt_out(request: Request, ref: str = "", token: str = "") -> Response:
        status = link_status(ref, token)
        if status == "valid":
            try:
                outcome, lang = await withdraw(ref)
            except Exception as exc:  # noqa: BLE001 - Kafka down now (reading or writing): the link works later
                if not is_transient(exc):
                    raise
                outcome, lang = "unavailable", _language(request)
            metrics.OPT_OUTS.labels(outcome).inc()
            log.info("opt_out", outcome=outcome)
        else:
            outcome, lang = status, _language(request)
        if "text/html" in request.headers.get("accept", ""):  # the confirmation page's form
            resp = page(request, lang, outcome)
        else:
            body: dict[str, str] = {"status": outcome}
            if outcome in ("expired", "unavailable"):
                body["problem"] = OPT_OUT_TEXT["en"][outcome].format(contact=settings.mail_from)
            resp = JSONResponse(body, status_code=STATUS.get(outcome, 200))
        if outcome == "unavailable":
            resp.headers["Retry-After"] = str(KAFKA_RETRY_AFTER_S)
        return resp

    def officer(user: str = Depends(bearer)) -> str:
        if user not in settings.privacy_officers:
            raise HTTPException(403, {"error": "forbidden", "errors": [
                {"field": "Authorization", "problem": "this user may not erase respondents"}]})
        return user

    @router.post("/v1/erasure", summary="Erase a respondent: contact, feedback documents, Kafka records")
    async def erasure(body: ErasureIn, who: str = Depends(officer)) -> dict[str, Any]:
        try:
            done = await asyncio.get_running_loop().run_in_executor(
                None, lambda: erase(settings, who, ref=body.respondent_ref, email=body.email, phone=body.phone))
        except ValueError as exc:
            raise HTTPException(422, {"error": "validation_failed", "errors": [
                {"field": "(body)", "problem": str(exc)}]}) from exc
        return {"erased": len(done), "confirmations": done}

    return router
