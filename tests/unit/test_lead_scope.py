"""A service lead sees only their service areas: the index expression, the settings check,
and the refusals that need no Elasticsearch (the searches themselves are covered on a
real node in tests/integration/test_lead_areas.py)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from pipelines.units import service_areas, units
from services.apps.api import create_app
from services.apps.console import actions_query
from services.adapters.es import area_alias
from services.apps.lead_scope import covers_unit, lead_areas, readable_index, unit_codes
from services.settings import Settings

TOKENS = {"ed-lead": "ed-token-123", "county": "county-token-456"}
ACTION = {"unit": "raisio-hc", "themes": ["access_waiting"],
          "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
          "messages": {"fi": "Lisäsimme vastaanottoaikoja."}}


def test_unrestricted_user_reads_the_base_alias():
    assert readable_index("feedback", None) == "feedback"


def test_restricted_user_reads_their_area_aliases_once_each():
    assert readable_index("feedback", ["emergency"]) == area_alias("feedback", "emergency")
    assert readable_index("feedback", ["rescue", "emergency", "rescue"]) == \
        f"{area_alias('feedback', 'emergency')},{area_alias('feedback', 'rescue')}"


def test_no_areas_is_refused_rather_than_every_index():
    with pytest.raises(ValueError):
        readable_index("feedback", [])


def test_units_of_areas():
    emergency = unit_codes(frozenset({"emergency"}))
    assert emergency and all(units()[u].service_area == "emergency" for u in emergency)
    assert "turku-ed" in emergency and "raisio-hc" not in emergency
    assert unit_codes(None) is None
    assert covers_unit(None, "raisio-hc") and covers_unit(frozenset({"emergency"}), "turku-ed")
    assert not covers_unit(frozenset({"emergency"}), "raisio-hc")
    assert not covers_unit(frozenset({"emergency"}), "no-such-unit")


def test_recent_actions_are_limited_to_the_areas_units():
    assert actions_query(None, None) == {"bool": {"filter": []}}
    scoped = actions_query("raisio-hc", frozenset({"emergency"}))["bool"]["filter"]
    assert {"term": {"unit": "raisio-hc"}} in scoped
    assert {"terms": {"unit": unit_codes(frozenset({"emergency"}))}} in scoped


def test_settings_read_areas_per_user_from_json(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FEEDBACK_API_TOKENS", '{"ed-lead": "t1", "county": "t2", "new-user": "t3"}')
    monkeypatch.setenv("FEEDBACK_LEAD_SERVICE_AREAS", '{"ed-lead": ["emergency", "rescue"], "county": ["*"]}')
    settings = Settings()
    assert lead_areas(settings, "ed-lead") == frozenset({"emergency", "rescue"})
    assert lead_areas(settings, "county") is None, '["*"] is county-wide'
    assert lead_areas(settings, "new-user") == frozenset(), "a user not listed sees nothing"
    monkeypatch.delenv("FEEDBACK_LEAD_SERVICE_AREAS")
    defaults = Settings()
    assert defaults.lead_service_areas == {"demo-lead": ["*"]}, "the development lead is county-wide"
    assert lead_areas(defaults, "ed-lead") == frozenset(), "no default opens the county to a real user"


def test_a_user_not_listed_reads_nothing():
    assert unit_codes(frozenset()) == []
    assert not any(covers_unit(frozenset(), code) for code in units())
    assert actions_query(None, frozenset()) == {"bool": {"filter": [{"terms": {"unit": []}}]}}


@pytest.mark.parametrize(("areas", "words"), [
    ({"ed-lead": ["emergncy"]}, ["lead_service_areas", "emergncy"]),
    ({"ed-lead": []}, ["lead_service_areas", "ed-lead", "no service areas"]),
    ({"ed-laed": ["emergency"]}, ["lead_service_areas", "ed-laed", "api_tokens"]),
    ({"ed-lead": ["*", "emergency"]}, ["lead_service_areas", "ed-lead", "stand alone"]),
])
def test_settings_refuse_unknown_areas_empty_lists_and_unknown_users(areas, words):
    with pytest.raises(ValidationError) as err:
        Settings(api_tokens=TOKENS, lead_service_areas=areas)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_every_area_of_the_registry_is_accepted():
    settings = Settings(api_tokens=TOKENS, lead_service_areas={"ed-lead": sorted(service_areas())})
    assert lead_areas(settings, "ed-lead") == frozenset(service_areas())


@pytest.fixture(scope="module")
def client() -> TestClient:
    settings = Settings(api_tokens={**TOKENS, "unlisted": "unlisted-token-789"},
                        lead_service_areas={"ed-lead": ["emergency"], "county": ["*"]},
                        public_base_url="http://testserver")
    # No lifespan (no Kafka, no Elasticsearch): a refusal must come before either is used.
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.mark.parametrize("path", ["/v1/actions", "/v1/actions/preview"])
def test_api_refuses_a_unit_outside_the_leads_areas(client: TestClient, path: str):
    resp = client.post(path, json=ACTION, headers={"Authorization": f"Bearer {TOKENS['ed-lead']}"})
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error"] == "forbidden" and body["errors"][0]["field"] == "unit"
    assert "raisio-hc" in body["errors"][0]["problem"]


def test_console_offers_and_accepts_only_the_leads_units(client: TestClient):
    signed_in = client.post("/console/login", content=f"token={TOKENS['ed-lead']}",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert signed_in.status_code == 303
    page = client.get("/console").text
    assert 'value="turku-ed"' in page and 'value="raisio-hc"' not in page
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    for path in ("/console/api/publish", "/console/api/preview"):
        resp = client.post(path, json=ACTION, headers={"X-CSRF-Token": csrf})
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden", resp.text
    client.cookies.clear()


@pytest.mark.parametrize("path", ["/v1/search", "/v1/search/aggregations",
                                  "/v1/search/similar/00000000-0000-0000-0000-000000000000"])
def test_a_user_not_listed_is_refused_every_search(client: TestClient, path: str):
    # Refused before Elasticsearch is asked (no lifespan here): never the base alias.
    resp = client.post(path, json={}, headers={"Authorization": "Bearer unlisted-token-789"})
    assert resp.status_code == 403, resp.text
    problem = resp.json()["errors"][0]
    assert problem["field"] == "Authorization" and "FEEDBACK_LEAD_SERVICE_AREAS" in problem["problem"]


def test_a_user_not_listed_may_act_on_no_unit(client: TestClient):
    resp = client.post("/v1/actions/preview", json={**ACTION, "unit": "turku-ed"},
                       headers={"Authorization": "Bearer unlisted-token-789"})
    assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "unit"
    client.post("/console/login", content="token=unlisted-token-789",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    page = client.get("/console").text
    assert 'value="turku-ed"' not in page and 'value="raisio-hc"' not in page
    assert client.get("/console/api/stats").status_code == 403
    client.cookies.clear()
