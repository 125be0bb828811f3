"""Ingest: the HTTP front door for app feedback, survey webhooks and kiosk presses.

Each accepted submission becomes one feedback.received event (no contact details)
and, when the respondent left contact details, one encrypted respondent.contacts
record under a pseudonymous respondent_ref. Rejected submissions get a 4xx with
field-level errors and are also kept on feedback.dlq (stage ``ingest``) so nothing
a resident sent is silently lost. Bodies over the size or JSON-depth limit are refused
before this module sees them (services/apps/http_limits.py) and are not kept.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from pipelines.intake import (AppFeedbackIn, ContactRecord, Intake, KioskEventIn, SurveyResponseIn, from_app,
                              from_kiosk, from_survey)
from pipelines.clock import utc_now
from pipelines.pseudonym import respondent_ref
from pipelines.vault import Contact, ContactVault
from services import metrics
from services.workers.faults import is_transient
from services.apps.http_common import KAFKA_RETRY_AFTER_S, install_common, unavailable_body, validation_errors
from services.apps.throttle import AuthGuard, too_many
from services.adapters.kafka_io import aiokafka_producer, dead_letter, dumps
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.topics import FEEDBACK_DLQ, FEEDBACK_RECEIVED, RESPONDENT_CONTACTS

log = get_logger("ingest")
CHANNEL_MODELS: dict[str, type[BaseModel]] = {"app": AppFeedbackIn, "survey": SurveyResponseIn,
                                             "kiosk": KioskEventIn}
HEADERS_DOC: dict[str, Any] = {"parameters": [
    {"name": "X-API-Key", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The channel's API key (FEEDBACK_INGEST_API_KEYS)."},
    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "The client's id of this submission: a retry with the same key is answered `duplicate`."}]}


class RecentIds:
    """Feedback ids accepted recently, to answer a retried POST with ``duplicate``.

    Correctness does not depend on it (ids are deterministic and every write
    downstream is idempotent); it only avoids re-publishing.
    """

    def __init__(self, size: int = 50_000):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def seen(self, fid: str) -> bool:
        return fid in self._ids

    def add(self, fid: str) -> None:
        self._ids[fid] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


def contact_event(settings: Settings, vault: ContactVault, ref: str, c: ContactRecord) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "respondent_ref": ref,
        "contact_ciphertext": vault.encrypt(Contact(c.email, c.phone, c.push_token)),
        "key_id": vault.key_id,
        "preferred_channel": c.preferred_channel,
        "language": c.language,
        "consent": {"follow_up": c.follow_up_consent, "given_at": utc_now(), "channel": c.channel},
        "updated_at": utc_now(),
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
    recent = RecentIds()
    guard = AuthGuard(settings)  # wrong API keys per client: 429 after settings.auth_failures_limit
    state: dict[str, Any] = {}
    # The counters of the hot path, bound once (a labels() lookup per request showed in the profile).
    accepted_total = {ch: metrics.INGEST_REQUESTS.labels(ch, "accepted") for ch in CHANNEL_MODELS}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        producer = aiokafka_producer(settings)
        await producer.start()
        state["producer"] = producer
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise walk it all and show in ingest's p99.
        gc.freeze()
        metrics.SERVICE_UP.labels("ingest").set(1)
        log.info("ingest_started", kafka=settings.kafka_bootstrap)
        try:
            yield
        finally:
            metrics.SERVICE_UP.labels("ingest").set(0)
            await producer.stop()  # flushes what is in flight before exit
            log.info("service_stopping", service="ingest")

    app = FastAPI(title="Feedback ingest", version="1", lifespan=lifespan,
                  description="Receives resident feedback from the app, survey tools and kiosks.")

    async def ready() -> bool:
        producer = state.get("producer")
        if producer is None:
            return False
        try:
            await producer.client.fetch_all_metadata()
            return True
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            return False

    install_common(app, ready, settings)

    async def reject(channel: str, raw: bytes, status: int, errors: list[dict[str, str]], error: str) -> JSONResponse:
        metrics.INGEST_REQUESTS.labels(channel, "invalid").inc()
        reason = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)[:2000]
        try:
            record = dead_letter("ingest", f"{channel}: {reason}", error, raw, vault=vault)
            await asyncio.wait_for(state["producer"].send_and_wait(settings.topic(FEEDBACK_DLQ.name), dumps(record)),
                                   settings.ingest_kafka_timeout_s)
            metrics.DEAD_LETTERS.labels("ingest", record["error_type"]).inc()
        except Exception as exc:  # noqa: BLE001 - the 4xx answer matters more than the copy
            log.warning("ingest_dlq_failed", error=type(exc).__name__)
        log.info("ingest_rejected", channel=channel, fields=[e["field"] for e in errors])
        return JSONResponse(status_code=status, content={"error": error, "errors": errors})

    async def accept(channel: str, intake: Intake) -> JSONResponse:
        event = intake.event
        fid = event["feedback_id"]
        if recent.seen(fid):
            metrics.INGEST_REQUESTS.labels(channel, "duplicate").inc()
            return JSONResponse(status_code=200, content={"feedback_id": fid, "status": "duplicate"})
        producer = state["producer"]
        if intake.contact is not None:
            c = intake.contact
            ref = respondent_ref(pseudonym_key, email=c.email, phone=c.phone, push_token=c.push_token)
            event["respondent_ref"] = ref
            record = contact_event(settings, vault, ref, c)
            # Contacts first: a notification must never find its respondent missing.
            await producer.send_and_wait(settings.topic(RESPONDENT_CONTACTS.name), dumps(record), key=ref.encode())
        # No JSON-schema check of the events here: the pydantic model validated the input and
        # pipelines/intake.py builds the events from it (its tests check them against the
        # schemas), and the enricher validates every record it reads. Checking again cost about
        # as much as the rest of the request.
        await producer.send_and_wait(settings.topic(FEEDBACK_RECEIVED.name), dumps(event), key=fid.encode())
        recent.add(fid)
        # No log line per accepted item, not even at debug (the call alone was 2% of a request):
        # feedback_ingest_requests_total counts them, and the event itself is on the topic.
        accepted_total[channel].inc()
        # Rendered by pydantic's serialiser (`dumps`), not the stdlib encoder JSONResponse uses.
        return Response(dumps({"feedback_id": fid, "status": "accepted"}), status_code=202,
                        media_type="application/json")

    def authorised(channel: str, key: str | None) -> bool:
        expected = settings.ingest_api_keys.get(channel)
        return bool(expected and key and hmac.compare_digest(expected.get_secret_value().encode(), key.encode()))

    async def handle(channel: str, request: Request) -> JSONResponse:
        api_key, idem = request.headers.get("x-api-key"), request.headers.get("idempotency-key")
        client = guard.client(request)
        wait = guard.retry_after(client, "ingest")
        if wait:
            return JSONResponse(status_code=429, headers={"Retry-After": str(wait)},
                                content=too_many(wait, "X-API-Key"))
        if not authorised(channel, api_key):
            guard.failed(client, "ingest")
            metrics.INGEST_REQUESTS.labels(channel, "unauthorized").inc()
            return JSONResponse(status_code=401, content={"error": "unauthorized", "errors": [
                {"field": "X-API-Key", "problem": f"missing or wrong API key for channel {channel}"}]})
        raw = await request.body()
        try:
            # Straight from the bytes (pydantic's parser): no intermediate dict of the body.
            body = CHANNEL_MODELS[channel].model_validate_json(raw)
        except ValidationError as exc:
            errors = list(exc.errors())
            if errors and errors[0]["type"] == "json_invalid":
                return await reject(channel, raw, 400,
                                    [{"field": "(body)", "problem": f"not JSON: {errors[0]['msg']}"}], "invalid_json")
            return await reject(channel, raw, 422, validation_errors(errors), "validation_failed")
        if channel == "app":
            intake = from_app(body, idem)  # type: ignore[arg-type]
        elif channel == "survey":
            intake = from_survey(body)  # type: ignore[arg-type]
        else:
            intake = from_kiosk(body, idem)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(settings.ingest_kafka_timeout_s):  # no extra task, unlike wait_for
                return await accept(channel, intake)
        except Exception as exc:  # noqa: BLE001 - classified: an outage is a 503, anything else a 500
            if not is_transient(exc):
                raise
            return unavailable(channel, exc)

    def unavailable(channel: str, exc: BaseException) -> JSONResponse:
        """Kafka did not acknowledge in time: the client sends the same request again later.
        With an Idempotency-Key (or a survey response id) the retry cannot duplicate."""
        metrics.INGEST_REQUESTS.labels(channel, "unavailable").inc()
        log.warning("ingest_kafka_unavailable", channel=channel, error=type(exc).__name__)
        return JSONResponse(status_code=503, headers={"Retry-After": str(KAFKA_RETRY_AFTER_S)},
                            content=unavailable_body("the feedback could not be stored right now; send the same "
                                                     "request again after Retry-After seconds (with the same "
                                                     "Idempotency-Key)"))

    # The headers are read from the request, not declared as FastAPI Header() parameters: resolving
    # those took a fifth of each request's CPU (`feedback bench ingest`); the OpenAPI document still
    # lists them.
    @app.post("/v1/feedback/app", status_code=202, summary="Feedback from the county's app", openapi_extra=HEADERS_DOC)
    async def app_feedback(request: Request) -> JSONResponse:
        return await handle("app", request)

    @app.post("/v1/feedback/survey", status_code=202, summary="A survey tool's webhook, one response",
              openapi_extra=HEADERS_DOC)
    async def survey_feedback(request: Request) -> JSONResponse:
        return await handle("survey", request)

    @app.post("/v1/feedback/kiosk", status_code=202, summary="A waiting-room kiosk press", openapi_extra=HEADERS_DOC)
    async def kiosk_feedback(request: Request) -> JSONResponse:
        return await handle("kiosk", request)

    return app
