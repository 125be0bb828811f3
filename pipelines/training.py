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
PXT_CSV = REPO_ROOT.parent / "shared" / "data" / "pxtextmining-neas" / "v6framework_neas.csv"
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


def load_pxtextmining(path: Path = PXT_CSV, taxonomy: dict[str, Any] | None = None) -> list[Example]:
    """English rows with a comment, themes mapped onto the taxonomy, split assigned."""
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
    theme_C: float = 1.0
    sent_C: float = 1.0
    multilingual_weight: float = 3.0  # prototypes and seeds are few; weigh each more than an English row
    proto_center: float = 1.6
    proto_slope: float = 2.5
    proto_threshold: float = 0.5
    proto_weight: dict[str, float] = field(default_factory=lambda: {"en": 0.0, "fi": 0.3, "sv": 0.3})
    threshold_shrink_below: int = 10  # val positives under which a tuned threshold is pulled to 0.5
    rating_weight: float = 0.35
    urgent_threshold: float = 0.75
    max_themes: int = 4
    class_weight: str | None = "balanced"


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
        h.update(json.dumps([ex.id, ex.text, ex.themes, ex.sentiment, ex.split], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def prepare_data(embedder: Embedder, taxonomy: dict[str, Any] | None = None, progress: bool = True,
                 seed_path: Path = SEED_PATH, csv_path: Path = PXT_CSV) -> TrainingData:
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


def train_heads(data: TrainingData, taxonomy: dict[str, Any], config: TrainConfig,
                log: Callable[[str], None] = lambda s: None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit theme, sentiment heads and tune thresholds; returns (weights, json metadata parts)."""
    from sklearn.linear_model import LogisticRegression

    from pipelines.classify import proto_theme_scores

    codes = [t["code"] for t in taxonomy["themes"]]
    eng = data.english
    split = np.asarray([e.split for e in eng])
    tr, va = split == "train", split == "val"
    multi = data.seeds + data.protos
    multi_emb = np.concatenate([data.seeds_emb, data.protos_emb]) if multi else np.zeros((0, data.english_emb.shape[1]))

    x = np.concatenate([data.english_emb[tr], multi_emb]).astype(np.float64)
    y = np.concatenate([_multi_hot([e for e, m in zip(eng, tr) if m], codes), _multi_hot(multi, codes)])
    w = np.concatenate([np.ones(int(tr.sum())), np.full(len(multi), config.multilingual_weight)])
    eng_train_pos = _multi_hot([e for e, m in zip(eng, tr) if m], codes).sum(axis=0)

    dim = x.shape[1]
    coef = np.zeros((len(codes), dim), dtype=np.float32)
    intercept = np.full(len(codes), -10.0, dtype=np.float32)
    has_head = np.zeros(len(codes), dtype=bool)
    for j, code in enumerate(codes):
        # A head needs real (English) examples; seed-only themes stay on prototypes.
        if eng_train_pos[j] < 5:
            log(f"theme {code}: {int(eng_train_pos[j])} English rows, prototype fallback")
            continue
        clf = LogisticRegression(C=config.theme_C, class_weight=config.class_weight, max_iter=2000,
                                 random_state=config.seed)
        clf.fit(x, y[:, j], sample_weight=w)
        coef[j] = clf.coef_[0]
        intercept[j] = clf.intercept_[0]
        has_head[j] = True

    # Threshold tuning on the English validation part, with the classify-time blend.
    va_emb = data.english_emb[va]
    y_va = _multi_hot([e for e, m in zip(eng, va) if m], codes)
    head = 1.0 / (1.0 + np.exp(-(va_emb @ coef.T + intercept)))
    proto = proto_theme_scores(va_emb, data.protos_emb, np.asarray([codes.index(p.themes[0]) for p in data.protos]),
                               len(codes), config.proto_center, config.proto_slope)
    pw = config.proto_weight.get("en", 0.0)
    blended = np.where(has_head[None, :], (1 - pw) * head + pw * proto, proto)
    thresholds: dict[str, float] = {}
    for j, code in enumerate(codes):
        if not has_head[j]:
            thresholds[code] = config.proto_threshold
            continue
        n_pos = int(y_va[:, j].sum())
        t, _ = best_threshold(blended[:, j], y_va[:, j])
        if n_pos < config.threshold_shrink_below:
            # Few validation positives: the tuned value is noise, so pull it toward 0.5.
            t = 0.5 + (t - 0.5) * n_pos / config.threshold_shrink_below
        thresholds[code] = round(float(t), 4)

    # Sentiment: 3-class on English rows with a label plus seeds.
    s_rows = [i for i, e in enumerate(eng) if tr[i] and e.sentiment]
    s_seed = [i for i, e in enumerate(data.seeds) if e.sentiment in SENTIMENTS]
    xs = np.concatenate([data.english_emb[s_rows], data.seeds_emb[s_seed]]).astype(np.float64)
    ys = np.asarray([SENTIMENTS.index(eng[i].sentiment) for i in s_rows]
                    + [SENTIMENTS.index(data.seeds[i].sentiment) for i in s_seed])
    ws = np.concatenate([np.ones(len(s_rows)), np.full(len(s_seed), config.multilingual_weight)])
    sclf = LogisticRegression(C=config.sent_C, class_weight=config.class_weight, max_iter=3000,
                              random_state=config.seed)
    sclf.fit(xs, ys, sample_weight=ws)

    weights = {
        "theme_coef": coef.astype(np.float32),
        "theme_intercept": intercept.astype(np.float32),
        "has_head": has_head,
        "sent_coef": sclf.coef_.astype(np.float32),
        "sent_intercept": sclf.intercept_.astype(np.float32),
        "proto_emb": data.protos_emb.astype(np.float16),
        "proto_theme": np.asarray([codes.index(p.themes[0]) for p in data.protos], dtype=np.int16),
        "anchor_emb": data.anchors_emb.astype(np.float16),
        "anchor_pol": data.anchors_pol.astype(np.int8),
    }
    meta = {
        "themes": codes,
        "thresholds": thresholds,
        "theme_heads": {c: bool(h) for c, h in zip(codes, has_head)},
        "training_rows": {"english_train": int(tr.sum()), "english_val": int(va.sum()),
                          "english_test": int((split == "test").sum()), "seeds": len(data.seeds),
                          "prototypes": len(data.protos), "sentiment_rows": len(s_rows) + len(s_seed),
                          "english_positives": {c: int(n) for c, n in zip(codes, eng_train_pos)}},
        "urgency": {"lexicon": "pipelines/urgency.py",
                    "head": None,
                    "why_no_head": "'Safeguarding concerns?' is empty in every NEAS row, so there is nothing to learn from"},
    }
    return weights, meta


def write_artifacts(out_dir: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """``weights.npz`` + ``model.json`` in ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "weights.npz", **weights)
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def default_model_version(dhash: str, seed: int) -> str:
    return f"{_dt.date.today():%Y%m%d}-s{seed}-{dhash[:8]}"


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
