"""One throttle for failed credentials: the bearer-token API and ingest get 429 (JSON, Retry-After)
after N bad tokens or keys, as the console sign-in does; the client is the TCP peer unless that
peer is a trusted proxy, and only then is X-Forwarded-For read (its right-most untrusted hop)."""
from __future__ import annotations

import ipaddress

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.apps import api, ingest
from services.apps.throttle import FailureThrottle, client_address
from services.settings import Settings

TOKENS = {"lead": "lead-token-123"}
LIMIT = 3
PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def settings(**extra: object) -> Settings:
    return Settings(api_tokens=TOKENS, lead_service_areas={"lead": ["*"]}, auth_failures_limit=LIMIT,
                    public_base_url="http://testserver", **extra)


def api_client(peer: str, **extra: object) -> TestClient:
    # No lifespan: nothing here reaches Kafka or Elasticsearch (a good token gets 429 before).
    return TestClient(api.create_app(settings(**extra)), client=(peer, 40000), raise_server_exceptions=False)


def search(client: TestClient, token: str, forwarded_for: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return client.post("/v1/search", json={}, headers=headers).status_code


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: its header is ignored
    ("10.1.2.3", "198.51.100.1", "198.51.100.1"),  # trusted proxy: the address it saw
    ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # client-written hops to the left are ignored
    ("10.1.2.3", "198.51.100.1, 10.9.9.9", "198.51.100.1"),  # two trusted proxies in a row
    ("10.1.2.3", "10.9.9.9", "10.9.9.9"),  # only proxies: the left-most
    ("10.1.2.3", "not-an-ip, 10.9.9.9", "not-an-ip"),  # garbage is never trusted
    ("fd00::1", "2001:db8::7", "2001:db8::7"),
    ("10.1.2.3", None, "10.1.2.3"),
])
def test_client_address(peer: str, header: str | None, client: str):
    assert client_address(peer, [header] if header else [], PROXIES) == client
    assert client_address(peer, [header] if header else [], ()) == peer, "no trusted proxies: always the peer"


def test_trusted_proxies_must_be_networks():
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=["10.0.0.0/8", "ingress"])


def test_failures_expire_after_the_window():
    now = [1000.0]
    throttle = FailureThrottle(2, 60.0, clock=lambda: now[0])
    throttle.fail("a")
    now[0] += 30
    throttle.fail("a")
    assert throttle.retry_after("a") == 30 and throttle.retry_after("b") == 0
    now[0] += 31
    assert throttle.retry_after("a") == 0


def test_bearer_api_answers_429_after_n_bad_tokens():
    client = api_client("203.0.113.9")
    assert [search(client, "wrong") for _ in range(LIMIT)] == [401] * LIMIT
    resp = client.post("/v1/search", json={}, headers={"Authorization": f"Bearer {TOKENS['lead']}"})
    assert resp.status_code == 429, "while throttled even the right token is refused"
    assert 0 < int(resp.headers["retry-after"]) <= 300
    body = resp.json()
    assert body["error"] == "too_many_attempts" and body["errors"][0]["field"] == "Authorization"
    assert client.post("/v1/erasure", json={"respondent_ref": "r_1"},
                       headers={"Authorization": "Bearer wrong"}).status_code == 429
    assert client.post("/console/login", content="token=wrong",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 429, \
        "one throttle: bad bearer tokens count against the console sign-in too"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored():
    client = api_client("203.0.113.9", trusted_proxies=["10.0.0.0/8"])
    codes = [search(client, "wrong", forwarded_for=f"198.51.100.{i}") for i in range(LIMIT + 2)]
    assert codes == [401] * LIMIT + [429, 429], "a new made-up address per try must not reset the count"


def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    client = api_client("10.1.2.3", trusted_proxies=["10.0.0.0/8"])
    assert [search(client, "wrong", forwarded_for="198.51.100.1") for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
    # Another resident behind the same ingress is not locked out by the first one's failures.
    assert search(client, "wrong", forwarded_for="198.51.100.2") == 401
    login = client.post("/console/login", content=f"token={TOKENS['lead']}", follow_redirects=False,
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 "X-Forwarded-For": "198.51.100.2"})
    assert login.status_code == 303


def test_ingest_answers_429_after_n_bad_api_keys():
    client = TestClient(ingest.create_app(settings()), client=("203.0.113.9", 40000))
    codes = [client.post("/v1/feedback/kiosk", json={}, headers={"X-API-Key": "wrong"}).status_code
             for _ in range(LIMIT + 1)]
    assert codes == [401] * LIMIT + [429]
    resp = client.post("/v1/feedback/kiosk", json={}, headers={"X-API-Key": "wrong"})
    assert resp.json()["errors"][0]["field"] == "X-API-Key" and int(resp.headers["retry-after"]) > 0
