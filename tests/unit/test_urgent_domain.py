"""The urgent flow's pure parts: the emails (redacted text, reasons, link, nothing personal),
the state transitions and the escalation query, all relative to a given 'now'."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines import urgent
from pipelines.clock import utc_iso
from pipelines.units import escalation_email, service_areas, units
from schemas.validate import event_errors

NOW = datetime.now(timezone.utc)
EVENT = {"feedback_id": "0b9a1c52-2f0e-4c55-9d1e-2f7d3c1b9e01", "unit": "turku-ed", "service_area": "emergency",
         "language": "fi", "received_at": utc_iso(NOW - timedelta(minutes=2)), "respondent_ref": "r_" + "a" * 24,
         "text": "En jaksa enää, soita [PHONE]", "urgency": {"flag": True, "score": 0.91, "reasons": ["self_harm"]}}


def test_every_unit_and_area_has_a_fictional_role_address():
    for unit in units().values():
        assert unit.duty_email.endswith(".example") and "@" in unit.duty_email
    for area in service_areas():
        assert escalation_email(area).endswith(".example")
        assert set(service_areas()[area]) == {"fi", "sv", "en"}, "names only: callers iterate them"


def test_duty_email_has_redacted_text_reasons_and_link_and_nothing_personal():
    mail = urgent.duty_email(EVENT, units()["turku-ed"], "https://palaute.example/")
    assert mail.kind == urgent.DUTY and mail.to == units()["turku-ed"].duty_email
    assert "[PHONE]" in mail.body and "self_harm" in mail.body
    assert f"https://palaute.example/console/urgent#item-{EVENT['feedback_id']}" in mail.body
    assert EVENT["respondent_ref"] not in mail.body + mail.subject
    assert mail.mail_id == urgent.duty_email(EVENT, units()["turku-ed"], "x").mail_id, "stable across resends"


def test_escalation_email_goes_to_the_area_and_says_why():
    state = urgent.new_state(EVENT, NOW)
    mail = urgent.escalation_email(state, units()["turku-ed"], escalation_email("emergency"), None, "http://c", 1800)
    assert mail.to == escalation_email("emergency") and mail.kind == urgent.ESCALATION
    assert "30 minutes" in mail.body and units()["turku-ed"].duty_email in mail.body
    assert urgent.NO_TEXT in mail.body
    assert mail.mail_id != urgent.duty_email(EVENT, units()["turku-ed"], "x").mail_id


def test_state_holds_no_text_and_no_respondent():
    state = urgent.new_state(EVENT, NOW)
    assert state["status"] == urgent.OPEN and "text" not in state and "respondent_ref" not in state
    assert state["reasons"] == ["self_harm"]


def test_escalation_query_is_relative_to_now():
    query = urgent.due_for_escalation_query(NOW, 600)
    cutoff = query["bool"]["filter"][1]["range"]["duty_email_sent_at"]["lte"]
    assert cutoff == utc_iso(NOW - timedelta(seconds=600))
    assert {"term": {"status": urgent.OPEN}} in query["bool"]["filter"]


@pytest.mark.parametrize("status", [urgent.OPEN, urgent.ESCALATED])
def test_acknowledgement_times_from_the_duty_email(status):
    state = {**urgent.new_state(EVENT, NOW - timedelta(minutes=5)), "status": status}
    ack = {"schema_version": 1, "feedback_id": EVENT["feedback_id"], "acknowledged_by": "ed-lead",
           "acknowledged_at": utc_iso(NOW)}
    assert event_errors("feedback.urgent_acks", ack) == []
    fields, waited = urgent.acknowledgement(state, ack)
    assert fields["status"] == urgent.ACKNOWLEDGED and fields["acknowledged_by"] == "ed-lead"
    assert waited == pytest.approx(300, abs=1)
    assert urgent.acknowledgement({**state, **fields}, ack) is None, "a repeat changes nothing"


def test_unacknowledged_query_limits_to_the_leads_units():
    assert urgent.unacknowledged_query(["salo-ed"])["bool"]["filter"][1] == {"terms": {"unit": ["salo-ed"]}}
    assert len(urgent.unacknowledged_query(None)["bool"]["filter"]) == 1
