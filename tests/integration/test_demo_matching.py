"""The demo's action finds its respondents on any date: the sample set and the action's
period move with the run, and matching uses the time the resident gave the feedback.

Runs the demo's own sample set through the real intake code with the clock moved (today,
a year ahead, three years and a bit ahead) and asks the real Elasticsearch which items
the demo's action answers. The expected items come from the sample set's own reference
labels (deploy/local/samples/expected.json), not from the code under test.
"""
from __future__ import annotations

import copy
import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from pipelines.closure import matching_query
from pipelines.intake import AppFeedbackIn, KioskEventIn, SurveyResponseIn, from_app, from_kiosk, from_survey, \
    survey_from_csv_row
from pipelines.pseudonym import respondent_ref
from devstack.demo_samples import SAMPLES, samples_at

pytestmark = pytest.mark.integration

EXPECTED = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
TEMPLATE = json.loads((SAMPLES.parent.parent.parent / "schemas" / "examples" / "feedback.enriched.json")
                      .read_text(encoding="utf-8"))


def _enriched(intake, sample_id: str) -> dict:
    """The intake event as the enricher would emit it, themes from the reference labels."""
    event = {**copy.deepcopy(TEMPLATE), **intake.event, "enriched_at": intake.event["received_at"],
             "embedding": None}
    event["themes"] = [{"code": c, "score": 0.9} for c in EXPECTED["labels"][sample_id]["themes"]]
    event["text_fingerprint"] = event["feedback_id"]
    c = intake.contact
    if c is not None:
        event["respondent_ref"] = respondent_ref(b"test-key", email=c.email, phone=c.phone, push_token=c.push_token)
    return event


def _events_at(samples) -> tuple[list[dict], dict[str, str]]:
    events, sample_of = [], {}
    for body in samples.bodies("app"):
        events.append(_enriched(from_app(AppFeedbackIn.model_validate(body)), body["idempotency_key"]))
        sample_of[events[-1]["feedback_id"]] = body["idempotency_key"]
    for body in samples.bodies("survey"):
        events.append(_enriched(from_survey(SurveyResponseIn.model_validate(body)), body["response_id"]))
        sample_of[events[-1]["feedback_id"]] = body["response_id"]
    for row in csv.DictReader(io.StringIO(samples.csv_text())):
        body = survey_from_csv_row(row, "csv-export")
        events.append(_enriched(from_survey(body, import_file="export.csv"), row["response_id"]))
        sample_of[events[-1]["feedback_id"]] = row["response_id"]
    for line, body in enumerate(samples.bodies("kiosk"), start=1):
        events.append(_enriched(from_kiosk(KioskEventIn.model_validate(body)), f"kiosk.jsonl:{line}"))
        sample_of[events[-1]["feedback_id"]] = f"kiosk.jsonl:{line}"
    return events, sample_of


def _delete(es, alias: str, ids: list[str]) -> None:
    """Leave the index empty for the next case (the test cluster has no delete-by-query)."""
    es.bulk(operations=[{"delete": {"_index": alias, "_id": i}} for i in ids], refresh=True)


@pytest.mark.parametrize("days_ahead", [0, 365, 3 * 365 + 17])
def test_demo_action_matches_its_respondents_with_the_clock_moved(pipeline_env, index_events, days_ahead):
    _, settings = pipeline_env
    moved = datetime.now(timezone.utc) + timedelta(days=days_ahead)
    with time_machine.travel(moved, tick=True):
        samples = samples_at()
        events, sample_of = _events_at(samples)
        action = samples.action()
    # Every event was received "now" on the moved clock: matching must not depend on that.
    assert all(e["received_at"] >= (moved - timedelta(minutes=5)).isoformat()[:16] for e in events)
    alias = settings.index_alias
    es = index_events(settings, events)
    hits = es.search(index=alias, size=1000, _source=False, query={"bool": {"filter": [
        matching_query(action), {"term": {"follow_up_consent": True}}]}})["hits"]["hits"]
    matched = sorted(sample_of[h["_id"]] for h in hits)
    assert matched == sorted(EXPECTED["demo_action"]["item_ids"])
    _delete(es, alias, [e["feedback_id"] for e in events])


def test_feedback_given_outside_the_period_does_not_match(pipeline_env, index_events):
    """submitted_at decides when present; received_at only when the channel gave no time."""
    _, settings = pipeline_env
    period = {"from": "2031-03-01T00:00:00Z", "to": "2031-03-31T23:59:59Z"}
    base = {**copy.deepcopy(TEMPLATE), "embedding": None, "unit": "turku-ed", "follow_up_consent": True,
            "themes": [{"code": "access_waiting", "score": 0.9}], "respondent_ref": "r_x"}
    cases = {  # feedback_id: (submitted_at, received_at, should match)
        "00000000-0000-4000-8000-000000000001": ("2031-03-10T10:00:00+02:00", "2031-06-01T00:00:00Z", True),
        "00000000-0000-4000-8000-000000000002": ("2031-02-27T10:00:00Z", "2031-03-10T00:00:00Z", False),
        "00000000-0000-4000-8000-000000000003": (None, "2031-03-15T00:00:00Z", True),
        "00000000-0000-4000-8000-000000000004": (None, "2031-04-02T00:00:00Z", False),
    }
    events = [{**base, "feedback_id": fid, "submitted_at": sub, "received_at": rec, "text_fingerprint": fid}
              for fid, (sub, rec, _) in cases.items()]
    es = index_events(settings, events)
    hits = es.search(index=settings.index_alias, size=100, _source=False, query=matching_query(
        {"unit": "turku-ed", "themes": ["access_waiting"], "period": period}))["hits"]["hits"]
    assert {h["_id"] for h in hits} == {fid for fid, (_, _, ok) in cases.items() if ok}
    _delete(es, settings.index_alias, list(cases))
