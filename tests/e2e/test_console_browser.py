"""The closure loop end to end through the service-lead console, in headless Chromium.

Every service runs as its own process on the real Kafka, Elasticsearch and SMTP
sink; a real HTTP server (tests/e2e/gateway.py) is the SMS gateway and the push
service, failing every second request with 503 so retries happen. Residents give
feedback through the real ingest with contact details for email, SMS and push, in
Finnish, Swedish and English; some do not consent, one opts out with the link, one
withdraws consent in a way that does not reach the index (so only the notifier's
send-time check stops the message).

A browser (Playwright driving the system Chromium) signs in, picks unit, themes and
period, checks the matches, writes the message in three languages, previews the
email and publishes. Then: each consenting respondent gets exactly one message on
their channel in their language, nobody else gets anything, the action is in the
audit store and on the public board, the closure gauges are exported, and no contact
detail appears in any service's log or metrics or in Elasticsearch.

Screenshots go to artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer

from closure_helpers import wait_for
from gateway import Gateway
from pipelines.clock import utc_now
from pipelines.closure import matching_query, notification_id
from pipelines.contacts import withdraw_consent
from pipelines.optout import opt_out_url
from pipelines.pseudonym import normalise_phone, respondent_ref
from services.adapters.contacts_store import read_contact
from devstack.demo import read_topic
from services.adapters.es import es_client
from services.adapters.kafka_io import dumps
from devstack.smtp import read_mailbox
from services.adapters.stores import actions_index
from services.topics import RESPONDENT_CONTACTS

CHROMIUM = os.environ.get("FEEDBACK_TEST_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")]

TEXTS = {
    "fi": "Odotin yhteispäivystyksessä viisi tuntia ennen kuin pääsin lääkärille. Jono oli aivan liian pitkä.",
    "sv": "Jag väntade fem timmar på jouren innan jag fick träffa en läkare. Kön var alldeles för lång.",
    "en": "I waited five hours in the emergency department before seeing a doctor. The queue was far too long.",
}
MESSAGES = {
    "fi": "Kerroitte pitkistä odotusajoista. Lisäsimme iltavuoroon kaksi hoitajaa.",
    "sv": "Ni berättade om långa väntetider. Vi har lagt till två skötare på kvällsskiftet.",
    "en": "You told us about long waits. We added two nurses to the evening shift.",
}
TITLES = {"fi": "Lisää hoitajia iltaan", "sv": "Fler skötare på kvällen", "en": "More nurses in the evening"}


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway(fail_every=2).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def world(pipeline_env, service_group, gateway: Gateway):
    """Services up, feedback from eight residents indexed, one opted out, one withdrawn."""
    env, settings = pipeline_env
    env.update({"FEEDBACK_SMS_GATEWAY_URL": f"{gateway.url}/sms", "FEEDBACK_PUSH_WEBHOOK_URL": f"{gateway.url}/push",
                "FEEDBACK_NOTIFY_RETRY_INITIAL_S": "0.2", "FEEDBACK_CLOSURE_METRICS_INTERVAL_S": "2"})
    service_group.start_all()
    key = settings.pseudonym_key.get_secret_value().encode()
    run = uuid.uuid4().hex[:8]
    digits = f"{int(run, 16) % 10**5:05d}"
    # name: (channel, contact detail, language, consents)
    people = {
        "A": ("email", {"email": f"aino.{run}@example.fi"}, "fi", True),
        "B": ("sms", {"phone": f"040 {digits[:3]} {digits[3:]}11"}, "sv", True),
        "C": ("push", {"push_token": f"push-{run}-c"}, "en", True),
        "D": ("email", {"email": f"dan.{run}@example.com"}, "en", False),
        "E": ("sms", {"phone": f"+35850{digits}22"}, "fi", False),
        "F": ("email", {"email": f"frida.{run}@example.se"}, "sv", True),  # opts out with the link
        "H": ("email", {"email": f"harry.{run}@example.com"}, "en", True),  # withdraws; the index never hears
    }
    ids: dict[str, list[str]] = {}
    refs: dict[str, str] = {}
    headers = {c: {"X-API-Key": k.get_secret_value()} for c, k in settings.ingest_api_keys.items()}
    with httpx.Client(base_url=service_group.running["ingest"].url, timeout=30) as client:
        for name, (channel, detail, lang, consent) in people.items():
            for n in range(2 if name == "A" else 1):
                body = {"unit": "turku-ed", "text": TEXTS[lang], "language_hint": lang, "follow_up_consent": consent,
                        "idempotency_key": f"{run}-{name}-{n}",
                        "contact": {**detail, "preferred_channel": channel, "language": lang}}
                resp = client.post("/v1/feedback/app", json=body, headers=headers["app"])
                assert resp.status_code == 202, resp.text
                ids.setdefault(name, []).append(resp.json()["feedback_id"])
            refs[name] = respondent_ref(key, **detail)
        # G answers a survey (webhook) in Swedish and consents; K presses a kiosk smiley, no contact.
        g_email = f"greta.{run}@example.se"
        resp = client.post("/v1/feedback/survey", headers=headers["survey"], json={
            "survey_id": "ed-2026", "response_id": f"{run}-g", "unit": "turku-ed", "answer_text": TEXTS["sv"],
            "score": 2, "respondent": {"email": g_email, "language": "sv", "follow_up_consent": True}})
        assert resp.status_code == 202, resp.text
        ids["G"] = [resp.json()["feedback_id"]]
        refs["G"] = respondent_ref(key, email=g_email)
        people["G"] = ("email", {"email": g_email}, "sv", True)
        resp = client.post("/v1/feedback/kiosk", headers=headers["kiosk"], json={
            "kiosk_id": "ed-lobby", "unit": "turku-ed", "smiley": 4, "comment": TEXTS["fi"]})
        assert resp.status_code == 202, resp.text
        ids["K"] = [resp.json()["feedback_id"]]
    es = es_client(settings)
    all_ids = [i for v in ids.values() for i in v]

    def indexed() -> bool:
        es.indices.refresh(index=settings.index_alias)
        return es.count(index=settings.index_alias, query={"ids": {"values": all_ids}})["count"] == len(all_ids)

    wait_for(indexed, 600, "every feedback item indexed")

    api = service_group.running["api"].url
    link = opt_out_url(settings.public_base_url, key, refs["F"], time.time())
    assert link.startswith(api)
    confirm = httpx.get(link, timeout=60, headers={"Accept-Language": "sv"})
    assert confirm.status_code == 200 and 'data-outcome="confirm"' in confirm.text and "<form" in confirm.text
    assert read_contact(settings, refs["F"])["consent"]["follow_up"] is True, "a GET changes nothing"
    page = httpx.post(link, timeout=60, headers={"Accept": "text/html"})  # the page's button
    assert page.status_code == 200 and 'data-outcome="withdrawn"' in page.text and 'lang="sv"' in page.text
    again = httpx.post(link, timeout=60)
    assert again.json() == {"status": "already_withdrawn"}

    # H withdraws through some other way than the link: only the contact record changes.
    record = read_contact(settings, refs["H"])
    assert record and record["consent"]["follow_up"] is True
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(settings.topic(RESPONDENT_CONTACTS.name), key=refs["H"].encode(),
                  value=dumps(withdraw_consent(record, utc_now())))
    producer.flush(30)
    producer.close()

    def f_marked() -> bool:
        es.indices.refresh(index=settings.index_alias)
        docs = es.search(index=settings.index_alias, query={"term": {"respondent_ref": refs["F"]}})["hits"]["hits"]
        return bool(docs) and all(d["_source"]["follow_up_consent"] is False for d in docs)

    wait_for(f_marked, 60, "the opt-out to reach F's documents")
    docs = es.search(index=settings.index_alias, size=100, query={"ids": {"values": all_ids}},
                     _source=["theme_codes"])["hits"]["hits"]
    themes = sorted({t for d in docs for t in d["_source"]["theme_codes"]})
    assert themes, "the classifier gave the feedback no theme"
    return {"env": env, "settings": settings, "es": es, "people": people, "refs": refs, "ids": ids,
            "themes": themes, "api": api, "run": run}


def test_publish_in_the_console_notifies_each_consenting_respondent_once(world, stack, gateway, service_group):
    from playwright.sync_api import expect, sync_playwright

    settings, es, refs, people = world["settings"], world["es"], world["refs"], world["people"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    today = date.today()
    token = settings.api_tokens["demo-lead"].get_secret_value()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800}, timezone_id="Europe/Helsinki")
            page.goto(f"{world['api']}/console")
            assert page.url.endswith("/console/login")
            page.fill("#token", "not-a-token")
            page.click("#sign-in")
            assert "Unknown token" in page.inner_text("#login-error")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_url("**/console")
            assert page.inner_text("#user") == "demo-lead"
            page.screenshot(path=str(SHOTS / "01-console.png"), full_page=True)

            page.select_option("#unit", "turku-ed")
            for code in world["themes"]:
                page.check(f'input[name="theme"][value="{code}"]')
            page.fill("#from", (today - timedelta(days=1)).isoformat())
            page.fill("#to", (today + timedelta(days=1)).isoformat())
            page.click("#check")
            # Locator waits, not wait_for_function: the page's CSP forbids eval, and it should.
            expect(page.locator("#counts")).to_contain_text("consenting", timeout=30_000)
            counts = page.inner_text("#counts")
            n_feedback = sum(len(v) for v in world["ids"].values())
            # A, B, C, G and H: H's withdrawal never reached the index, so it still counts here.
            assert counts.startswith(f"{n_feedback} feedback items match; 5 consenting"), counts

            for lang in ("fi", "sv", "en"):
                page.fill(f"#title-{lang}", TITLES[lang])
                page.fill(f"#msg-{lang}", MESSAGES[lang])
            page.click("#preview")
            page.wait_for_selector("#preview-sv")
            assert "Din respons gjorde skillnad" in page.inner_text("#preview-sv .subject")
            assert MESSAGES["en"] in page.inner_text("#preview-en pre")
            page.screenshot(path=str(SHOTS / "02-preview.png"), full_page=True)

            page.click("#publish")
            page.wait_for_selector("#confirm", state="visible")
            assert "notify 5 consenting respondents" in page.inner_text("#confirm-text")
            page.click("#confirm-publish")
            expect(page.locator("#result")).to_contain_text("Published action", timeout=30_000)
            action_id = page.get_attribute("#result", "data-action-id")
            assert action_id and "demo-lead" in page.inner_text("#result")
            page.screenshot(path=str(SHOTS / "03-published.png"), full_page=True)

            # The deliveries, exactly once each, only to A, B, C and G, in their languages.
            nid = {name: notification_id(action_id, refs[name]) for name in refs}
            want_email, want_sms, want_push = {nid["A"], nid["G"]}, {nid["B"]}, {nid["C"]}

            def mail() -> Counter:
                return Counter(m["X-Notification-Id"] for m in read_mailbox(stack.maildir)
                               if m["X-Notification-Id"] in set(nid.values()))

            wait_for(lambda: set(mail()) >= want_email and set(gateway.delivered) >= want_sms | want_push,
                     240, "emails, SMS and pushes")
            receipts = wait_for(lambda: (r := [x for x in read_topic(settings, "closure.deliveries")
                                               if x["action_id"] == action_id]) and
                                {x["notification_id"] for x in r} >= set(nid[n] for n in "ABCGH") and r,
                                120, "receipts")
            time.sleep(5)  # let any duplicate arrive before counting
            assert mail() == Counter({n: 1 for n in want_email})
            assert set(gateway.delivered) & set(nid.values()) == want_sms | want_push
            assert not gateway.replays, "no message was sent twice to the gateway"
            assert gateway.failed > 0, "the gateway's 503s were retried"
            status = {x["notification_id"]: x["status"] for x in receipts}
            assert status == {nid["A"]: "delivered", nid["B"]: "delivered", nid["C"]: "delivered",
                              nid["G"]: "delivered", nid["H"]: "skipped_no_consent"}
            for m in read_mailbox(stack.maildir):
                name = next((n for n in ("A", "G") if m["X-Notification-Id"] == nid[n]), None)
                if name is None:
                    continue
                lang = people[name][2]
                assert m["To"] == people[name][1]["email"] and m["Content-Language"] == lang
                assert MESSAGES[lang] in m.get_content() and "/v1/opt-out?" in m.get_content()
                assert m["List-Unsubscribe"].startswith(f"<{world['api']}/v1/opt-out?")
                # The notifier's dated link is valid: its page asks to confirm (and changes nothing).
                confirm = httpx.get(m["List-Unsubscribe"].strip("<>"), timeout=60)
                assert confirm.status_code == 200 and 'data-outcome="confirm"' in confirm.text
            all_mail = json.dumps([str(m) for m in read_mailbox(stack.maildir)])
            for name in ("D", "F", "H"):
                assert people[name][1]["email"] not in all_mail, f"{name} must get nothing"
            sms, push = gateway.delivered[nid["B"]], gateway.delivered[nid["C"]]
            assert sms.path == "/sms" and sms.payload["language"] == "sv" and MESSAGES["sv"] in sms.payload["text"]
            assert normalise_phone(sms.payload["to"]) == normalise_phone(people["B"][1]["phone"])
            assert push.path == "/push" and push.payload["language"] == "en" and MESSAGES["en"] in push.payload["body"]
            assert push.payload["token"] == people["C"][1]["push_token"]
            assert not [d for d in gateway.delivered.values()
                        if normalise_phone(d.payload.get("to") or "x") == normalise_phone(people["E"][1]["phone"])]

            # Audit store: who and when, what it matched.
            def audited():
                es.indices.refresh(index=actions_index(settings.index_alias))
                doc = es.options(ignore_status=404).get(index=actions_index(settings.index_alias), id=action_id)
                return doc.get("found") and doc["_source"]["status"] == "processed" and doc["_source"]

            record = wait_for(audited, 60, "the audit record")
            assert record["published_by"] == "demo-lead" and record["published_at"]
            assert record["matched_feedback"] == n_feedback and record["notifications"] == 5

            # The public board, in Swedish, and its JSON feed.
            page.goto(f"{world['api']}/board/turku-ed?lang=sv")
            article = page.locator(f"#action-{action_id}")
            assert TITLES["sv"] in article.inner_text() and MESSAGES["sv"] in article.inner_text()
            assert article.locator(".count strong").inner_text() == str(n_feedback)
            page.screenshot(path=str(SHOTS / "04-board-sv.png"), full_page=True)
            feed = httpx.get(f"{world['api']}/board/turku-ed/feed.json?lang=en", timeout=30)
            assert feed.headers["content-type"].startswith("application/feed+json")
            item = next(i for i in feed.json()["items"] if i["id"] == action_id)
            assert item["content_text"] == MESSAGES["en"] and item["_feedback"]["feedback_count"] == n_feedback
            assert "demo-lead" not in feed.text and "@" not in feed.text and "r_" not in feed.text
            short = httpx.get(f"{world['api']}/board/turku-ed.json?lang=en", timeout=30)
            assert short.headers["content-type"].startswith("application/feed+json")
            assert action_id in {i["id"] for i in short.json()["items"]}

            page.goto(f"{world['api']}/console")
            page.select_option("#unit", "turku-ed")  # lists that unit's published actions
            expect(page.locator("#recent tbody")).to_contain_text(TITLES["fi"], timeout=30_000)
            assert "demo-lead" in page.inner_text("#recent")
            page.screenshot(path=str(SHOTS / "05-console-after.png"), full_page=True)
        finally:
            browser.close()

    # The closure gauges of the unit, from the closure worker's /metrics.
    closure = service_group.running["closure"].url

    def gauges() -> dict[str, float]:
        lines = httpx.get(f"{closure}/metrics", timeout=10).text.splitlines()
        return {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in lines
                if line.startswith(("feedback_closure_rate_ratio{", "feedback_closure_median_hours{"))
                and 'unit="turku-ed"' in line}

    got = wait_for(lambda: (g := gauges()) and g.get("feedback_closure_rate_ratio", 0) > 0 and g, 60, "gauges")
    assert got["feedback_closure_rate_ratio"] == 1.0  # every turku-ed item of this run is answered
    assert got["feedback_closure_median_hours"] >= 0
    es.indices.refresh(index=settings.index_alias)
    closed = es.count(index=settings.index_alias, query={"bool": {"filter": [
        matching_query({"unit": "turku-ed", "themes": world["themes"],
                        "period": {"from": "now-2d", "to": "now+2d"}}),
        {"term": {"closure_action_ids": action_id}}, {"exists": {"field": "hours_to_closure"}}]}})["count"]
    assert closed == n_feedback


def test_no_contact_details_in_logs_metrics_or_elasticsearch(world, service_group):
    """Planted emails, phone numbers and push tokens must appear nowhere the services write."""
    planted: set[str] = set()
    for _, detail, _, _ in world["people"].values():
        for kind, value in detail.items():
            planted.add(value)
            if kind == "phone":
                planted.update({normalise_phone(value), value.replace(" ", "")})
    found = []
    for log in sorted(service_group.log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        found += [f"{log.name}: {s[:4]}…" for s in planted if s in text]
    for name, sp in service_group.running.items():
        if sp.proc.poll() is not None:
            continue  # died: the other tests fail for that; its log is scanned above
        text = httpx.get(f"{sp.url}/metrics", timeout=10).text
        found += [f"{name} /metrics: {s[:4]}…" for s in planted if s in text]
    settings, es = world["settings"], world["es"]
    for index in (settings.index_alias, actions_index(settings.index_alias)):
        es.indices.refresh(index=index)
        hits = es.search(index=index, size=1000, query={"match_all": {}})["hits"]["hits"]
        blob = json.dumps([h["_source"] for h in hits], ensure_ascii=False)
        found += [f"{index}: {s[:4]}…" for s in planted if s in blob]
    assert not found, f"contact details leaked: {found}"
