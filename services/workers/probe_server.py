"""/health, /ready and /metrics for a worker that runs on plain aiokafka (not faust).

The same three pages the trends worker gets from faust (``services.workers.trends.make_app``) and the
HTTP services from ``services.apps.http_common.install_common``, served by aiohttp inside the
worker's own event loop.
"""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services import metrics


class ProbeServer:
    """Start with ``await start()``, stop with ``await stop()``; ``ready()`` decides /ready."""

    def __init__(self, service: str, host: str, port: int, ready: Callable[[], bool]) -> None:
        self.service, self.host, self.port, self.ready = service, host, port, ready
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._readiness)
        app.router.add_get("/metrics", self._metrics)
        self.runner = web.AppRunner(app, access_log=None)

    async def _health(self, request: web.Request) -> web.Response:  # noqa: ARG002
        return web.json_response({"status": "ok", "service": self.service})

    async def _readiness(self, request: web.Request) -> web.Response:  # noqa: ARG002
        ok = self.ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:  # noqa: ARG002
        body, content_type = metrics.exposition()
        return web.Response(body=body, content_type=content_type)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()
