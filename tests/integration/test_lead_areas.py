"""A service lead limited to one service area, through the API on the real Elasticsearch:
keyword, browse, semantic, hybrid, aggregations, more like this, preview, publish and the
console's stats and recent actions see only that area; a county-wide user (["*"]) sees all; a
user not listed sees nothing.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import SecretStr

pytestmark = pytest.mark.integration

TOKENS = {"ed-lead": "ed-lead-token", "county": "county-token", "unlisted": "unlisted-token"}
AREA = "emergency"
# (language, text, unit): queue and waiting feedback in several areas, so every search
# below matches documents both inside and outside the lead's area.
CORPUS: list[tuple[str, str, str]] = [
    ("fi", "Jouduin odottamaan jonossa kolme tuntia.", "turku-ed"),
    ("fi", "Jonotin päivystyksessä koko illan.", "salo-ed"),
    ("en", "I had to wait in the queue for hours at the emergency department.", "turku-ed"),
    ("fi", "Jono terveysasemalle oli pitkä, odotin tunnin.", "raisio-hc"),
    ("en", "Long wait in the queue at the health centre.", "turku-hc-central"),
    ("fi", "Kotihoitaja tuli tunnin myöhässä eikä ilmoittanut siitä.", "homecare-south"),
    ("und", "Kiitos!", "rescue-turku"),
]


def area_of(unit: str) -> str:
    from pipelines.units import units

    return units()[unit].service_area


@pytest.fixture(scope="module")
def corpus(pipeline_env, index_events) -> dict[str, Any]:
    from pipelines.embedding import make_embedder
    from pipelines.synthetic import enriched_event

    _, settings = pipeline_env
    settings = settings.model_copy(update={
        "api_tokens": {user: SecretStr(token) for user, token in TOKENS.items()},
        "lead_service_areas": {"ed-lead": [AREA], "county": ["*"]}})
    embedder = make_embedder(settings.embedder)
    vectors = embedder.encode([text for _, text, _ in CORPUS], kind="passage")
    now = datetime.now(timezone.utc)  # within the console's closure-stats window
    events = [enriched_event(unit=unit, text=text, language=lang, theme_codes=["access_waiting"],
                             sentiment="negative", received_at=now - timedelta(days=i + 1), embedding=vectors[i],
                             follow_up_consent=True, respondent_ref=f"ref-{i}", embedding_model=embedder.name)
              for i, (lang, text, unit) in enumerate(CORPUS)]
    es = index_events(settings, events)
    ids = [e["feedback_id"] for e in events]
    inside = {i for i, (_, _, unit) in zip(ids, CORPUS) if area_of(unit) == AREA}
    return {"settings": settings, "es": es, "ids": ids, "inside": inside}


@pytest.fixture(scope="module")
def client(corpus):
    from fastapi.testclient import TestClient

    from services.apps.api import create_app

    with TestClient(create_app(corpus["settings"])) as c:
        yield c


def post(client, who: str, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    resp = client.post(path, json=body or {}, headers={"Authorization": f"Bearer {TOKENS[who]}"})
    assert resp.status_code == status, resp.text
    return resp.json()


def found(client, who: str, **body: Any) -> set[str]:
    return {h["feedback_id"] for h in post(client, who, "/v1/search", {**body, "size": 100})["hits"]}


@pytest.mark.parametrize("body", [
    {},  # browse
    {"q": "jono", "mode": "keyword"},
    {"q": "queue", "mode": "keyword", "language": "en"},
    {"q": "waiting in a queue", "mode": "semantic"},
    {"q": "jono odotus wait", "mode": "hybrid"},
], ids=["browse", "keyword", "keyword-en", "semantic", "hybrid"])
def test_search_returns_only_the_leads_area(corpus, client, body) -> None:
    everything = found(client, "county", **body)
    assert everything - corpus["inside"], "the query must match feedback of other areas too"
    scoped = found(client, "ed-lead", **body)
    assert scoped and scoped <= corpus["inside"]
    assert scoped == everything & corpus["inside"]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/search/aggregations"])
def test_a_user_not_listed_sees_nothing(corpus, client, path) -> None:
    refused = post(client, "unlisted", path, {"q": "jono", "mode": "keyword"}, status=403)
    assert refused["error"] == "forbidden" and refused["errors"][0]["field"] == "Authorization"
    outside = next(i for i in corpus["ids"] if i not in corpus["inside"])
    assert post(client, "unlisted", f"/v1/search/similar/{outside}", status=403)["error"] == "forbidden"
    assert post(client, "unlisted", "/v1/actions/preview", action("turku-ed"), status=403)["error"] == "forbidden"


def test_semantic_and_hybrid_still_find_every_neighbour_in_the_area(corpus, client) -> None:
    # The alias filter is a kNN pre-filter: k neighbours all from the area, none lost.
    for mode in ("semantic", "hybrid"):
        assert found(client, "ed-lead", q="odottaminen", mode=mode) == corpus["inside"], mode


def test_aggregations_count_only_the_leads_area(corpus, client) -> None:
    county = post(client, "county", "/v1/search/aggregations")
    lead = post(client, "ed-lead", "/v1/search/aggregations")
    assert county["total"] == len(CORPUS)
    assert lead["total"] == len(corpus["inside"])
    assert {u["unit"] for u in lead["units"]} == {u for _, _, u in CORPUS if area_of(u) == AREA}
    assert sum(r["count"] for r in lead["themes_by_sentiment"]) == len(corpus["inside"])


def test_similar_to_another_areas_item_is_not_found(corpus, client) -> None:
    outside = next(i for i in corpus["ids"] if i not in corpus["inside"])
    inside = next(iter(corpus["inside"]))
    missing = post(client, "ed-lead", f"/v1/search/similar/{outside}", status=404)
    assert missing["error"] == "not_found"
    assert post(client, "county", f"/v1/search/similar/{outside}")["hits"]
    near = {h["feedback_id"] for h in post(client, "ed-lead", f"/v1/search/similar/{inside}", {"size": 50})["hits"]}
    assert near == corpus["inside"] - {inside}
    county_near = post(client, "county", f"/v1/search/similar/{inside}", {"size": 50})["hits"]
    assert {h["feedback_id"] for h in county_near} - corpus["inside"]


def action(unit: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {"unit": unit, "themes": ["access_waiting"],
            "period": {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()},
            "messages": {"fi": "Lisäsimme iltavuoroon hoitajan."}}


def test_actions_outside_the_area_are_refused_and_never_published(corpus, client, topic_records) -> None:
    from services.topics import CLOSURE_ACTIONS

    denied = post(client, "ed-lead", "/v1/actions", action("raisio-hc"), status=403)
    assert denied["error"] == "forbidden" and denied["errors"][0]["field"] == "unit"
    assert post(client, "ed-lead", "/v1/actions/preview", action("raisio-hc"), status=403)["error"] == "forbidden"
    preview = post(client, "ed-lead", "/v1/actions/preview", action("turku-ed"))
    assert preview == {"feedback": 2, "consenting_respondents": 2}
    mine = post(client, "ed-lead", "/v1/actions", action("turku-ed"), status=202)
    county = post(client, "county", "/v1/actions", action("raisio-hc"), status=202)
    published = [json.loads(v) for _, v in topic_records(corpus["settings"], CLOSURE_ACTIONS.name)]
    assert {(a["action_id"], a["unit"], a["published_by"]) for a in published} == {
        (mine["action_id"], "turku-ed", "ed-lead"), (county["action_id"], "raisio-hc", "county")}


def test_console_stats_and_recent_actions_cover_only_the_area(corpus, client) -> None:
    from services.adapters.stores import actions_index, ensure_index

    es, alias = corpus["es"], corpus["settings"].index_alias
    ensure_index(es, alias, "actions")
    now = datetime.now(timezone.utc).isoformat()
    for unit in ("turku-ed", "raisio-hc"):  # what the closure worker would have written
        es.index(index=actions_index(alias), id=f"action-{unit}", refresh=True, document={
            "action_id": f"action-{unit}", "unit": unit, "service_area": area_of(unit),
            "themes": ["access_waiting"], "period": {"from": now, "to": now}, "messages": {"fi": "Tehty."},
            "published_by": "county", "published_at": now})

    def console(token: str) -> tuple[dict[str, Any], set[str], set[str]]:
        client.cookies.clear()
        client.post("/console/login", content=f"token={token}", follow_redirects=False,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        stats = client.get("/console/api/stats").json()
        recent = {a["unit"] for a in client.get("/console/api/actions").json()["actions"]}
        other = {a["unit"] for a in client.get("/console/api/actions?unit=raisio-hc").json()["actions"]}
        client.cookies.clear()
        return stats, recent, other

    stats, recent, other = console(TOKENS["ed-lead"])
    assert {s["unit"] for s in stats["units"]} == {u for _, _, u in CORPUS if area_of(u) == AREA}
    assert recent == {"turku-ed"} and other == set()
    stats, recent, other = console(TOKENS["county"])
    assert {s["unit"] for s in stats["units"]} == {u for _, _, u in CORPUS}
    assert recent == {"turku-ed", "raisio-hc"} and other == {"raisio-hc"}
