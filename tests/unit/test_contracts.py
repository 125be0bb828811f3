"""Schemas, topics and sample data agree with each other."""
from __future__ import annotations

import json

import pytest

from pipelines.documents import to_document
from pipelines.intake import AppFeedbackIn, KioskEventIn, SurveyResponseIn, from_app, from_kiosk, from_survey
from schemas import EVENT_VERSIONS, SCHEMA_DIR, event_schema, load_json
from schemas.validate import EventValidationError, event_errors, validate_event
from devstack.demo_samples import sample_lines
from services.adapters.kafka_io import dead_letter
from services.topics import ALL_TOPICS


def test_every_event_type_has_a_schema_and_topics_name_existing_schemas():
    for name in EVENT_VERSIONS:
        assert event_schema(name)["title"].startswith(name)
    assert {t.schema for t in ALL_TOPICS} <= set(EVENT_VERSIONS)
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)


def test_contacts_notifications_and_the_notification_log_are_co_partitioned():
    by = {t.name: t for t in ALL_TOPICS}
    for name in ("respondent.contacts", "closure.notification_log"):
        assert by[name].partitions == by["closure.notifications"].partitions
        assert by[name].config["cleanup.policy"] == "compact"


def test_notification_log_records_match_their_schema():
    from datetime import datetime, timezone

    from pipelines import notification_log as nlog

    now = datetime.now(timezone.utc)
    entries = nlog.with_entry({}, "n1", nlog.Entry("delivered", now, True, "email", "fi", 2), now)
    entries = nlog.with_entry(entries, "n2", nlog.Entry(nlog.SENDING, now, False, "sms", "sv"), now)
    assert event_errors("closure.notification_log", json.loads(nlog.dump(entries))) == []
    assert event_errors("closure.notification_log", {"n1": ["bogus", "2026-01-01T00:00:00Z"]})


@pytest.mark.parametrize("name, model, convert", [
    ("app.jsonl", AppFeedbackIn, from_app), ("survey.jsonl", SurveyResponseIn, from_survey),
    ("kiosk.jsonl", KioskEventIn, from_kiosk)])
def test_every_sample_becomes_a_schema_valid_event(name, model, convert):
    for body in sample_lines(name):
        event = convert(model.model_validate(body)).event
        assert event_errors("feedback.received", event) == [], body


def test_invalid_samples_are_invalid():
    models = {"app": AppFeedbackIn, "survey": SurveyResponseIn, "kiosk": KioskEventIn}
    for item in sample_lines("invalid.jsonl"):
        with pytest.raises(Exception):
            models[item["channel"]].model_validate(item["body"])


def test_validation_errors_name_fields():
    with pytest.raises(EventValidationError) as err:
        validate_event("feedback.received", {"schema_version": 1, "channel": "fax"})
    fields = {e.field for e in err.value.errors}
    assert {"feedback_id", "channel", "unit", "text"} <= fields


def test_dead_letter_record_is_valid_and_keeps_the_bytes():
    from pipelines.dead_letters import unseal
    from pipelines.vault import ContactVault
    from services.settings import Settings

    vault = ContactVault([k.get_secret_value() for k in Settings().contact_keys])
    record = dead_letter("enricher", "boom", "ValueError", b"\x00raw", vault=vault)
    assert event_errors("feedback.dlq", record) == []
    assert unseal(vault, record).original == b"\x00raw"


def test_documents_fit_the_strict_mapping():
    mapping = load_json("elasticsearch/feedback-template.json")["template"]["mappings"]["properties"]
    event = json.loads((SCHEMA_DIR / "examples" / "feedback.enriched.json").read_text())
    assert event_errors("feedback.enriched", event) == []
    doc = to_document(event)
    assert set(doc) <= set(mapping), set(doc) - set(mapping)
    assert set(doc["source"]) <= set(mapping["source"]["properties"])
