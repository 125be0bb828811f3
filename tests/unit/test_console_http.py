"""The console, board and privacy endpoints over HTTP, without Kafka or Elasticsearch:
sign-in, session and CSRF checks, the email preview, authorisation of erasure,
the opt-out link's signature. (Searching and publishing are covered end to end.)"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipelines.optout import opt_out_token
from services.apps.api import create_app
from services.settings import Settings

TOKENS = {"lead": "lead-token-123", "officer": "officer-token-456"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(api_tokens=TOKENS, privacy_officers=["officer"], public_base_url="http://testserver")


@pytest.fixture()
def client(settings: Settings) -> TestClient:
    # Not used as a context manager: the lifespan (Kafka producer, ES client) does not run.
    return TestClient(create_app(settings), follow_redirects=False)


def sign_in(client: TestClient, token: str = TOKENS["lead"]) -> str:
    resp = client.post("/console/login", content=f"token={token}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303 and resp.headers["location"] == "/console"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/console")
    assert page.status_code == 200
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_console_needs_a_session(client: TestClient):
    assert client.get("/console").headers["location"] == "/console/login"
    assert client.post("/console/api/render", json={}).status_code == 401
    page = client.get("/console/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_wrong_token_is_rejected_and_throttled(client: TestClient):
    for _ in range(10):
        resp = client.post("/console/login", content="token=nope",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status_code == 401 and "set-cookie" not in resp.headers
    resp = client.post("/console/login", content=f"token={TOKENS['lead']}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 429, "too many failures from one address"


def test_preview_needs_csrf_and_renders_every_language(client: TestClient):
    csrf = sign_in(client)
    body = {"unit": "turku-ed", "messages": {"fi": "Lisäsimme iltavuoroon hoitajan.", "en": "We added a nurse."}}
    assert client.post("/console/api/render", json=body).status_code == 403
    assert client.post("/console/api/render", json=body, headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    resp = client.post("/console/api/render", json=body, headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 200
    previews = {p["for_language"]: p for p in resp.json()["previews"]}
    assert previews["fi"]["language"] == "fi" and "Lisäsimme iltavuoroon hoitajan." in previews["fi"]["body"]
    assert previews["sv"]["language"] == "fi", "no Swedish text: Swedish speakers get the Finnish one"
    assert previews["en"]["language"] == "en" and "/v1/opt-out?" in previews["en"]["body"]
    empty = client.post("/console/api/render", json={"unit": "turku-ed", "messages": {}},
                        headers={"X-CSRF-Token": csrf})
    assert empty.status_code == 422


def test_session_ends_when_the_token_is_revoked(settings: Settings):
    client = TestClient(create_app(settings), follow_redirects=False)
    sign_in(client)
    revoked = Settings(api_tokens={"lead": "a-new-token"}, public_base_url="http://testserver")
    other = TestClient(create_app(revoked), follow_redirects=False)
    other.cookies = client.cookies
    assert other.get("/console").status_code == 303


def test_assets_are_served_and_nothing_else(client: TestClient):
    assert client.get("/assets/console.js").status_code == 200
    assert client.get("/assets/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/assets/..%2Fapi.py").status_code == 404


def test_erasure_needs_a_privacy_officer(client: TestClient):
    body = {"email": "someone@example.fi"}
    assert client.post("/v1/erasure", json=body).status_code == 401
    assert client.post("/v1/erasure", json=body,
                       headers={"Authorization": f"Bearer {TOKENS['lead']}"}).status_code == 403
    both = client.post("/v1/erasure", json={"email": "a@b.fi", "phone": "0401234567"},
                       headers={"Authorization": f"Bearer {TOKENS['officer']}"})
    assert both.status_code == 422


def test_opt_out_link_must_be_signed(client: TestClient, settings: Settings):
    ref = "r_" + "1" * 24
    resp = client.get(f"/v1/opt-out?ref={ref}&token=forged", headers={"Accept-Language": "sv-FI,sv;q=0.9"})
    assert resp.status_code == 403 and 'lang="sv"' in resp.text
    assert opt_out_token(settings.pseudonym_key.get_secret_value().encode(), ref, 0) != "forged"
    assert client.post(f"/v1/opt-out?ref={ref}&token=forged").json() == {"status": "invalid"}


def test_unknown_board_unit_is_404(client: TestClient):
    assert client.get("/board/no-such-unit").status_code == 404
    assert client.get("/board/no-such-unit/feed.json").status_code == 404
    assert client.get("/board/no-such-unit.json").status_code == 404
    index = client.get("/board?lang=sv")
    assert index.status_code == 200 and "Åbo samjour" in index.text
