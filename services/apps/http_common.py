"""Pieces every HTTP service shares: health, readiness, metrics, JSON validation errors,
request limits (services/apps/http_limits.py)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.apps.http_limits import RequestLimits
from services.settings import Settings
from services.workers.faults import is_transient

KAFKA_RETRY_AFTER_S = 5  # what a 503 asks the client to wait; Kafka's own fail-over takes seconds


def field_path(loc: tuple | list) -> str:
    """('body', 'contact', 'email') -> 'contact.email'; list indexes as [i]."""
    parts: list[str] = []
    for p in loc:
        if p in ("body", "query", "path", "header"):
            continue
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts) or "(body)"


def validation_errors(errors: list[dict]) -> list[dict[str, str]]:
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid"))
        out.append({"field": field_path(e.get("loc", ())), "problem": msg.removeprefix("Value error, ")})
    return out


async def send_or_503(producer: Any, topic: str, value: bytes, key: bytes, timeout_s: float) -> None:
    """Send one record and wait for Kafka's acknowledgement. While Kafka cannot take it (down,
    no leader, no answer within ``timeout_s``) the request gets a 503 with Retry-After and a JSON
    body, so the client knows to send the same request again; any other failure propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await producer.send_and_wait(topic, value, key=key)
    except Exception as exc:  # noqa: BLE001 - classified: an outage is a 503, anything else propagates
        if not is_transient(exc):
            raise
        raise HTTPException(503, headers={"Retry-After": str(KAFKA_RETRY_AFTER_S)}, detail=unavailable_body(
            f"Kafka did not take the request ({type(exc).__name__}); nothing was published, send the "
            f"same request again after {KAFKA_RETRY_AFTER_S} seconds")) from exc


def unavailable_body(problem: str) -> dict[str, Any]:
    """The JSON body of every 503 answered while Kafka cannot take a request."""
    return {"error": "unavailable", "errors": [{"field": "(service)", "problem": problem}]}


def install_common(app: FastAPI, ready: Callable[[], Awaitable[bool]], settings: Settings) -> None:
    """Add /health, /ready, /metrics, JSON 422 bodies with field-level errors and the request
    limits (body size, JSON depth) of ``settings``."""

    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes,
                       max_json_depth=settings.max_json_depth)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "validation_failed",
                                                      "errors": validation_errors(list(exc.errors()))})

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def readiness() -> JSONResponse:
        ok = await ready()
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
