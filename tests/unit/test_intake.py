"""Channel bodies -> feedback.received events and contact records."""
from __future__ import annotations

import pytest
import time_machine
from pydantic import ValidationError

from pipelines.intake import (AppFeedbackIn, KioskEventIn, SurveyResponseIn, feedback_id_for, from_app, from_kiosk,
                              from_survey, survey_from_csv_row)
from schemas.validate import event_errors


def app_body(**kw):
    base = {"unit": "turku-ed", "text": "Jonotin neljä tuntia.", "idempotency_key": "k-1"}
    return AppFeedbackIn.model_validate({**base, **kw})


def test_app_feedback_becomes_a_valid_event_without_contact_details():
    intake = from_app(app_body(contact={"email": "a@example.fi", "language": "sv"}, follow_up_consent=True))
    assert event_errors("feedback.received", intake.event) == []
    assert "contact" not in intake.event and "a@example.fi" not in str(intake.event)
    assert intake.contact is not None and intake.contact.email == "a@example.fi"
    assert intake.contact.language == "sv" and intake.contact.follow_up_consent
    assert intake.event["follow_up_consent"] is True
    assert intake.event["service_area"] == "emergency"


def test_same_idempotency_key_gives_same_feedback_id():
    assert from_app(app_body()).event["feedback_id"] == from_app(app_body()).event["feedback_id"]
    assert feedback_id_for("app", "x") != feedback_id_for("kiosk", "x")
    assert feedback_id_for("app", None) != feedback_id_for("app", None)


@pytest.mark.parametrize("body, field", [
    ({"unit": "nowhere", "text": "x"}, "unit"),
    ({"unit": "turku-ed"}, "text"),
    ({"unit": "turku-ed", "text": 5}, "text"),
    ({"unit": "turku-ed", "text": "x", "contact": {"email": "not-an-email"}}, "contact.email"),
    ({"unit": "turku-ed", "text": "x", "colour": "red"}, "colour"),
])
def test_bad_app_bodies_name_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        AppFeedbackIn.model_validate(body)
    fields = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert field in fields


def test_consent_without_contact_is_rejected():
    with pytest.raises(ValidationError, match="no contact"):
        app_body(follow_up_consent=True)


def test_preferred_channel_needs_its_detail():
    with pytest.raises(ValidationError, match="preferred_channel"):
        app_body(contact={"email": "a@example.fi", "preferred_channel": "sms"})


def test_kiosk_smiley_range_and_rating():
    with pytest.raises(ValidationError):
        KioskEventIn.model_validate({"kiosk_id": "k", "unit": "turku-ed", "smiley": 5})
    intake = from_kiosk(KioskEventIn.model_validate({"kiosk_id": "k1", "unit": "turku-ed", "smiley": 4}))
    assert intake.event["rating"] == 4 and intake.event["rating_scale"] == 4 and intake.event["text"] == ""
    assert intake.contact is None
    assert event_errors("feedback.received", intake.event) == []


def test_survey_response_keyed_by_survey_and_response():
    body = SurveyResponseIn.model_validate({"survey_id": "s", "response_id": "r1", "unit": "raisio-hc",
                                            "answer_text": "Hyvä", "score": 1,
                                            "respondent": {"phone": "040 123 4567", "follow_up_consent": True}})
    intake = from_survey(body)
    assert intake.event["feedback_id"] == feedback_id_for("survey", "s:r1")
    assert intake.contact and intake.contact.preferred_channel == "sms"
    assert event_errors("feedback.received", intake.event) == []


@time_machine.travel("2026-10-05T12:00:00Z", tick=False)  # submission times must be recent to the clock
def test_csv_row_parsing():
    row = {"response_id": "R1", "submitted_at": "2026-10-02T10:00:00+03:00", "unit": "turku-dental",
           "question_id": "q", "score": "5", "answer": "Kallis, kallis", "email": "x@example.fi", "phone": "",
           "language": "fi", "follow_up": "yes"}
    body = survey_from_csv_row(row, "export")
    assert body.score == 5 and body.respondent and body.respondent.follow_up_consent
    with pytest.raises(ValueError, match="response_id"):
        survey_from_csv_row({**row, "response_id": ""}, "export")



def test_ingest_contact_records_match_their_schema():
    # ingest no longer re-validates what it builds on its hot path: this is the check instead.
    from cryptography.fernet import Fernet

    from pipelines.pseudonym import respondent_ref
    from pipelines.vault import ContactVault
    from services.apps.ingest import contact_event
    from services.settings import Settings

    vault = ContactVault([Fernet.generate_key().decode()])
    for contact in ({"email": "a@example.fi"}, {"phone": "+358401234567", "language": "sv"}):
        intake = from_app(app_body(contact=contact, follow_up_consent=True))
        assert intake.contact is not None
        ref = respondent_ref(b"k" * 32, email=intake.contact.email, phone=intake.contact.phone,
                             push_token=intake.contact.push_token)
        assert event_errors("respondent.contacts", contact_event(Settings(), vault, ref, intake.contact)) == []


def test_uuid5_text_is_uuid5_for_any_key() -> None:
    import uuid

    from faker import Faker

    from pipelines.intake import FEEDBACK_NAMESPACE, uuid5_text

    fake = Faker(["fi_FI", "sv_SE", "en_GB"])
    Faker.seed(5)
    names = [f"app:{fake.pystr(1, 40)}" for _ in range(300)] + [f"kiosk:{fake.name()} ✓ {fake.uuid4()}" for _ in range(300)]
    for name in names + ["", "survey:", "app:\u00a0x"]:
        assert uuid5_text(FEEDBACK_NAMESPACE, name) == str(uuid.uuid5(FEEDBACK_NAMESPACE, name))
