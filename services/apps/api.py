"""The service-lead API: publish "you said, we did" actions and preview what they match.

Token-authenticated (``Authorization: Bearer <token>``, tokens per user in
settings.api_tokens); every publish records who and when.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from pipelines.actions import ActionIn
from services import metrics
from services.adapters.es import async_es_client
from services.apps.http_common import install_common
from services.adapters.kafka_io import aiokafka_producer
from services.apps.console import console_router, preview_counts, publish_action
from services.apps.insights_console import insights_api_router
from services.logs import get_logger
from services.apps.search_api import search_router
from services.apps.throttle import AuthGuard
from services.apps.tokens import bearer_user
from services.settings import Settings, get_settings

log = get_logger("api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state: dict[str, Any] = {}
    guard = AuthGuard(settings)  # one throttle for the console sign-in and every bearer-token call

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        producer = aiokafka_producer(settings)
        await producer.start()
        state["producer"], state["es"] = producer, async_es_client(settings)
        metrics.SERVICE_UP.labels("api").set(1)
        try:
            yield
        finally:
            metrics.SERVICE_UP.labels("api").set(0)
            log.info("service_stopping", service="api")
            await producer.stop()
            await state["es"].close()

    app = FastAPI(title="Feedback service-lead API", version="1", lifespan=lifespan,
                  description="Publish \"you said, we did\" actions and see what they answer.")

    async def ready() -> bool:
        try:
            # Cluster health rather than ping: it also works where `HEAD /` is not served.
            await state["es"].cluster.health(timeout="2s")
            return state.get("producer") is not None
        except Exception:  # noqa: BLE001
            return False

    install_common(app, ready, settings)

    user = bearer_user(settings, guard)
    app.include_router(search_router(settings, lambda: state["es"], user))
    app.include_router(insights_api_router(settings, state, user))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Any, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)

    forbidden = {403: {"description": "The unit is outside the user's service areas"}}

    @app.post("/v1/actions/preview", summary="How much feedback and how many consenting respondents match",
              responses=forbidden)
    async def preview(body: ActionIn, who: str = Depends(user)) -> dict[str, Any]:
        return await preview_counts(settings, state, body, who)

    @app.post("/v1/actions", status_code=202, summary="Publish a \"you said, we did\" action",
              responses=forbidden)
    async def publish(body: ActionIn, who: str = Depends(user)) -> dict[str, Any]:
        return await publish_action(settings, state, body, who, via="api")

    app.include_router(console_router(settings, state, guard))  # console, public board, opt-out, erasure
    return app
