"""Training data, the fixed split, the embedding cache and head training.

Data: English pxtextmining (NEAS) comments mapped onto the county taxonomy through
``pxtextmining_labels``, the taxonomy's fi/sv/en prototype sentences and the
project's own multilingual seed examples (``pipelines/data/seed_examples.jsonl``).
The Finnish/Swedish gold sets under ``tests/data`` are evaluation-only and are never
read here.

Split: a row's bucket is ``sha256("neas-split-v1:" + Comment ID) mod 100``: 0-69 train,
70-79 validation (threshold tuning), 80-99 test (reported only). Hashing the id keeps
the split fixed across runs, machines and row order.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from pipelines.classify import (
    EMBED_KIND,
    SENTIMENTS,
    anchor_texts,
    embedder_slug,
    load_taxonomy,
    prototype_texts,
)
from pipelines.embedding import Embedder

REPO_ROOT = Path(__file__).resolve().parent.parent
# The labelled data lie outside the repository (licence, size): by default in ../shared/data
# beside the clone; FEEDBACK_TRAINING_DATA_DIR or `feedback train --data-dir` point elsewhere.
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
NEAS_CSV = Path("pxtextmining-neas") / "v6framework_neas.csv"


class TrainingDataMissing(FileNotFoundError):
    """The labelled training data are not where the settings say."""


def neas_csv(data_dir: Path | None = None) -> Path:
    """The NEAS comments CSV under ``data_dir`` (default ../shared/data beside the clone; the
    CLI passes FEEDBACK_TRAINING_DATA_DIR); TrainingDataMissing, naming the path and how to set
    it, when it is not there."""
    path = Path(data_dir or DEFAULT_DATA_DIR) / NEAS_CSV
    if not path.is_file():
        raise TrainingDataMissing(
            f"training data not found: {path} does not exist. Point `--data-dir` or FEEDBACK_TRAINING_DATA_DIR "
            f"at the folder that holds {NEAS_CSV} (the shared data set, see pipelines/models/README.md).")
    return path
SEED_PATH = Path(__file__).resolve().parent / "data" / "seed_examples.jsonl"
SPLIT_SALT = "neas-split-v1:"
NO_ANSWER = {"", "did not answer"}


@dataclass(frozen=True)
class Example:
    """One labelled text. ``sentiment`` None = unlabelled; ``split`` for English rows."""

    id: str
    text: str
    language: str
    themes: tuple[str, ...]
    sentiment: str | None
    urgent: bool | None = None
    source: str = "pxtextmining"
    split: str = "train"
    rating: int | None = None


def split_of(key: str) -> str:
    """Fixed 70/10/20 train/val/test bucket of an id."""
    bucket = int.from_bytes(hashlib.sha256((SPLIT_SALT + key).encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 70 else ("val" if bucket < 80 else "test")


def pxt_sentiment(value: str) -> str | None:
    """pxtextmining 1-2 (very) positive, 3 mixed/neutral, 4-5 negative."""
    v = value.strip()
    if not v:
        return None
    n = int(float(v))
    return "positive" if n <= 2 else ("neutral" if n == 3 else "negative")


def label_map(taxonomy: dict[str, Any]) -> dict[str, str]:
    """pxtextmining label -> theme code."""
    return {label: t["code"] for t in taxonomy["themes"] for label in t.get("pxtextmining_labels", [])}


def load_pxtextmining(path: Path | None = None, taxonomy: dict[str, Any] | None = None) -> list[Example]:
    """English rows with a comment, themes mapped onto the taxonomy, split assigned
    (``path``: the CSV; default :func:`neas_csv`)."""
    path = path or neas_csv()
    taxonomy = taxonomy or load_taxonomy()
    mapping = label_map(taxonomy)
    order = [t["code"] for t in taxonomy["themes"]]
    out: list[Example] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = (row.get("FFT answer") or "").strip()
            if text.lower() in NO_ANSWER:
                continue
            codes = {code for label, code in mapping.items() if (row.get(label) or "").strip() == "1"}
            safeguarding = (row.get("Safeguarding concerns?") or "").strip()
            rating = (row.get("FFT categorical answer") or "").strip()
            out.append(Example(
                id=row["Comment ID"], text=text, language="en",
                themes=tuple(c for c in order if c in codes),
                sentiment=pxt_sentiment(row.get("Comment sentiment") or ""),
                urgent=(safeguarding == "1") if safeguarding else None,
                split=split_of(row["Comment ID"]),
                rating=int(rating) if rating.isdigit() else None,
            ))
    return out


def load_jsonl(path: Path, source: str) -> list[Example]:
    """Examples in the gold/seed format (``id, text, language, themes, sentiment, urgent``)."""
    out: list[Example] = []
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        d = json.loads(line)
        out.append(Example(id=str(d.get("id", f"{source}-{n}")), text=d["text"], language=d.get("language", "fi"),
                           themes=tuple(d.get("themes", [])), sentiment=d.get("sentiment"),
                           urgent=d.get("urgent"), source=source, split="train",
                           rating=d.get("rating")))
    return out


def prototype_examples(taxonomy: dict[str, Any]) -> list[Example]:
    """The taxonomy's prototype sentences as one-theme examples (no sentiment)."""
    texts, idx, langs = prototype_texts(taxonomy)
    codes = [t["code"] for t in taxonomy["themes"]]
    return [Example(id=f"proto-{i}", text=t, language=lang, themes=(codes[j],), sentiment=None,
                    source="prototype") for i, (t, j, lang) in enumerate(zip(texts, idx, langs))]


