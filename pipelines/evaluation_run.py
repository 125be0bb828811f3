"""Evaluate a trained classifier: the English held-out split and the hand-written gold
sets, scored with pipelines/evaluation.py (which holds only the metrics)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pipelines.evaluation import LabelledItem, evaluate
from pipelines.training import embed_cached, load_jsonl, load_pxtextmining


def gold_paths(root: Any = None) -> dict[str, Any]:
    """The hand-written gold sets (evaluation only; never used for training)."""
    base = Path(root) if root else Path(__file__).resolve().parent.parent / "tests" / "data"
    return {"fi": base / "gold_fi.jsonl", "sv": base / "gold_sv.jsonl"}


def items_from_examples(examples: Sequence[Any], with_themes: bool = True) -> list[LabelledItem]:
    return [LabelledItem(text=e.text, language=e.language, themes=tuple(e.themes) if with_themes else None,
                         sentiment=e.sentiment, urgent=e.urgent) for e in examples]


def run_evaluation(embedder: Any, classifier: Any, progress: bool = True, splits: Sequence[str] = ("test",),
                   gold_root: Any = None, csv_path: Any = None) -> dict[str, Any]:
    """Evaluate on the English held-out split and on each gold set that exists.

    English truth covers only the mapped themes: ``language_rights`` has no English
    label and is excluded there. Returns {set name: report}.
    """
    codes = classifier.theme_codes
    out: dict[str, Any] = {}
    all_english = load_pxtextmining(csv_path)
    keep = [i for i, e in enumerate(all_english) if e.split in splits]
    english = [all_english[i] for i in keep]
    if english:
        # Embed the whole English set so the training run's cache entry is reused.
        emb = embed_cached(embedder, [e.text for e in all_english], progress=progress, desc="english")[keep]
        preds = classifier.classify(emb, [e.text for e in english], ["en"] * len(english))
        mapped = [c for c in codes if c != "language_rights"]
        rep = evaluate(items_from_examples(english), preds, mapped)
        out["english_" + "+".join(splits)] = rep
    for lang, path in gold_paths(gold_root).items():
        gold = load_jsonl(path, f"gold_{lang}")
        if not gold:
            continue
        emb = embed_cached(embedder, [e.text for e in gold], progress=progress, desc=f"gold {lang}")
        preds = classifier.classify(emb, [e.text for e in gold], [e.language for e in gold],
                                    [e.rating for e in gold])
        out[f"gold_{lang}"] = evaluate(items_from_examples(gold), preds, codes)
    return out
