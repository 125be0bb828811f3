"""Urgent feedback reaches a person, end to end on the real Kafka, Elasticsearch and SMTP sink.

Two urgent items go in through the real ingest and enricher. Each unit's duty address gets
an email within a minute with the redacted text, the reasons and a console link; a lead
acknowledges the first in the console (HTTP form, as a browser posts it), and it is never
escalated; nobody acknowledges the second, and after the configured (short) delay its
service area's address gets the escalation. A lead of another area neither sees nor can
acknowledge either.
"""
from __future__ import annotations

import time
import uuid
from email.utils import parsedate_to_datetime

import httpx
import pytest

from devstack.smtp import read_mailbox
from pipelines.units import escalation_email, units
from closure_helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ESCALATE_AFTER_S = 25
TOKENS = {"ed-lead": "ed-lead-token", "dental-lead": "dental-lead-token"}
# Both leads listed with their areas: the test does not depend on how unlisted users are treated.
AREAS = {"ed-lead": ["emergency"], "dental-lead": ["oral-health"]}
PHONE, EMAIL = "040 123 4567", "matti.meikalainen@example.fi"


@pytest.fixture(scope="module")
def urgent_run(pipeline_env, service_group, stack):
    import json

    env, settings = pipeline_env
    service_group.env.update({
        "FEEDBACK_URGENT_ESCALATE_AFTER_S": str(ESCALATE_AFTER_S), "FEEDBACK_URGENT_CHECK_INTERVAL_S": "1",
        "FEEDBACK_API_TOKENS": json.dumps(TOKENS), "FEEDBACK_LEAD_SERVICE_AREAS": json.dumps(AREAS)})
    for name in ("ingest", "enricher", "indexer", "api", "urgent"):
        service_group.start(name, wait=False)
    for name in ("ingest", "enricher", "indexer", "api", "urgent"):
        service_group.wait_healthy(service_group.running[name], timeout=300)
    run = uuid.uuid4().hex[:8]
    ids = {}
    with httpx.Client(base_url=service_group.running["ingest"].url, timeout=30) as client:
        for name, unit in (("acked", "turku-ed"), ("ignored", "salo-ed")):
            body = {"unit": unit, "idempotency_key": f"urgent-{name}-{run}",
                    "text": f"En halua enää elää, aion tappaa itseni. Soittakaa minulle {PHONE} tai {EMAIL}"}
            resp = client.post("/v1/feedback/app", json=body,
                               headers={"X-API-Key": settings.ingest_api_keys["app"].get_secret_value()})
            assert resp.status_code == 202, resp.text
            ids[name] = resp.json()["feedback_id"]
    return settings, ids, stack.maildir, service_group


def mails(maildir, feedback_id: str, kind: str) -> list:
    return [m for m in read_mailbox(maildir) if m["X-Feedback-Id"] == feedback_id and m["X-Urgent-Kind"] == kind]


def console(group, user: str) -> tuple[httpx.Client, str]:
    """A signed-in console session and its CSRF token, as a browser has them."""
    client = httpx.Client(base_url=group.running["api"].url, timeout=30)
    resp = client.post("/console/login", content=f"token={TOKENS[user]}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303, resp.text
    page = client.get("/console/urgent")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client, csrf


def test_duty_email_arrives_within_a_minute_with_redacted_text_reasons_and_link(urgent_run):
    settings, ids, maildir, _ = urgent_run
    started = time.monotonic()
    for name, unit in (("acked", "turku-ed"), ("ignored", "salo-ed")):
        [mail] = wait_for(lambda n=name: mails(maildir, ids[n], "duty"), 90, f"the duty email of {name}")
        assert mail["To"] == units()[unit].duty_email
        body = mail.get_content()
        assert PHONE not in body and EMAIL not in body and "matti" not in body.lower()
        assert "[PHONE]" in body and "[EMAIL]" in body and "tappaa itseni" in body
        assert "self_harm" in body
        assert f"{settings.public_base_url}/console/urgent#item-{ids[name]}" in body
    # Ingest to email, both items, well within a minute of the first check (the enricher is warm).
    assert time.monotonic() - started < 60


def test_a_lead_sees_and_acknowledges_only_their_own_areas_items(urgent_run):
    _, ids, maildir, group = urgent_run
    wait_for(lambda: mails(maildir, ids["acked"], "duty"), 90, "the duty email")
    lead, csrf = console(group, "ed-lead")

    def both_listed() -> str | None:
        # The worker records an item as open right after its duty email is accepted, so the
        # email can reach the sink a moment before the item is searchable.
        page = lead.get("/console/urgent").text
        return page if all(f'id="item-{ids[n]}"' in page for n in ("acked", "ignored")) else None

    page = wait_for(both_listed, 30, "both open items in the ED lead's console")
    # Both items are searchable now: the dental lead still sees and acknowledges neither.
    dental, dental_csrf = console(group, "dental-lead")
    assert dental.get("/console/api/urgent").json()["items"] == []
    refused = dental.post(f"/console/api/urgent/{ids['acked']}/ack", headers={"X-CSRF-Token": dental_csrf})
    assert refused.status_code == 404 and refused.json()["errors"][0]["field"] == "feedback_id"
    assert "[PHONE]" in page and PHONE not in page
    resp = lead.post(f"/console/urgent/{ids['acked']}/ack", content=f"csrf={csrf}",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/urgent"

    def listed() -> set[str]:
        return {i["feedback_id"] for i in lead.get("/console/api/urgent").json()["items"]}

    wait_for(lambda: ids["acked"] not in listed(), 30, "the acknowledgement to be recorded")
    assert ids["ignored"] in listed()
    again = lead.post(f"/console/api/urgent/{ids['acked']}/ack", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409


def test_unacknowledged_item_escalates_to_the_service_area_and_acknowledged_one_does_not(urgent_run):
    _, ids, maildir, group = urgent_run
    [duty] = wait_for(lambda: mails(maildir, ids["ignored"], "duty"), 90, "the duty email")
    [mail] = wait_for(lambda: mails(maildir, ids["ignored"], "escalation"), ESCALATE_AFTER_S + 60,
                      "the escalation email")
    assert mail["To"] == escalation_email("emergency")
    assert units()["salo-ed"].duty_email in mail.get_content()
    assert "[PHONE]" in mail.get_content() and PHONE not in mail.get_content()
    waited = (mail_time(mail) - mail_time(duty))
    assert waited >= ESCALATE_AFTER_S - 1, f"escalated after {waited:.1f}s"
    time.sleep(3)  # a second escalation, or one for the acknowledged item, would come right behind
    assert len(mails(maildir, ids["ignored"], "escalation")) == 1
    assert mails(maildir, ids["acked"], "escalation") == []
    metrics = httpx.get(f"{group.running['urgent'].url}/metrics", timeout=10).text
    assert 'feedback_urgent_escalations_total{service_area="emergency"} 1.0' in metrics
    assert 'feedback_urgent_emails_total{kind="duty",service_area="emergency"} 2.0' in metrics
    assert 'feedback_urgent_time_to_acknowledge_seconds_count{service_area="emergency"} 1.0' in metrics
    assert 'feedback_urgent_open_items{service_area="emergency"} 1.0' in metrics


def mail_time(mail) -> float:
    """When the worker sent a message (its Date header, to the second)."""
    return parsedate_to_datetime(mail["Date"]).timestamp()