# ---------------------------------------------------------------- embedding cache
def cache_root() -> Path:
    base = os.environ.get("FEEDBACK_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "feedback-pipeline")
    return Path(base) / "embeddings"


def texts_hash(texts: Iterable[str], embedder_name: str, kind: str) -> str:
    h = hashlib.sha256(f"{embedder_name}\x00{kind}\x00".encode("utf-8"))
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def embed_cached(embedder: Embedder, texts: list[str], kind: str = EMBED_KIND, batch_size: int = 32,
                 progress: bool = True, desc: str = "embedding", cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of ``texts``, from ``<cache>/<embedder>/<sha>.npy`` when present."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    base = (cache_dir or cache_root()) / embedder_slug(embedder.name)
    path = base / f"{texts_hash(texts, embedder.name, kind)}.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            return arr
    from tqdm import tqdm

    # Longest first keeps padding (and time) per batch low for padded backends.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), 0), dtype=np.float32)
    chunks: list[np.ndarray] = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            chunks.append(embedder.encode([texts[i] for i in idx], kind=kind))  # type: ignore[arg-type]
            bar.update(len(idx))
    stacked = np.concatenate(chunks, axis=0)
    out = np.empty_like(stacked)
    out[np.asarray(order)] = stacked
    base.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out.astype(np.float32))
    os.replace(tmp, path)
    return out


# ---------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """Knobs of one training run; saved in the artifact's model.json."""

    seed: int = 13
    theme_C: float = 16.0  # chosen by 5-fold CV on English train+val (micro and macro F1)
    sent_C: float = 1.0  # chosen on English val and seed CV
    sent_multilingual_weight: float = 6.0  # seed weight of the fi/sv sentiment head (seed CV: 0.84 vs 0.80 at 3)
    multilingual_weight: float = 3.0  # prototypes and seeds are few; weigh each more than an English row
    head_min_positives: int = 10  # English train + seed positives a theme needs for a head
    proto_center: float = 1.6
    proto_slope: float = 2.5
    proto_threshold: float = 0.5
    proto_weight: dict[str, float] = field(default_factory=lambda: {"en": 0.0, "fi": 0.3, "sv": 0.3})
    threshold_shrink_below: int = 10  # val positives under which a tuned threshold is pulled to 0.5
    lang_threshold_scale: dict[str, float] = field(default_factory=lambda: {"en": 1.0, "fi": 0.7, "sv": 0.7})
    tune_lang_threshold_scale: bool = True  # pick fi/sv scale by cross-validation over the seed examples
    scale_grid: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0)
    cv_folds: int = 5
    rating_weight: float = 0.35
    urgent_threshold: float = 0.75  # lexicon score that flags a text
    urg_C: float = 4.0
    urg_positive_weight: float = 20.0  # 46 urgent seeds against ~2,700 English rows
    urg_threshold: float = 0.7  # head probability that flags a text on its own
    max_themes: int = 4
    # Weight of fi/sv seeds in the English heads, relative to the fi/sv heads; picked on English val.
    english_foreign_scales: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)


