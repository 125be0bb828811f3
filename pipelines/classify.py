"""Themes, sentiment and urgency for feedback texts from their embeddings.

Two modes, one interface:

- trained heads (``pipelines/models/<embedder-slug>/<model_version>/``): logistic
  heads on the embeddings, blended with prototype similarity for Finnish and
  Swedish because the heads are trained mostly on English;
- prototype-only mode, only when asked for explicitly (``allow_prototype_only``;
  FEEDBACK_PROTOTYPE_ONLY for the enricher): cosine to the
  taxonomy's prototype sentences, calibrated per text (z-score across themes)
  because e5 cosines bunch in 0.75-1.0 and an absolute cut-off would not transfer.

Urgency is always the keyword lexicon (``pipelines.urgency``), optionally raised by
a trained head. Embeddings must be made with the kind recorded in the artifact
(``FeedbackClassifier.embed_kind``, "passage").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.embedding import Embedder
from pipelines.urgency import REASONS, detect_urgency

REPO_ROOT = Path(__file__).resolve().parent.parent
TAXONOMY_PATH = REPO_ROOT / "schemas" / "taxonomy.json"
MODELS_DIR = Path(__file__).resolve().parent / "models"
SENTIMENTS = ("negative", "neutral", "positive")
EMBED_KIND = "passage"

# Short anchors for the prototype-only sentiment fallback.
SENTIMENT_ANCHORS: dict[str, dict[str, list[str]]] = {
    "positive": {
        "fi": ["Kiitos, palvelu oli erinomaista.", "Olen todella tyytyväinen hoitoon.", "Ihana ja ystävällinen henkilökunta."],
        "sv": ["Tack, servicen var utmärkt.", "Jag är mycket nöjd med vården."],
        "en": ["Thank you, the service was excellent.", "I am very happy with the care I received."],
    },
    "negative": {
        "fi": ["Palvelu oli surkeaa ja olen todella pettynyt.", "Tämä oli kamala kokemus.", "Olen erittäin tyytymätön."],
        "sv": ["Servicen var usel och jag är mycket besviken.", "Det var en hemsk upplevelse."],
        "en": ["The service was terrible and I am very disappointed.", "This was an awful experience."],
    },
}


@dataclass(frozen=True)
class ThemeScore:
    code: str
    score: float


@dataclass(frozen=True)
class Classification:
    themes: tuple[ThemeScore, ...]
    sentiment: str
    sentiment_score: float
    urgent: bool
    urgency_score: float
    urgency_reasons: tuple[str, ...]


def load_taxonomy(path: Path = TAXONOMY_PATH) -> dict[str, Any]:
    """The theme taxonomy shared by every component."""
    return json.loads(path.read_text(encoding="utf-8"))


def embedder_slug(name: str) -> str:
    """Directory-safe name of an embedder: ``st:all-MiniLM-L6-v2`` -> ``st-all-minilm-l6-v2``."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name.lower()).strip("-")


def prototype_texts(taxonomy: dict[str, Any]) -> tuple[list[str], list[int], list[str]]:
    """All prototype sentences with their theme index and language."""
    texts: list[str] = []
    theme_idx: list[int] = []
    langs: list[str] = []
    for i, theme in enumerate(taxonomy["themes"]):
        for lang, sentences in theme.get("prototypes", {}).items():
            for s in sentences:
                texts.append(s)
                theme_idx.append(i)
                langs.append(lang)
    return texts, theme_idx, langs


def anchor_texts() -> tuple[list[str], list[int]]:
    """Sentiment anchor sentences with polarity +1 / -1."""
    texts: list[str] = []
    pol: list[int] = []
    for label, sign in (("positive", 1), ("negative", -1)):
        for sentences in SENTIMENT_ANCHORS[label].values():
            texts.extend(sentences)
            pol.extend([sign] * len(sentences))
    return texts, pol


def rating_to_score(rating: int | None, scale: int | None = None) -> float | None:
    """Channel rating (1 = best) to -1..1.

    Without the scale a 3 is ambiguous (kiosk 1-4: unhappy; survey 1-5: neutral), so
    it leans slightly negative.
    """
    if rating is None:
        return None
    r = int(rating)
    if scale and scale > 1:
        r = min(max(r, 1), scale)
        return 1.0 - 2.0 * (r - 1) / (scale - 1)
    return {1: 1.0, 2: 0.5, 3: -0.15, 4: -0.75}.get(r, -1.0 if r >= 5 else 1.0)


