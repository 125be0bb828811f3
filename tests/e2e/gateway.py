"""A real HTTP server standing in for the SMS gateway and the app-push service in tests.

It behaves like a provider that honours ``Idempotency-Key``: a request whose key was
already accepted is answered 200 again but not delivered a second time (counted as
a replay). ``fail_every=n`` answers every n-th request 503 before accepting it, so
the notifier's retries are exercised; ``on_accept`` runs after a request is accepted
and before it is answered (a test can kill the notifier right there).
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    key: str
    payload: dict[str, Any]
    at: float


class Gateway:
    def __init__(self, fail_every: int = 0, delay_s: float = 0.0,
                 on_accept: Callable[[Delivery, int], None] | None = None, port: int = 0):
        self.fail_every, self.delay_s, self.on_accept = fail_every, delay_s, on_accept
        self.port = port  # 0: any free port, fixed on first start so a restart comes back on it
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0
        self.delivered: dict[str, Delivery] = {}
        self.replays: Counter[str] = Counter()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.port, "start() the gateway first"
        return f"http://127.0.0.1:{self.port}"

    def by_path(self, path: str) -> dict[str, Delivery]:
        with self.lock:
            return {k: d for k, d in self.delivered.items() if d.path == path}

    def start(self) -> "Gateway":
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client died while we held the request
                    pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or ""
                with gateway.lock:
                    gateway.requests += 1
                    n = gateway.requests
                    if gateway.fail_every and n % gateway.fail_every == 0:
                        gateway.failed += 1
                        fail = True
                    else:
                        fail = False
                        replay = key in gateway.delivered
                        if replay:
                            gateway.replays[key] += 1
                        else:
                            delivery = Delivery(self.path, key, json.loads(body), time.time())
                            gateway.delivered[key] = delivery
                            accepted = len(gateway.delivered)
                if fail:
                    self._answer(503, {"error": "try again"})
                    return
                if replay:
                    self._answer(200, {"status": "duplicate", "id": key})
                    return
                if gateway.on_accept:
                    gateway.on_accept(delivery, accepted)
                if gateway.delay_s:
                    time.sleep(gateway.delay_s)
                self._answer(200, {"status": "accepted", "id": key})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="test-gateway", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket: clients get "connection refused" until start()."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