@dataclass
class TrainingData:
    """Examples with their embeddings, grouped by source."""

    english: list[Example]
    english_emb: np.ndarray
    seeds: list[Example]
    seeds_emb: np.ndarray
    protos: list[Example]
    protos_emb: np.ndarray
    anchors_emb: np.ndarray
    anchors_pol: np.ndarray


def data_hash(english: list[Example], seeds: list[Example], taxonomy: dict[str, Any]) -> str:
    """Fingerprint of everything the heads are trained on."""
    h = hashlib.sha256()
    h.update(json.dumps(taxonomy, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for ex in english + seeds:
        h.update(json.dumps([ex.id, ex.text, ex.themes, ex.sentiment, ex.urgent, ex.split],
                            ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def prepare_data(embedder: Embedder, taxonomy: dict[str, Any] | None = None, progress: bool = True,
                 seed_path: Path = SEED_PATH, csv_path: Path | None = None) -> TrainingData:
    """Load every training source and embed it (through the cache)."""
    taxonomy = taxonomy or load_taxonomy()
    english = load_pxtextmining(csv_path, taxonomy)
    seeds = load_jsonl(seed_path, "seed")
    protos = prototype_examples(taxonomy)
    a_texts, a_pol = anchor_texts()
    return TrainingData(
        english=english,
        english_emb=embed_cached(embedder, [e.text for e in english], progress=progress, desc="english"),
        seeds=seeds,
        seeds_emb=embed_cached(embedder, [e.text for e in seeds], progress=progress, desc="seeds"),
        protos=protos,
        protos_emb=embed_cached(embedder, [e.text for e in protos], progress=progress, desc="prototypes"),
        anchors_emb=embed_cached(embedder, a_texts, progress=progress, desc="anchors"),
        anchors_pol=np.asarray(a_pol),
    )


def _multi_hot(examples: list[Example], codes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(codes)}
    y = np.zeros((len(examples), len(codes)), dtype=np.int8)
    for r, ex in enumerate(examples):
        for c in ex.themes:
            if c in index:
                y[r, index[c]] = 1
    return y


def best_threshold(scores: np.ndarray, truth: np.ndarray, grid: np.ndarray | None = None) -> tuple[float, float]:
    """Threshold on ``scores`` maximising F1 against binary ``truth``; (threshold, F1)."""
    grid = np.round(np.arange(0.05, 0.96, 0.025), 3) if grid is None else grid
    best = (0.5, -1.0)
    pos = truth.astype(bool)
    for t in grid:
        pred = scores >= t
        tp = int((pred & pos).sum())
        fp = int((pred & ~pos).sum())
        fn = int((~pred & pos).sum())
        f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f > best[1] + 1e-9:
            best = (float(t), f)
    return best


def language_balanced_weights(base: np.ndarray, languages: np.ndarray, labels: np.ndarray,
                              n_classes: int) -> np.ndarray:
    """Sample weights giving every class equal mass within each language.

    The Finnish seeds are mostly complaints while the English rows are mostly praise;
    without this the sentiment head learns "Finnish means negative".
    """
    out = base.astype(np.float64).copy()
    for lang in np.unique(languages):
        in_lang = languages == lang
        total = base[in_lang].sum()
        for k in range(n_classes):
            m = in_lang & (labels == k)
            if base[m].sum() > 0:  # a language weighted 0 stays 0
                out[m] = base[m] * total / (n_classes * base[m].sum())
    return out


def _language_scale(examples: list[Example], foreign_scale: float) -> np.ndarray:
    """1.0 for English examples, ``foreign_scale`` for the others."""
    return np.asarray([1.0 if ex.language == "en" else foreign_scale for ex in examples], dtype=np.float64)


@dataclass
class _Heads:
    coef: np.ndarray
    intercept: np.ndarray
    has_head: np.ndarray
    thresholds: np.ndarray
    sent_coef: np.ndarray
    sent_intercept: np.ndarray
    sent_coef_ml: np.ndarray
    sent_intercept_ml: np.ndarray


def _fit_heads(data: TrainingData, codes: list[str], config: TrainConfig, seed_mask: np.ndarray,
               log: Callable[[str], None], foreign_scale: float = 1.0) -> _Heads:
    """Theme and sentiment heads on English train + prototypes + the seeds in ``seed_mask``.

    ``foreign_scale`` multiplies the weight of Finnish and Swedish seeds and prototypes:
    1.0 for the heads that score fi/sv texts, lower for the English heads, where many
    fi/sv seeds pull the decision boundaries away from English patient comments.
    """
    from sklearn.linear_model import LogisticRegression

    from pipelines.classify import proto_theme_scores

    eng = data.english
    split = np.asarray([e.split for e in eng])
    tr, va = split == "train", split == "val"
    seeds = [s for s, m in zip(data.seeds, seed_mask) if m]
    multi = seeds + data.protos
    multi_emb = np.concatenate([data.seeds_emb[seed_mask], data.protos_emb])
    eng_tr = [e for e, m in zip(eng, tr) if m]

    x = np.concatenate([data.english_emb[tr], multi_emb]).astype(np.float64)
    y = np.concatenate([_multi_hot(eng_tr, codes), _multi_hot(multi, codes)])
    w = np.concatenate([np.ones(len(eng_tr)), config.multilingual_weight * _language_scale(multi, foreign_scale)])
    positives = _multi_hot(eng_tr, codes).sum(axis=0) + _multi_hot(seeds, codes).sum(axis=0)

    dim = x.shape[1]
    coef = np.zeros((len(codes), dim), dtype=np.float32)
    intercept = np.full(len(codes), -10.0, dtype=np.float32)
    has_head = np.zeros(len(codes), dtype=bool)
    for j, code in enumerate(codes):
        if positives[j] < config.head_min_positives:
            log(f"theme {code}: {int(positives[j])} positives, prototype fallback")
            continue
        clf = LogisticRegression(C=config.theme_C, max_iter=3000, random_state=config.seed)
        clf.fit(x, y[:, j], sample_weight=w)
        coef[j], intercept[j], has_head[j] = clf.coef_[0], clf.intercept_[0], True

    # Thresholds on the English validation part, scored the way classify scores English.
    va_emb = data.english_emb[va]
    y_va = _multi_hot([e for e, m in zip(eng, va) if m], codes)
    head = 1.0 / (1.0 + np.exp(-(va_emb @ coef.T + intercept)))
    proto = proto_theme_scores(va_emb, data.protos_emb, np.asarray([codes.index(p.themes[0]) for p in data.protos]),
                               len(codes), config.proto_center, config.proto_slope)
    pw = config.proto_weight.get("en", 0.0)
    blended = np.where(has_head[None, :], (1 - pw) * head + pw * proto, proto)
    thresholds = np.full(len(codes), config.proto_threshold, dtype=np.float32)
    for j in range(len(codes)):
        n_pos = int(y_va[:, j].sum())
        if not has_head[j] or n_pos == 0:
            continue
        t, _ = best_threshold(blended[:, j], y_va[:, j])
        if n_pos < config.threshold_shrink_below:
            # Few validation positives: the tuned value is noise, so pull it toward 0.5.
            t = 0.5 + (t - 0.5) * n_pos / config.threshold_shrink_below
        thresholds[j] = round(float(t), 4)

    # Sentiment: 3-class on English rows with a label plus seeds, classes balanced per language.
    s_rows = [i for i in np.flatnonzero(tr) if eng[i].sentiment]
    s_seed = [s for s in seeds if s.sentiment in SENTIMENTS]
    s_seed_emb = data.seeds_emb[seed_mask][[i for i, s in enumerate(seeds) if s.sentiment in SENTIMENTS]]
    xs = np.concatenate([data.english_emb[s_rows], s_seed_emb]).astype(np.float64)
    ys = np.asarray([SENTIMENTS.index(eng[i].sentiment) for i in s_rows]  # type: ignore[arg-type]
                    + [SENTIMENTS.index(s.sentiment) for s in s_seed])  # type: ignore[arg-type]
    langs = np.asarray(["en"] * len(s_rows) + [s.language for s in s_seed])

    def sentiment_head(seed_weight: float) -> Any:
        base = np.concatenate([np.ones(len(s_rows)), seed_weight * _language_scale(s_seed, foreign_scale)])
        return LogisticRegression(C=config.sent_C, max_iter=3000, random_state=config.seed).fit(
            xs, ys, sample_weight=language_balanced_weights(base, langs, ys, len(SENTIMENTS)))

    # Two heads: more seed weight helps Finnish/Swedish but costs English accuracy.
    sclf = sentiment_head(config.multilingual_weight)
    sclf_ml = sentiment_head(config.sent_multilingual_weight)
    # Mixed comments are the hard class; shift the neutral logit to maximise macro F1 on English val.
    from pipelines.evaluation import sentiment_report

    v_rows = [i for i in np.flatnonzero(va) if eng[i].sentiment]
    v_logits = data.english_emb[v_rows] @ sclf.coef_.T + sclf.intercept_
    v_truth = [eng[i].sentiment for i in v_rows]
    best_shift, best_f1 = 0.0, -1.0
    for shift in np.round(np.arange(-1.0, 1.01, 0.1), 2):
        pred = [SENTIMENTS[k] for k in (v_logits + np.asarray([0.0, shift, 0.0])).argmax(axis=1)]
        f1 = sentiment_report(v_truth, pred)["macro_f1"]  # type: ignore[arg-type]
        if f1 > best_f1 + 1e-9 or (abs(f1 - best_f1) <= 1e-9 and abs(shift) < abs(best_shift)):
            best_shift, best_f1 = float(shift), f1
    sclf.intercept_ = sclf.intercept_ + np.asarray([0.0, best_shift, 0.0])
    return _Heads(coef, intercept, has_head, thresholds, sclf.coef_.astype(np.float32),
                  sclf.intercept_.astype(np.float32), sclf_ml.coef_.astype(np.float32),
                  sclf_ml.intercept_.astype(np.float32))


def _theme_scores(heads: _Heads, emb: np.ndarray, langs: list[str], data: TrainingData, codes: list[str],
                  config: TrainConfig) -> np.ndarray:
    """Blended theme scores as classify computes them (before thresholds)."""
    from pipelines.classify import proto_theme_scores

    head = 1.0 / (1.0 + np.exp(-(emb @ heads.coef.T + heads.intercept)))
    proto = proto_theme_scores(emb, data.protos_emb, np.asarray([codes.index(p.themes[0]) for p in data.protos]),
                               len(codes), config.proto_center, config.proto_slope)
    pw = np.asarray([config.proto_weight.get(lang, 0.3) for lang in langs])[:, None]
    return np.where(heads.has_head[None, :], (1 - pw) * head + pw * proto, proto)


def tune_language_scale(data: TrainingData, codes: list[str], config: TrainConfig,
                        log: Callable[[str], None]) -> tuple[float, dict[str, Any]]:
    """Threshold scale for fi/sv chosen by k-fold CV over the non-English seed examples.

    Heads see few Finnish/Swedish rows, so their probabilities run lower there; the
    scale that maximises macro F1 on held-out seeds corrects that without looking at
    any gold data.
    """
    from sklearn.model_selection import KFold

    from pipelines.evaluation import multilabel_report, sentiment_report

    ml = np.asarray([i for i, s in enumerate(data.seeds) if s.language != "en"])
    ratios = np.zeros((len(ml), len(codes)))
    sent_pred: list[str] = []
    sent_idx: list[int] = []
    for _, held in KFold(config.cv_folds, shuffle=True, random_state=config.seed).split(ml):
        mask = np.ones(len(data.seeds), dtype=bool)
        mask[ml[held]] = False
        heads = _fit_heads(data, codes, config, mask, log=lambda s: None)
        emb = data.seeds_emb[ml[held]]
        langs = [data.seeds[i].language for i in ml[held]]
        ratios[held] = _theme_scores(heads, emb, langs, data, codes, config) / heads.thresholds[None, :]
        logits = emb @ heads.sent_coef_ml.T + heads.sent_intercept_ml
        sent_pred += [SENTIMENTS[k] for k in logits.argmax(axis=1)]
        sent_idx += list(ml[held])
    truth = [set(data.seeds[i].themes) for i in ml]
    results = {}
    for f in config.scale_grid:
        pred = [{codes[j] for j in np.flatnonzero(r >= f)} for r in ratios]
        rep = multilabel_report(truth, pred, codes)
        results[str(f)] = {"micro_f1": round(rep["micro_f1"], 4), "macro_f1": round(rep["macro_f1"], 4)}
    best = max(config.scale_grid, key=lambda f: (results[str(f)]["macro_f1"], results[str(f)]["micro_f1"]))
    srep = sentiment_report([data.seeds[i].sentiment for i in sent_idx], sent_pred)  # type: ignore[misc]
    log(f"seed CV (fi+sv, n={len(ml)}): threshold scale {best} -> macro F1 {results[str(best)]['macro_f1']}, "
        f"sentiment macro F1 {srep['macro_f1']:.3f}")
    return best, {"n": int(len(ml)), "folds": config.cv_folds, "scale_grid": results, "chosen_scale": best,
                  "sentiment_macro_f1": round(srep["macro_f1"], 4), "sentiment_accuracy": round(srep["accuracy"], 4)}


def english_validation_scores(heads: _Heads, data: TrainingData, codes: list[str],
                              config: TrainConfig) -> dict[str, float]:
    """Theme micro/macro F1 and sentiment macro F1 of ``heads`` on the English validation rows.

    The thresholds were tuned on these rows, so the figures are optimistic; they only
    rank alternatives that were tuned the same way.
    """
    from pipelines.evaluation import multilabel_report, sentiment_report

    va = np.asarray([e.split == "val" for e in data.english])
    rows = [e for e, m in zip(data.english, va) if m]
    emb = data.english_emb[va]
    scores = _theme_scores(heads, emb, ["en"] * len(rows), data, codes, config)
    pred = [{codes[j] for j in np.flatnonzero(r)} for r in scores >= heads.thresholds[None, :]]
    themes = multilabel_report([set(e.themes) for e in rows], pred, codes)
    labelled = [i for i, e in enumerate(rows) if e.sentiment]
    logits = emb[labelled] @ heads.sent_coef.T + heads.sent_intercept
    sentiment = sentiment_report([rows[i].sentiment for i in labelled],  # type: ignore[misc]
                                 [SENTIMENTS[k] for k in logits.argmax(axis=1)])
    return {"micro_f1": round(themes["micro_f1"], 4), "macro_f1": round(themes["macro_f1"], 4),
            "sentiment_macro_f1": round(sentiment["macro_f1"], 4)}


def fit_english_heads(data: TrainingData, codes: list[str], config: TrainConfig, full_weight: _Heads,
                      log: Callable[[str], None]) -> tuple[_Heads, dict[str, Any]]:
    """English heads with the fi/sv seed weight scale that scores best on English val:
    the theme heads by theme micro + macro F1, the sentiment head by its macro F1.
    ``full_weight`` are the heads already fitted at scale 1.0 (the fi/sv heads)."""
    import dataclasses

    every_seed = np.ones(len(data.seeds), dtype=bool)
    fitted = {scale: full_weight if scale == 1.0 else
              _fit_heads(data, codes, config, every_seed, lambda s: None, foreign_scale=scale)
              for scale in config.english_foreign_scales}
    results = {str(scale): english_validation_scores(heads, data, codes, config) for scale, heads in fitted.items()}
    scales = config.english_foreign_scales
    theme_scale = max(scales, key=lambda x: (results[str(x)]["micro_f1"] + results[str(x)]["macro_f1"], -x))
    sent_scale = max(scales, key=lambda x: (results[str(x)]["sentiment_macro_f1"], -x))
    log(f"English heads: fi/sv seed scale {theme_scale} for themes, {sent_scale} for sentiment "
        f"(val {results[str(theme_scale)]['micro_f1']}/{results[str(theme_scale)]['macro_f1']}, "
        f"{results[str(sent_scale)]['sentiment_macro_f1']})")
    sent = fitted[sent_scale]
    heads = dataclasses.replace(fitted[theme_scale], sent_coef=sent.sent_coef, sent_intercept=sent.sent_intercept)
    return heads, {"scales": results, "theme_scale": theme_scale, "sentiment_scale": sent_scale}


def fit_urgency_head(data: TrainingData, config: TrainConfig) -> dict[str, np.ndarray]:
    """Embedding head for urgent texts the lexicon misses (paraphrases), plus the urgent
    seeds' vectors and reasons so a head-only flag can name the nearest reason."""
    from sklearn.linear_model import LogisticRegression

    from pipelines.urgency import REASONS, detect_urgency

    urgent = np.asarray([bool(s.urgent) for s in data.seeds])
    if urgent.sum() < 5:
        return {}
    tr = np.asarray([e.split == "train" for e in data.english])
    x = np.concatenate([data.english_emb[tr], data.seeds_emb]).astype(np.float64)
    y = np.concatenate([np.zeros(int(tr.sum())), urgent.astype(float)])
    w = np.concatenate([np.ones(int(tr.sum())),
                        np.where(urgent, config.urg_positive_weight, config.multilingual_weight)])
    clf = LogisticRegression(C=config.urg_C, max_iter=3000, random_state=config.seed).fit(x, y, sample_weight=w)
    reasons = []
    for s in (s for s, u in zip(data.seeds, urgent) if u):
        found = detect_urgency(s.text).reasons
        reasons.append(REASONS.index(found[0]) if found else REASONS.index("safeguarding"))
    return {"urg_coef": clf.coef_[0].astype(np.float32), "urg_intercept": np.float32(clf.intercept_[0]),
            "urg_proto_emb": data.seeds_emb[urgent].astype(np.float16),
            "urg_proto_reason": np.asarray(reasons, dtype=np.int8)}


def train_heads(data: TrainingData, taxonomy: dict[str, Any], config: TrainConfig,
                log: Callable[[str], None] = lambda s: None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit theme and sentiment heads, tune thresholds; returns (weights, json metadata parts)."""
    codes = [t["code"] for t in taxonomy["themes"]]
    seed_cv: dict[str, Any] | None = None
    if config.tune_lang_threshold_scale and any(s.language != "en" for s in data.seeds):
        scale, seed_cv = tune_language_scale(data, codes, config, log)
        config.lang_threshold_scale = {**config.lang_threshold_scale, "fi": scale, "sv": scale}
    heads = _fit_heads(data, codes, config, np.ones(len(data.seeds), dtype=bool), log)  # fi/sv texts
    en_heads, en_search = fit_english_heads(data, codes, config, heads, log)
    urg = fit_urgency_head(data, config)

    split = np.asarray([e.split for e in data.english])
    eng_tr = [e for e, s in zip(data.english, split) if s == "train"]
    weights = {
        "theme_coef": en_heads.coef.astype(np.float32),
        "theme_intercept": en_heads.intercept.astype(np.float32),
        "theme_coef_ml": heads.coef.astype(np.float32),
        "theme_intercept_ml": heads.intercept.astype(np.float32),
        "has_head": heads.has_head,
        "sent_coef": en_heads.sent_coef,
        "sent_intercept": en_heads.sent_intercept,
        "sent_coef_ml": heads.sent_coef_ml,
        "sent_intercept_ml": heads.sent_intercept_ml,
        "proto_emb": data.protos_emb.astype(np.float16),
        "proto_theme": np.asarray([codes.index(p.themes[0]) for p in data.protos], dtype=np.int16),
        "anchor_emb": data.anchors_emb.astype(np.float16),
        "anchor_pol": data.anchors_pol.astype(np.int8),
        **urg,
    }
    meta = {
        "themes": codes,
        "thresholds": {c: round(float(t), 4) for c, t in zip(codes, en_heads.thresholds)},
        "thresholds_ml": {c: round(float(t), 4) for c, t in zip(codes, heads.thresholds)},
        "english_heads": en_search,
        "theme_heads": {c: bool(h) for c, h in zip(codes, heads.has_head)},
        "training_rows": {"english_train": int((split == "train").sum()), "english_val": int((split == "val").sum()),
                          "english_test": int((split == "test").sum()), "seeds": len(data.seeds),
                          "prototypes": len(data.protos),
                          "english_positives": {c: int(n) for c, n in zip(codes, _multi_hot(eng_tr, codes).sum(0))},
                          "seed_positives": {c: int(n) for c, n in zip(codes, _multi_hot(data.seeds, codes).sum(0))}},
        "seed_cv": seed_cv,
        "urgency": {"lexicon": "pipelines/urgency.py",
                    "head": "logistic regression: urgent seed examples vs English train rows and other seeds",
                    "urgent_seeds": int(sum(bool(s.urgent) for s in data.seeds)),
                    "note": "'Safeguarding concerns?' is empty in every NEAS row, so English gives only negatives"},
    }
    return weights, meta


def write_artifacts(out_dir: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """``weights.npz`` + ``model.json`` in ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "weights.npz", **weights)
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def default_model_version(dhash: str, config: "TrainConfig") -> str:
    """``<date>-s<seed>-<hash of data and config>``: a new version whenever either changes."""
    import dataclasses

    h = hashlib.sha256((dhash + json.dumps(dataclasses.asdict(config), sort_keys=True)).encode()).hexdigest()
    return f"{_dt.date.today():%Y%m%d}-s{config.seed}-{h[:8]}"


def build_metadata(embedder_name: str, taxonomy: dict[str, Any], config: TrainConfig, dhash: str,
                   model_version: str, parts: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    cfg = dataclasses.asdict(config)
    return {
        "model_version": model_version,
        "taxonomy_version": taxonomy["version"],
        "embedder": embedder_name,
        "embed_kind": EMBED_KIND,
        "training_data_sha256": dhash,
        "seed": config.seed,
        "split": {"rule": f"sha256('{SPLIT_SALT}' + Comment ID) mod 100: <70 train, <80 val, else test",
                  "source": "pxtextmining NEAS v6framework, rows with an answer"},
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "config": cfg,
        **parts,
    }
