"""Credentials are compared as bytes: a non-ASCII API key, cookie or opt-out token is
refused (401 / invalid), never a 500 from hmac.compare_digest on non-ASCII text."""
from __future__ import annotations

from fastapi.testclient import TestClient

from pipelines import console_session
from pipelines.optout import opt_out_status, opt_out_token
from services.apps.ingest import create_app
from services.settings import Settings


def test_ingest_answers_401_to_a_non_ascii_api_key():
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    resp = client.post("/v1/feedback/app", content=b"{}",
                       headers={"X-API-Key": "avain-\u00e4\u00f6".encode("latin-1"),
                                "Content-Type": "application/json"})
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["field"] == "X-API-Key"


def test_non_ascii_opt_out_token_and_cookie_are_refused():
    key = b"k" * 32
    assert opt_out_status(key, "r_1", opt_out_token(key, "r_1", 1000), 1000, 60) == "valid"
    assert opt_out_status(key, "r_1", "\u00e4\u00f6\u00e5", 1000, 60) == "invalid"
    assert opt_out_status(key, "r_1", "1000.\u00e4\u00f6\u00e5", 1000, 60) == "invalid"
    assert opt_out_status(key, "r_1", "\u0661\u0662.abc", 1000, 60) == "invalid"  # non-ASCII digits
    assert console_session.decode(key, "payload.\u00e4\u00f6") is None
