"""Thanks on the public board and in the console, on the real API, Elasticsearch and indexer
document path.

Recent thanks (relative to now) for turku-ed (opted in to the digest), salo-ed (not opted in)
and turku-dental. The board shows every unit's count, but quotes only for the opted-in unit and
only those with nothing redacted. In the console an emergency lead sees only emergency thanks,
picks two into the training set (one a would-be spreadsheet formula) and downloads it as CSV
(formula defused) and Markdown; a dental lead can neither pick nor export emergency quotes; a
signed-in user without service areas reads nothing (403). Last, a lead picks a quote in real
Chromium; the screenshots go to artifacts/screenshots/ (gitignored), as the console browser test's.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from pipelines.synthetic import enriched_event

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TOKENS = {"ed-lead": "ed-lead-token", "dental-lead": "dental-lead-token", "nobody": "nobody-token"}
AREAS = {"ed-lead": ["emergency"], "dental-lead": ["oral-health"]}  # "nobody" is not listed: no areas
FORMULA = '=HYPERLINK("http://evil.example","Kiitos kaikille")'
# key: (unit, language, text, themes, sentiment, redactions)
ITEMS = {
    "warm": ("turku-ed", "fi", "Kiitos ihanalle henkilökunnalle, hoito oli erinomaista.", ["staff_attitude"],
             "positive", 0),
    "named": ("turku-ed", "fi", "Kiitos hoitaja [NAME], olit korvaamaton.", ["staff_attitude"], "positive", 1),
    "formula": ("turku-ed", "fi", FORMULA, ["positive_gratitude"], "positive", 0),
    "complaint": ("turku-ed", "fi", "Jono oli aivan liian pitkä.", ["access_waiting"], "negative", 0),
    "salo": ("salo-ed", "fi", "Kiitos Salon päivystykselle ystävällisestä palvelusta.", ["staff_attitude"],
             "positive", 0),
    "dental": ("turku-dental", "sv", "Tack till tandläkaren för en smärtfri behandling.", ["positive_gratitude"],
               "positive", 0),
}


@pytest.fixture(scope="module")
def world(pipeline_env, service_group, index_events):
    env, settings = pipeline_env
    service_group.env.update({"FEEDBACK_API_TOKENS": json.dumps(TOKENS), "FEEDBACK_LEAD_SERVICE_AREAS": json.dumps(AREAS)})
    now = datetime.now(timezone.utc)
    events = {}
    for i, (key, (unit, lang, text, themes, sentiment, redactions)) in enumerate(ITEMS.items()):
        ev = enriched_event(unit=unit, text=text, language=lang, theme_codes=themes, sentiment=sentiment,
                            received_at=now - timedelta(days=2, hours=i), embedding=None)
        ev["redactions"] = {"NAME": redactions} if redactions else {}
        events[key] = ev
    index_events(settings, list(events.values()))
    service_group.start("api")
    return service_group.running["api"].url, {k: e["feedback_id"] for k, e in events.items()}


def console(url: str, user: str) -> tuple[httpx.Client, str]:
    """A signed-in console session and its CSRF token, as a browser has them."""
    client = httpx.Client(base_url=url, timeout=30)
    resp = client.post("/console/login", content=f"token={TOKENS[user]}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303, resp.text
    page = client.get("/console")
    csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return client, csrf


def test_board_counts_thanks_and_quotes_only_public_ones_of_opted_in_units(world):
    url, _ = world
    page = httpx.get(f"{url}/board/turku-ed?lang=fi", timeout=30)
    assert page.status_code == 200
    assert '<strong id="thanks-count">3</strong>' in page.text, "warm, named and formula; not the complaint"
    assert ITEMS["warm"][2] in page.text
    assert "[NAME]" not in page.text and "korvaamaton" not in page.text, "nothing redacted goes public"
    assert "HYPERLINK" in page.text and "<a href" not in page.text.split('id="thanks"')[1].split("</section>")[0]
    salo = httpx.get(f"{url}/board/salo-ed?lang=fi", timeout=30).text
    assert '<strong id="thanks-count">1</strong>' in salo and ITEMS["salo"][2] not in salo, "not opted in: count only"


def test_a_lead_picks_quotes_of_their_area_and_exports_them_safely(world):
    url, ids = world
    ed, csrf = console(url, "ed-lead")
    page = ed.get("/console/thanks")
    assert page.status_code == 200
    for key in ("warm", "named", "formula", "salo"):
        assert f'id="item-{ids[key]}"' in page.text, key
    assert f'id="item-{ids["dental"]}"' not in page.text and f'id="item-{ids["complaint"]}"' not in page.text
    for key in ("warm", "formula"):
        resp = ed.post(f"/console/thanks/{ids[key]}/pick", content=f"csrf={csrf}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status_code == 303, resp.text
    # The JSON endpoint: CSRF needed; picking twice keeps one pick; a complaint is not thanks.
    assert ed.post("/console/api/thanks/picks", json={"feedback_id": ids["salo"]}).status_code == 403
    again = ed.post("/console/api/thanks/picks", json={"feedback_id": ids["warm"]}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 201 and again.json()["created"] is False
    assert ed.post("/console/api/thanks/picks", json={"feedback_id": ids["complaint"]},
                   headers={"X-CSRF-Token": csrf}).status_code == 404
    assert ed.post("/console/api/thanks/picks", json={"feedback_id": "x"},
                   headers={"X-CSRF-Token": csrf}).json()["errors"][0]["field"] == "feedback_id"
    assert 'id="picked-count">2<' in ed.get("/console/thanks").text

    exported = ed.get("/console/thanks/training.csv")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="thanks-training-all.csv"'
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert sorted(r["text"] for r in rows) == sorted([ITEMS["warm"][2], "'" + FORMULA])
    assert {r["unit"] for r in rows} == {"turku-ed"} and {r["unit_name"] for r in rows} == {"Turun yhteispäivystys"}
    md = ed.get("/console/thanks/training.md?unit=turku-ed")
    assert md.headers["content-disposition"] == 'attachment; filename="thanks-training-turku-ed.md"'
    assert "## Turun yhteispäivystys" in md.text and "> Kiitos ihanalle henkilökunnalle" in md.text
    assert "respondent" not in exported.text + md.text

    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert "feedback_thanks_quotes_picked_total 2.0" in metrics

    # Unpicking removes a quote from the set.
    resp = ed.post(f"/console/thanks/{ids['formula']}/unpick", content=f"csrf={csrf}",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303
    rows = list(csv.DictReader(io.StringIO(ed.get("/console/thanks/training.csv").content.decode("utf-8-sig"))))
    assert [r["text"] for r in rows] == [ITEMS["warm"][2]]


def test_other_areas_and_users_without_areas_see_and_pick_nothing(world):
    url, ids = world
    dental, csrf = console(url, "dental-lead")
    listed = dental.get("/console/api/thanks").json()["items"]
    assert [i["feedback_id"] for i in listed] == [ids["dental"]]
    assert not {"respondent_ref", "embedding"} & {k for i in listed for k in i}
    page = dental.get("/console/thanks").text
    assert f'id="item-{ids["dental"]}"' in page and f'id="item-{ids["warm"]}"' not in page
    assert dental.post("/console/api/thanks/picks", json={"feedback_id": ids["warm"]},
                       headers={"X-CSRF-Token": csrf}).status_code == 404, "not found in the lead's areas"
    assert dental.get("/console/thanks?unit=turku-ed").status_code == 403
    assert dental.get("/console/thanks/training.csv?unit=turku-ed").status_code == 403
    rows = list(csv.DictReader(io.StringIO(dental.get("/console/thanks/training.csv").content.decode("utf-8-sig"))))
    assert rows == [], "the emergency lead's picks are not the dental lead's"
    assert dental.post(f"/console/thanks/{ids['warm']}/unpick", content=f"csrf={csrf}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 404
    nobody, _ = console(url, "nobody")
    assert nobody.get("/console/thanks").status_code == 403
    assert nobody.get("/console/thanks/training.csv").status_code == 403


CHROMIUM = os.environ.get("FEEDBACK_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.mark.browser
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_a_lead_picks_a_quote_in_the_browser(world):
    """The thanks page in real Chromium (no script needed: plain forms); screenshots for the README."""
    from playwright.sync_api import expect, sync_playwright

    url, ids = world
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100}, timezone_id="Europe/Helsinki")
            page.goto(f"{url}/console/login")
            page.fill("#token", TOKENS["ed-lead"])
            page.click("#sign-in")
            page.click("#thanks-link")
            item = page.locator(f"#item-{ids['salo']}")
            expect(item).to_contain_text(ITEMS["salo"][2])
            picked_before = int(page.inner_text("#picked-count"))
            item.locator("button.pick").click()
            expect(page.locator(f"#item-{ids['salo']} .picked")).to_be_visible()
            assert int(page.inner_text("#picked-count")) == picked_before + 1
            page.screenshot(path=str(SHOTS / "06-thanks-console.png"), full_page=True)
            page.goto(f"{url}/board/turku-ed?lang=fi")
            expect(page.locator("#thanks-count")).to_have_text("3")
            page.screenshot(path=str(SHOTS / "07-board-thanks.png"), full_page=True)
        finally:
            browser.close()
