"""One throttle for every credential check over HTTP: console sign-in, bearer tokens (service-lead
API, search, erasure) and ingest API keys.

Failed attempts are counted per client address; a client with too many in the window gets
429 with Retry-After for every request until the oldest failure leaves the window (a right
token included: otherwise the guesser would still learn when it hit). Behind an ingress the
TCP peer is the proxy, so the client is read from X-Forwarded-For, but only when the peer is
one of settings.trusted_proxies: then the right-most address not in those networks is the
client (addresses to its left were written by the client and can be anything).
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from fastapi import HTTPException, Request

from services import metrics
from services.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_CLIENTS = 10_000  # bounded memory under a spray of addresses


class FailureThrottle:
    """At most ``limit`` failures per client in ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window_s, clock
        self.failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """0 when ``client`` may try; else whole seconds until one of its failures expires."""
        q = self.failures.get(client)
        now = self.clock()
        while q and now - q[0] > self.window:
            q.popleft()
        if not q or len(q) < self.limit:
            return 0
        return max(1, math.ceil(q[-self.limit] + self.window - now))

    def fail(self, client: str) -> None:
        self.failures.setdefault(client, deque()).append(self.clock())
        if len(self.failures) > MAX_CLIENTS:
            self.failures.pop(next(iter(self.failures)))


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address: never a trusted proxy
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client a request came from: the TCP ``peer``, or, when the peer is a trusted proxy,
    the right-most X-Forwarded-For hop outside the trusted networks."""
    if not peer:
        return "?"
    if not trusted or not _in(peer, trusted):
        return peer  # a header from an untrusted peer is whatever the client wrote
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


class AuthGuard:
    """The throttle of one HTTP app plus how it names clients; shared by its credential checks."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(net, strict=False) for net in settings.trusted_proxies)
        self.throttle = FailureThrottle(settings.auth_failures_limit, settings.auth_failures_window_s, clock)

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        if not self.trusted:  # no proxy is trusted: the peer it is, without reading any header
            return peer or "?"
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self.trusted)

    def retry_after(self, client: str, surface: str) -> int:
        """0 when ``client`` may present a credential on ``surface``; else seconds to wait (counted)."""
        wait = self.throttle.retry_after(client)
        if wait:
            metrics.AUTH_REFUSALS.labels(surface, "throttled").inc()
        return wait

    def failed(self, client: str, surface: str) -> None:
        """Count a wrong credential of ``client`` on ``surface`` (console, api, ingest)."""
        self.throttle.fail(client)
        metrics.AUTH_REFUSALS.labels(surface, "rejected").inc()

    def check(self, request: Request, surface: str, field: str) -> str:
        """The request's client; raises 429 (JSON, Retry-After) while it is throttled."""
        client = self.client(request)
        wait = self.retry_after(client, surface)
        if wait:
            raise HTTPException(status_code=429, detail=too_many(wait, field), headers={"Retry-After": str(wait)})
        return client


def too_many(retry_after: int, field: str) -> dict[str, object]:
    """The JSON body of a throttled request."""
    return {"error": "too_many_attempts", "retry_after_s": retry_after, "errors": [
        {"field": field, "problem": f"too many failed attempts from this address; try again in {retry_after} s"}]}