def score_to_probs(score: np.ndarray) -> np.ndarray:
    """-1..1 polarity to (neg, neu, pos) probabilities."""
    s = np.clip(score, -1.0, 1.0)
    return np.stack([np.maximum(-s, 0), 1.0 - np.abs(s), np.maximum(s, 0)], axis=-1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def proto_theme_scores(emb: np.ndarray, proto_emb: np.ndarray, proto_theme: np.ndarray, n_themes: int,
                       center: float, slope: float) -> np.ndarray:
    """Calibrated prototype similarity in 0..1, [n, n_themes].

    Per text, each theme's best prototype cosine is z-scored against the other
    themes, so the score says "this theme stands out" independent of the embedder's
    cosine range.
    """
    sims = emb @ proto_emb.T
    per_theme = np.full((emb.shape[0], n_themes), -1.0, dtype=np.float32)
    for t in range(n_themes):
        cols = proto_theme == t
        if cols.any():
            per_theme[:, t] = sims[:, cols].max(axis=1)
    mu = per_theme.mean(axis=1, keepdims=True)
    sd = per_theme.std(axis=1, keepdims=True) + 1e-6
    z = (per_theme - mu) / sd
    return _sigmoid(slope * (z - center)).astype(np.float32)


@dataclass
class _Params:
    """Everything classify needs; loaded from artifacts or built from prototypes."""

    codes: list[str]
    proto_emb: np.ndarray
    proto_theme: np.ndarray
    anchor_emb: np.ndarray
    anchor_pol: np.ndarray
    proto_center: float = 1.6
    proto_slope: float = 2.5
    proto_threshold: float = 0.5
    anchor_scale: float = 0.03
    theme_coef: np.ndarray | None = None
    theme_intercept: np.ndarray | None = None
    has_head: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    # Theme heads and thresholds for non-English texts (trained with full fi/sv seed weight);
    # None in older artifacts: one head set for every language.
    theme_coef_ml: np.ndarray | None = None
    theme_intercept_ml: np.ndarray | None = None
    thresholds_ml: np.ndarray | None = None
    proto_weight: dict[str, float] = field(default_factory=lambda: {"en": 0.0, "fi": 0.3, "sv": 0.3})
    lang_threshold_scale: dict[str, float] = field(default_factory=dict)
    sent_coef: np.ndarray | None = None
    sent_intercept: np.ndarray | None = None
    sent_bias: dict[str, list[float]] = field(default_factory=dict)
    sent_coef_ml: np.ndarray | None = None  # head for fi/sv (more seed weight); None = one head
    sent_intercept_ml: np.ndarray | None = None
    rating_weight: float = 0.35
    urg_coef: np.ndarray | None = None
    urg_intercept: float = 0.0
    urg_proto_emb: np.ndarray | None = None
    urg_proto_reason: np.ndarray | None = None
    urg_threshold: float = 1.1  # above 1: head alone never flags
    urgent_threshold: float = 0.75
    max_themes: int = 4


class FeedbackClassifier:
    """Themes, sentiment and urgency from embeddings; see the module docstring."""

    def __init__(self, params: _Params, model_version: str, taxonomy_version: str, embedder_name: str,
                 embed_kind: str = EMBED_KIND, metadata: dict[str, Any] | None = None) -> None:
        self._p = params
        self.model_version = model_version
        self.taxonomy_version = taxonomy_version
        self.embedder_name = embedder_name
        self.embed_kind = embed_kind
        self.metadata = metadata or {}

    @property
    def theme_codes(self) -> list[str]:
        return list(self._p.codes)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, embedder: Embedder, model_dir: Path | None = None,
             allow_prototype_only: bool = False) -> "FeedbackClassifier":
        """Trained artifacts from ``model_dir`` (or the newest bundled ones for this embedder).

        Without any, NoTrainedHeads, unless ``allow_prototype_only`` asks for the (much
        weaker) prototype-only classifier explicitly: never a silent fallback.
        """
        model_dir = trained_heads(embedder.name, model_dir)
        if model_dir is not None:
            return cls.from_artifacts(Path(model_dir), embedder_name=embedder.name)
        if not allow_prototype_only:
            raise NoTrainedHeads(embedder.name)
        return cls.prototype_only(embedder)

    @classmethod
    def prototype_only(cls, embedder: Embedder, taxonomy: dict[str, Any] | None = None) -> "FeedbackClassifier":
        """Classifier from the taxonomy's prototype sentences only (no training)."""
        taxonomy = taxonomy or load_taxonomy()
        texts, theme_idx, _ = prototype_texts(taxonomy)
        a_texts, a_pol = anchor_texts()
        emb = embedder.encode(texts + a_texts, kind=EMBED_KIND)
        params = _Params(
            codes=[t["code"] for t in taxonomy["themes"]],
            proto_emb=emb[: len(texts)],
            proto_theme=np.asarray(theme_idx),
            anchor_emb=emb[len(texts):],
            anchor_pol=np.asarray(a_pol),
        )
        return cls(params, model_version="prototype-0", taxonomy_version=taxonomy["version"],
                   embedder_name=embedder.name)

    @classmethod
    def from_artifacts(cls, model_dir: Path, embedder_name: str | None = None) -> "FeedbackClassifier":
        """Load ``weights.npz`` and ``model.json`` written by ``pipelines.training``."""
        meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
        if embedder_name and meta["embedder"] != embedder_name:
            raise ValueError(f"model in {model_dir} was trained for {meta['embedder']!r}, not {embedder_name!r}")
        w = np.load(model_dir / "weights.npz")
        cfg = meta["config"]
        params = _Params(
            codes=list(meta["themes"]),
            proto_emb=w["proto_emb"].astype(np.float32),
            proto_theme=w["proto_theme"],
            anchor_emb=w["anchor_emb"].astype(np.float32),
            anchor_pol=w["anchor_pol"],
            proto_center=cfg["proto_center"],
            proto_slope=cfg["proto_slope"],
            proto_threshold=cfg["proto_threshold"],
            anchor_scale=cfg.get("anchor_scale", 0.03),
            theme_coef=w["theme_coef"].astype(np.float32),
            theme_intercept=w["theme_intercept"].astype(np.float32),
            has_head=w["has_head"].astype(bool),
            thresholds=np.asarray([meta["thresholds"][c] for c in meta["themes"]], dtype=np.float32),
            theme_coef_ml=w["theme_coef_ml"].astype(np.float32) if "theme_coef_ml" in w.files else None,
            theme_intercept_ml=w["theme_intercept_ml"].astype(np.float32) if "theme_intercept_ml" in w.files else None,
            thresholds_ml=(np.asarray([meta["thresholds_ml"][c] for c in meta["themes"]], dtype=np.float32)
                           if "thresholds_ml" in meta else None),
            proto_weight=cfg["proto_weight"],
            lang_threshold_scale=cfg.get("lang_threshold_scale", {}),
            sent_coef=w["sent_coef"].astype(np.float32),
            sent_intercept=w["sent_intercept"].astype(np.float32),
            sent_bias=cfg.get("sent_bias", {}),
            sent_coef_ml=w["sent_coef_ml"].astype(np.float32) if "sent_coef_ml" in w.files else None,
            sent_intercept_ml=w["sent_intercept_ml"].astype(np.float32) if "sent_intercept_ml" in w.files else None,
            rating_weight=cfg.get("rating_weight", 0.35),
            urg_coef=w["urg_coef"].astype(np.float32) if "urg_coef" in w.files else None,
            urg_intercept=float(w["urg_intercept"]) if "urg_intercept" in w.files else 0.0,
            urg_proto_emb=w["urg_proto_emb"].astype(np.float32) if "urg_proto_emb" in w.files else None,
            urg_proto_reason=w["urg_proto_reason"] if "urg_proto_reason" in w.files else None,
            urg_threshold=cfg.get("urg_threshold", 1.1),  # old artifacts: lexicon only
            urgent_threshold=cfg.get("urgent_threshold", 0.75),
            max_themes=cfg.get("max_themes", 4),
        )
        return cls(params, model_version=meta["model_version"], taxonomy_version=meta["taxonomy_version"],
                   embedder_name=meta["embedder"], embed_kind=meta.get("embed_kind", EMBED_KIND), metadata=meta)

    # ------------------------------------------------------------------ scoring
    def theme_probabilities(self, embeddings: np.ndarray, languages: list[str]) -> np.ndarray:
        """Calibrated per-theme scores in 0..1, [n, themes]; compare to ``theme_thresholds``."""
        p = self._p
        emb = np.asarray(embeddings, dtype=np.float32)
        proto = proto_theme_scores(emb, p.proto_emb, p.proto_theme, len(p.codes), p.proto_center, p.proto_slope)
        if p.theme_coef is None:
            return proto
        head = _sigmoid(emb @ p.theme_coef.T + p.theme_intercept)
        non_en = self._non_english(languages)
        if p.theme_coef_ml is not None and p.theme_intercept_ml is not None and non_en.any():
            head[non_en] = _sigmoid(emb[non_en] @ p.theme_coef_ml.T + p.theme_intercept_ml)
        weights = np.asarray([p.proto_weight.get(lang, p.proto_weight.get("fi", 0.3)) for lang in languages],
                             dtype=np.float32)[:, None]
        mixed = (1.0 - weights) * head + weights * proto
        assert p.has_head is not None
        return np.where(p.has_head[None, :], mixed, proto).astype(np.float32)

    def theme_thresholds(self, languages: list[str] | None = None) -> np.ndarray:
        """Per-theme thresholds, [themes], or [n, themes] scaled per language when ``languages`` given.

        Heads trained mostly on English give lower probabilities to Finnish and
        Swedish texts, so those languages use scaled-down thresholds.
        """
        p = self._p
        base = (np.full(len(p.codes), p.proto_threshold, dtype=np.float32) if p.thresholds is None
                else p.thresholds)
        if languages is None:
            return base
        per_text = np.repeat(base[None, :], len(languages), axis=0)
        if p.thresholds_ml is not None:
            per_text[self._non_english(languages)] = p.thresholds_ml
        scale = np.asarray([p.lang_threshold_scale.get(lang, 1.0) for lang in languages], dtype=np.float32)
        return per_text * scale[:, None]

    @staticmethod
    def _non_english(languages: list[str]) -> np.ndarray:
        return np.asarray([lang != "en" for lang in languages], dtype=bool)

    def sentiment_probabilities(self, embeddings: np.ndarray, languages: list[str]) -> np.ndarray:
        """(negative, neutral, positive) probabilities from the text alone, [n, 3]."""
        p = self._p
        emb = np.asarray(embeddings, dtype=np.float32)
        if p.sent_coef is None:
            sims = emb @ p.anchor_emb.T
            pos = sims[:, p.anchor_pol > 0].max(axis=1)
            neg = sims[:, p.anchor_pol < 0].max(axis=1)
            return score_to_probs(np.tanh((pos - neg) / p.anchor_scale))
        logits = emb @ p.sent_coef.T + p.sent_intercept
        if p.sent_coef_ml is not None and p.sent_intercept_ml is not None:
            non_en = self._non_english(languages)
            if non_en.any():
                logits[non_en] = emb[non_en] @ p.sent_coef_ml.T + p.sent_intercept_ml
        if p.sent_bias:
            # Per-language prior shift learnt on the multilingual seed examples.
            bias = np.asarray([p.sent_bias.get(lang, [0.0, 0.0, 0.0]) for lang in languages], dtype=np.float32)
            logits = logits + bias
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def urgency_head(self, embeddings: np.ndarray) -> np.ndarray | None:
        p = self._p
        if p.urg_coef is None:
            return None
        return _sigmoid(np.asarray(embeddings, dtype=np.float32) @ p.urg_coef + p.urg_intercept)

    def _nearest_urgent_reason(self, vector: np.ndarray) -> str:
        p = self._p
        if p.urg_proto_emb is None or p.urg_proto_reason is None or not len(p.urg_proto_emb):
            return "safeguarding"
        return REASONS[int(p.urg_proto_reason[int(np.argmax(p.urg_proto_emb @ vector))])]

    def classify(self, embeddings: np.ndarray, texts: list[str], languages: list[str],
                 ratings: list[int | None] | None = None,
                 rating_scales: list[int | None] | None = None) -> list[Classification]:
        """Classify a batch. ``embeddings`` row i belongs to ``texts[i]``.

        ``ratings`` are channel ratings with 1 = best (kiosk 1-4, survey 1-5);
        ``rating_scales`` (optional) gives each rating's scale. An empty text gets no
        themes and its sentiment from the rating alone.
        """
        n = len(texts)
        if n == 0:
            return []
        emb = np.asarray(embeddings, dtype=np.float32).reshape(n, -1)
        langs = [lang if lang in ("fi", "sv", "en") else "fi" for lang in (languages or ["fi"] * n)]
        p = self._p
        has_text = np.asarray([bool(t and t.strip()) for t in texts])
        theme_p = self.theme_probabilities(emb, langs)
        thr = self.theme_thresholds(langs)
        sent_p = self.sentiment_probabilities(emb, langs)
        urg_head = self.urgency_head(emb)

        rs = ratings or [None] * n
        scales = rating_scales or [None] * n
        out: list[Classification] = []
        for i in range(n):
            r = rating_to_score(rs[i], scales[i])
            if not has_text[i]:
                score = 0.0 if r is None else r
                probs = score_to_probs(np.asarray(score))
                out.append(Classification((), SENTIMENTS[int(np.argmax(probs))], round(float(score), 4),
                                           False, 0.0, ()))
                continue
            probs = sent_p[i]
            if r is not None:
                probs = (1.0 - p.rating_weight) * probs + p.rating_weight * score_to_probs(np.asarray(r))
            label = SENTIMENTS[int(np.argmax(probs))]
            s_score = float(probs[2] - probs[0])

            above = np.flatnonzero(theme_p[i] >= thr[i])
            order = above[np.argsort(-theme_p[i][above])][: p.max_themes]
            themes = tuple(ThemeScore(p.codes[j], round(float(theme_p[i, j]), 4)) for j in order)

            hit = detect_urgency(texts[i])
            u_score = hit.score
            reasons = hit.reasons
            urgent = u_score >= p.urgent_threshold
            if urg_head is not None and urg_head[i] >= p.urg_threshold:
                # The head catches paraphrases the lexicon misses; name the nearest urgent example's reason.
                urgent = True
                u_score = max(u_score, float(urg_head[i]))
                if not reasons:
                    reasons = (self._nearest_urgent_reason(emb[i]),)
            out.append(Classification(themes, label, round(s_score, 4), bool(urgent), round(float(u_score), 4),
                                      reasons if u_score > 0 else ()))
        return out


