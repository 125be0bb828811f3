"""Schemas, topics and sample data agree with each other."""
from __future__ import annotations

import json

import pytest

from pipelines.documents import to_document
from pipelines.intake import AppFeedbackIn, KioskEventIn, SurveyResponseIn, from_app, from_kiosk, from_survey
from schemas import EVENT_VERSIONS, SCHEMA_DIR, event_schema, load_json
from schemas.validate import EventValidationError, event_errors, validate_event
from services.demo import SAMPLES, _jsonl
from services.kafka_io import dead_letter
from services.topics import ALL_TOPICS


def test_every_event_type_has_a_schema_and_topics_name_existing_schemas():
    for name in EVENT_VERSIONS:
        assert event_schema(name)["title"].startswith(name)
    assert {t.schema for t in ALL_TOPICS} <= set(EVENT_VERSIONS)
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)


def test_contacts_and_notifications_are_co_partitioned():
    by = {t.name: t for t in ALL_TOPICS}
    assert by["respondent.contacts"].partitions == by["closure.notifications"].partitions
    assert by["respondent.contacts"].config["cleanup.policy"] == "compact"


@pytest.mark.parametrize("name, model, convert", [
    ("app.jsonl", AppFeedbackIn, from_app), ("survey.jsonl", SurveyResponseIn, from_survey),
    ("kiosk.jsonl", KioskEventIn, from_kiosk)])
def test_every_sample_becomes_a_schema_valid_event(name, model, convert):
    for body in _jsonl(name):
        event = convert(model.model_validate(body)).event
        assert event_errors("feedback.received", event) == [], body


def test_invalid_samples_are_invalid():
    models = {"app": AppFeedbackIn, "survey": SurveyResponseIn, "kiosk": KioskEventIn}
    for item in _jsonl("invalid.jsonl"):
        with pytest.raises(Exception):
            models[item["channel"]].model_validate(item["body"])


def test_validation_errors_name_fields():
    with pytest.raises(EventValidationError) as err:
        validate_event("feedback.received", {"schema_version": 1, "channel": "fax"})
    fields = {e.field for e in err.value.errors}
    assert {"feedback_id", "channel", "unit", "text"} <= fields


def test_dead_letter_record_is_valid_and_keeps_the_bytes():
    import base64

    record = dead_letter("enricher", "boom", "ValueError", b"\x00raw")
    assert base64.b64decode(record["original_b64"]) == b"\x00raw"


def test_documents_fit_the_strict_mapping():
    mapping = load_json("elasticsearch/feedback-template.json")["template"]["mappings"]["properties"]
    event = json.loads((SCHEMA_DIR / "examples" / "feedback.enriched.json").read_text())
    assert event_errors("feedback.enriched", event) == []
    doc = to_document(event)
    assert set(doc) <= set(mapping), set(doc) - set(mapping)
    assert set(doc["source"]) <= set(mapping["source"]["properties"])
