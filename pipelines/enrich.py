"""The enrichment step: feedback.received events in, feedback.enriched events out.

Per item: redact personal data, detect the language. Per batch: embed the redacted
texts in one call (the expensive part) and classify. An item that fails is returned
as a failure with its reason instead of failing the batch.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.clock import utc_now
from pipelines.classify import Classification, FeedbackClassifier
from pipelines.embedding import Embedder
from pipelines.language import detect_language
from pipelines.redaction import redact


@dataclass(frozen=True)
class Failure:
    """Why one event could not be enriched."""

    feedback_id: str | None
    reason: str
    error_type: str


@dataclass(frozen=True)
class _Prepared:
    event: dict[str, Any]
    text: str
    redactions: dict[str, int]
    language: str
    language_confidence: float


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def text_fingerprint(event: dict[str, Any], redacted_text: str) -> str | None:
    """Same unit, same source (kiosk, respondent or channel), same words -> same fingerprint.

    Scoped to the source so that two residents who both write "Kiitos!" are not
    duplicates, while one kiosk sending one comment again and again is.
    """
    words = _NON_WORD.sub(" ", redacted_text.lower()).split()
    if not words:
        return None
    source = event.get("source") or {}
    origin = source.get("kiosk_id") or event.get("respondent_ref") or event["channel"]
    basis = f"{event['unit']}|{origin}|{' '.join(words)}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]


def _utc_now() -> str:
    return utc_now()


def prepare(event: dict[str, Any]) -> _Prepared:
    """Redact and detect language for one validated feedback.received event."""
    result = redact(event["text"])
    guess = detect_language(result.text, event.get("language_hint"))
    return _Prepared(event, result.text, dict(result.counts), guess.language, guess.confidence)


def build_enriched(p: _Prepared, embedding: np.ndarray | None, c: Classification, embedder: Embedder,
                   classifier: FeedbackClassifier) -> dict[str, Any]:
    e = p.event
    return {
        "schema_version": 1,
        "feedback_id": e["feedback_id"],
        "channel": e["channel"],
        "unit": e["unit"],
        "service_area": e.get("service_area") or "",
        "received_at": e["received_at"],
        "submitted_at": e.get("submitted_at"),
        "enriched_at": _utc_now(),
        "text": p.text,
        "redactions": p.redactions,
        "rating": e.get("rating"),
        "rating_scale": e.get("rating_scale"),
        "language": p.language,
        "language_confidence": p.language_confidence,
        "respondent_ref": e.get("respondent_ref"),
        "follow_up_consent": bool(e.get("follow_up_consent")),
        "embedding": None if embedding is None else [round(float(x), 6) for x in embedding],
        "embedding_model": embedder.name,
        "themes": [{"code": t.code, "score": round(float(t.score), 4)} for t in c.themes],
        "sentiment": {"label": c.sentiment, "score": round(float(c.sentiment_score), 4)},
        "urgency": {"flag": bool(c.urgent), "score": round(float(c.urgency_score), 4),
                    "reasons": list(c.urgency_reasons)},
        "duplicate_of": None,
        "text_fingerprint": text_fingerprint(e, p.text),
        "model_version": classifier.model_version,
        "taxonomy_version": classifier.taxonomy_version,
        "source": e.get("source") or {},
    }


def enrich_batch(events: list[dict[str, Any]], embedder: Embedder, classifier: FeedbackClassifier,
                 steps: dict[str, float] | None = None) -> list[dict[str, Any] | Failure]:
    """Enrich validated events; the result list is aligned with the input. ``steps``, when
    given, receives the seconds spent on prepare (redaction, language), embed, classify and build."""
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        if steps is not None:
            steps[step] = steps.get(step, 0.0) + now - clock[0]
        clock[0] = now

    results: list[dict[str, Any] | Failure | None] = [None] * len(events)
    prepared: list[tuple[int, _Prepared]] = []
    for i, event in enumerate(events):
        try:
            prepared.append((i, prepare(event)))
        except Exception as exc:  # noqa: BLE001 - one bad item must not sink the batch
            results[i] = Failure(event.get("feedback_id"), f"prepare failed: {exc}", type(exc).__name__)
    lap("prepare")
    with_text = [(i, p) for i, p in prepared if p.text.strip()]
    vectors = embedder.encode([p.text for _, p in with_text], kind="passage") if with_text else None
    lap("embed")
    by_index: dict[int, np.ndarray] = {}
    if vectors is not None:
        by_index = {i: vectors[k] for k, (i, _) in enumerate(with_text)}
    if prepared:
        zeros = np.zeros(embedder.dim, dtype=np.float32)
        matrix = np.stack([by_index.get(i, zeros) for i, _ in prepared])
        # A kiosk 3 (of 4 smileys) and a survey 3 (of 5) mean different things: pass the scale.
        classes = classifier.classify(matrix, [p.text for _, p in prepared], [p.language for _, p in prepared],
                                      [p.event.get("rating") for _, p in prepared],
                                      rating_scales=[p.event.get("rating_scale") for _, p in prepared])
        lap("classify")
        for (i, p), c in zip(prepared, classes):
            try:
                results[i] = build_enriched(p, by_index.get(i), c, embedder, classifier)
            except Exception as exc:  # noqa: BLE001
                results[i] = Failure(p.event.get("feedback_id"), f"build failed: {exc}", type(exc).__name__)
        lap("build")
    return [r if r is not None else Failure(None, "not processed", "InternalError") for r in results]