class NoTrainedHeads(LookupError):
    """No trained classifier artifacts exist for an embedder."""

    def __init__(self, embedder_name: str) -> None:
        super().__init__(
            f"no trained heads for embedder {embedder_name!r} under {MODELS_DIR / embedder_slug(embedder_name)}: "
            f"use an embedder that has them ({', '.join(bundled_embedders()) or 'none bundled'}), train them "
            f"(`feedback train --embedder ...`) or set FEEDBACK_MODEL_DIR; FEEDBACK_PROTOTYPE_ONLY=true runs on "
            f"prototype similarity alone (much weaker, see pipelines/models/README.md)")


def bundled_embedders(root: Path = MODELS_DIR) -> list[str]:
    """Slugs of the embedders that have trained heads bundled."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and find_bundled_model(d.name, root)) \
        if root.is_dir() else []


def trained_heads(embedder_name: str, model_dir: Path | None = None) -> Path | None:
    """``model_dir`` when given, else the newest bundled artifacts for the embedder, else None."""
    return Path(model_dir) if model_dir is not None else find_bundled_model(embedder_name)


def find_bundled_model(embedder_name: str, root: Path = MODELS_DIR) -> Path | None:
    """Newest artifact dir for an embedder (``CURRENT`` file wins, else the highest name)."""
    base = root / embedder_slug(embedder_name)
    if not base.is_dir():
        return None
    current = base / "CURRENT"
    if current.is_file():
        candidate = base / current.read_text(encoding="utf-8").strip()
        if (candidate / "model.json").is_file():
            return candidate
    versions = sorted(d for d in base.iterdir() if (d / "model.json").is_file())
    return versions[-1] if versions else None
