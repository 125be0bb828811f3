"""Bad input gets a clear 4xx JSON answer naming the problem, never a 500 (issue 10, item 4).

Over HTTP through both apps (ingest and the API with its console, board and privacy
routes), without Kafka or Elasticsearch: every case here is refused before either is
touched. Times are checked under time-machine, so nothing depends on today's date.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipelines.actions import ActionIn
from pipelines.input_checks import clean_free_text
from pipelines.intake import AppFeedbackIn, KioskEventIn, SurveyResponseIn, from_app, from_kiosk
from services.apps import api, ingest
from services.settings import Settings

SETTINGS = Settings()  # the defaults: 256 KiB bodies, JSON 32 levels deep
APP_KEY = {"X-API-Key": "dev-app-key"}
KIOSK_KEY = {"X-API-Key": "dev-kiosk-key"}
SURVEY_KEY = {"X-API-Key": "dev-survey-key"}
LEAD = {"Authorization": "Bearer dev-lead-token"}
NOW = datetime(2031, 6, 15, 12, 0, tzinfo=timezone.utc)  # any instant: bounds are relative to it


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    return {"ingest": ingest.create_app(SETTINGS), "api": api.create_app(SETTINGS)}


@pytest.fixture(scope="module")
def ingest_client(apps) -> TestClient:
    # Not a context manager: no lifespan, so no Kafka; a refused body never needs it.
    return TestClient(apps["ingest"], raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api_client(apps) -> TestClient:
    return TestClient(apps["api"], raise_server_exceptions=False, follow_redirects=False)


# Every route that reads a body, per app (and /health: the limit does not depend on the route).
BODY_ROUTES = {
    "ingest": ["/v1/feedback/app", "/v1/feedback/survey", "/v1/feedback/kiosk", "/health"],
    "api": ["/v1/actions", "/v1/actions/preview", "/v1/search", "/v1/search/similar/x", "/v1/search/aggregations",
            "/console/login", "/console/logout", "/console/api/preview", "/console/api/render",
            "/console/api/publish", "/v1/opt-out", "/v1/erasure", "/health"],
}


def fields(resp) -> set[str]:
    return {e["field"] for e in resp.json()["errors"]}


def problem(resp, field: str) -> str:
    return next(e["problem"] for e in resp.json()["errors"] if e["field"] == field)


# --- body size ---------------------------------------------------------------------------------

def test_every_route_of_every_app_refuses_a_body_over_the_limit(apps):
    big = b'{"text": "' + b"a" * (SETTINGS.max_body_bytes + 10) + b'"}'
    for name, paths in BODY_ROUTES.items():
        client = TestClient(apps[name], raise_server_exceptions=False)
        for path in paths:
            method = "GET" if path == "/health" else "POST"
            resp = client.request(method, path, content=big,
                                  headers={"Content-Type": "application/json", **APP_KEY, **LEAD})
            assert resp.status_code == 413, (name, path, resp.status_code, resp.text[:200])
            body = resp.json()
            assert body["error"] == "body_too_large" and body["limit_bytes"] == SETTINGS.max_body_bytes
            assert str(SETTINGS.max_body_bytes) in body["errors"][0]["problem"]


def test_a_chunked_body_without_content_length_is_counted_while_it_streams(ingest_client, api_client):
    def chunks() -> Iterator[bytes]:
        yield b'{"unit": "turku-ed", "text": "'
        for _ in range(100):  # 100 x 8 KiB, over the limit, and no Content-Length announces it
            yield b"a" * 8192
        yield b'"}'

    resp = ingest_client.post("/v1/feedback/app", content=chunks(), headers=APP_KEY)
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"
    resp = api_client.post("/console/login", content=chunks(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413


def test_a_body_under_the_limit_still_reaches_the_route(ingest_client):
    resp = ingest_client.post("/v1/feedback/kiosk", json={"kiosk_id": "k", "unit": "turku-ed", "smiley": 9},
                              headers=KIOSK_KEY)
    assert resp.status_code == 422 and fields(resp) == {"smiley"}


# --- deeply nested JSON ------------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("app_name,path,headers", [
    ("ingest", "/v1/feedback/app", APP_KEY),
    ("ingest", "/v1/feedback/survey", SURVEY_KEY),
    ("api", "/v1/actions", LEAD),
    ("api", "/v1/search", LEAD),
    ("api", "/v1/erasure", LEAD),
])
def test_100k_nested_arrays_get_400_naming_the_depth_limit(apps, app_name, path, headers):
    client = TestClient(apps[app_name], raise_server_exceptions=False)
    for content_type in ("application/json", None):  # ingest reads JSON whatever the header says
        extra = {"Content-Type": content_type} if content_type else {}
        resp = client.post(path, content=DEEP, headers={**headers, **extra})
        assert resp.status_code == 400, (path, resp.status_code, resp.text[:200])
        assert resp.json()["error"] == "json_too_deep"
        assert "32 levels" in resp.json()["errors"][0]["problem"]


def test_nesting_up_to_the_limit_is_parsed_and_validated_as_usual(ingest_client):
    ok_depth = {"unit": "turku-ed", "text": "x", "contact": [[[[["deep but allowed"]]]]]}
    resp = ingest_client.post("/v1/feedback/app", json=ok_depth, headers=APP_KEY)
    assert resp.status_code == 422 and fields(resp) == {"contact"}
    # Brackets inside strings are text, not nesting.
    resp = ingest_client.post("/v1/feedback/app", json={"unit": "nope", "text": "[" * 1000}, headers=APP_KEY)
    assert resp.status_code == 422 and fields(resp) == {"unit"}


# --- over-long fields --------------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"unit": "turku-ed", "text": "x", "contact": {"email": "a" * 250 + "@example.fi"}}, "contact.email"),
    ({"unit": "turku-ed", "text": "x", "contact": {"phone": "0" * 40}}, "contact.phone"),
    ({"unit": "turku-ed", "text": "x", "contact": {"push_token": "t" * 600}}, "contact.push_token"),
    ({"unit": "turku-ed", "text": "x" * 10_001}, "text"),
    ({"unit": "u" * 65, "text": "x"}, "unit"),
    ({"unit": "turku-ed", "text": "x", "idempotency_key": "k" * 201}, "idempotency_key"),
])
def test_over_long_app_fields_get_422_naming_the_field(ingest_client, body, field):
    resp = ingest_client.post("/v1/feedback/app", json=body, headers=APP_KEY)
    assert resp.status_code == 422 and fields(resp) == {field}
    assert "at most" in problem(resp, field)


def test_over_long_survey_and_erasure_fields_get_422(ingest_client, api_client):
    body = {"survey_id": "s", "response_id": "r", "unit": "turku-ed", "score": 3,
            "respondent": {"email": "b" * 300 + "@example.fi"}}
    resp = ingest_client.post("/v1/feedback/survey", json=body, headers=SURVEY_KEY)
    assert resp.status_code == 422 and fields(resp) == {"respondent.email"}
    resp = api_client.post("/v1/erasure", json={"email": "c" * 300 + "@example.fi"}, headers=LEAD)
    assert resp.status_code == 422 and fields(resp) == {"email"}


# --- control and bidi characters ---------------------------------------------------------------

@pytest.mark.parametrize("path,headers,body,field", [
    ("/v1/feedback/app", APP_KEY,
     {"unit": "turku-ed", "text": "x", "contact": {"email": "maija\u202e@example.fi"}}, "contact.email"),
    ("/v1/feedback/app", APP_KEY,
     {"unit": "turku-ed", "text": "x", "contact": {"phone": "040\u2066123 4567"}}, "contact.phone"),
    ("/v1/feedback/app", APP_KEY, {"unit": "turku-ed", "text": "x", "idempotency_key": "k\x00"}, "idempotency_key"),
    ("/v1/feedback/kiosk", KIOSK_KEY, {"kiosk_id": "lobby\u200b1", "unit": "turku-ed", "smiley": 1}, "kiosk_id"),
    ("/v1/feedback/survey", SURVEY_KEY,
     {"survey_id": "s\x1b[31m", "response_id": "r", "unit": "turku-ed", "score": 1}, "survey_id"),
])
def test_identifiers_with_control_or_bidi_characters_get_422(ingest_client, path, headers, body, field):
    resp = ingest_client.post(path, json=body, headers=headers)
    assert resp.status_code == 422 and fields(resp) == {field}
    assert "U+" in problem(resp, field)


def test_erasure_refuses_an_email_with_a_bidi_override(api_client):
    resp = api_client.post("/v1/erasure", json={"email": "moc.elpmaxe@\u202eiijam"}, headers=LEAD)
    assert resp.status_code == 422 and fields(resp) == {"email"}


def test_free_text_loses_controls_and_bidi_overrides_but_nothing_else():
    text = "Hoitaja\u202e oli\x00 ystävällinen.\r\nKiitos\t€ \u2067\"hyvä\"\u2069\x1b\x7f\x85"
    event = from_app(AppFeedbackIn.model_validate({"unit": "turku-ed", "text": text})).event
    assert event["text"] == "Hoitaja oli ystävällinen.\nKiitos\t€ \"hyvä\""
    kiosk = from_kiosk(KioskEventIn.model_validate({"kiosk_id": "k", "unit": "turku-ed", "smiley": 2,
                                                    "comment": "ok\u202d\x08"}))
    assert kiosk.event["text"] == "ok"
    survey = SurveyResponseIn.model_validate({"survey_id": "s", "response_id": "r", "unit": "turku-ed",
                                              "answer_text": "a\x0cb"})
    assert survey.answer_text == "ab"
    # Right-to-left text with its implicit marks, emoji, combining marks: untouched.
    rtl = "شكرا \u200fجزيلا\u200e 👍🏽 e\u0301"
    assert clean_free_text(rtl) == rtl


def test_a_lead_message_loses_bidi_overrides_before_it_reaches_residents():
    action = ActionIn.model_validate({"unit": "turku-ed", "themes": ["access_waiting"],
                                      "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
                                      "messages": {"fi": "Katso \u202eofni.fi\u202c lisää"}})
    assert action.messages.fi == "Katso ofni.fi lisää"


def test_text_of_only_control_characters_is_empty_and_refused(ingest_client):
    resp = ingest_client.post("/v1/feedback/app", json={"unit": "turku-ed", "text": "\x00\u202e"},
                              headers=APP_KEY)
    assert resp.status_code == 422 and fields(resp) == {"text"}


# --- strict kiosk smiley -----------------------------------------------------------------------

@pytest.mark.parametrize("smiley", ["3", 3.0, True, "three", None, [3]])
def test_kiosk_smiley_must_be_an_integer_not_a_lookalike(ingest_client, smiley):
    resp = ingest_client.post("/v1/feedback/kiosk", json={"kiosk_id": "k", "unit": "turku-ed", "smiley": smiley},
                              headers=KIOSK_KEY)
    assert resp.status_code == 422 and fields(resp) == {"smiley"}


def test_kiosk_smiley_integers_are_accepted():
    for smiley in (1, 2, 3, 4):
        assert KioskEventIn.model_validate({"kiosk_id": "k", "unit": "turku-ed", "smiley": smiley}).smiley == smiley


# --- times -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,words", [
    ("2031-06-15T14:00:00Z", "future"),  # two hours ahead of the server's clock
    ("2099-01-01T00:00:00Z", "future"),
    ("2026-06-01T00:00:00Z", "past"),  # over five years before NOW
    ("1970-01-01T00:00:00Z", "past"),
    ("2031-06-15T10:00:00", "timezone"),  # naive: which zone?
    ("0000-01-01T00:00:00Z", "datetime"),
    ("10000-01-01T00:00:00Z", "datetime"),
    ("2031-13-01T00:00:00Z", "datetime"),
])
def test_submission_times_out_of_range_or_naive_get_422_naming_the_field(ingest_client, value, words):
    with time_machine.travel(NOW, tick=False):
        app = ingest_client.post("/v1/feedback/app", json={"unit": "turku-ed", "text": "x", "submitted_at": value},
                                 headers=APP_KEY)
        kiosk = ingest_client.post("/v1/feedback/kiosk", json={"kiosk_id": "k", "unit": "turku-ed", "smiley": 1,
                                                                "pressed_at": value}, headers=KIOSK_KEY)
        survey = ingest_client.post("/v1/feedback/survey", json={
            "survey_id": "s", "response_id": "r", "unit": "turku-ed", "score": 1, "submitted_at": value},
            headers=SURVEY_KEY)
    for resp, field in ((app, "submitted_at"), (kiosk, "pressed_at"), (survey, "submitted_at")):
        assert resp.status_code == 422, (value, resp.text[:200])
        assert fields(resp) == {field}
        assert words in problem(resp, field).lower()


def test_times_within_the_window_are_accepted_whatever_today_is():
    for now in (NOW, datetime(2045, 2, 28, 23, 59, tzinfo=timezone.utc)):
        with time_machine.travel(now, tick=False):
            for offset_h in (0.9, -24 * 365 * 4.9):  # just under an hour ahead, almost five years back
                at = datetime.fromtimestamp(now.timestamp() + offset_h * 3600, tz=timezone.utc).isoformat()
                body = AppFeedbackIn.model_validate({"unit": "turku-ed", "text": "x", "submitted_at": at})
                assert body.submitted_at is not None


def test_an_action_period_needs_a_utc_offset(api_client):
    body = {"unit": "turku-ed", "themes": ["access_waiting"], "messages": {"fi": "Teimme näin."},
            "period": {"from": "2026-10-01T00:00:00", "to": "2026-11-01T00:00:00Z"}}
    resp = api_client.post("/v1/actions", json=body, headers=LEAD)
    assert resp.status_code == 422 and fields(resp) == {"period.from"}
