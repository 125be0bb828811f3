"""Evaluate a trained classifier on the hand-written gold sets, and check that the
leave-one-organisation-out figures of a training run match those recorded in an artifact.
Scored with pipelines/evaluation.py (which holds only the metrics)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pipelines.evaluation import LabelledItem, evaluate
from pipelines.training import embed_cached, load_jsonl

# Targets of the gold sets (issue 11): themes macro F1 and sentiment macro F1.
GOLD_TARGETS = {"gold_fi_colloquial": {"themes_macro_f1": 0.55, "sentiment_macro_f1": 0.75}}
REPRODUCE_TOLERANCE = 0.01


def gold_paths(root: Any = None) -> dict[str, Any]:
    """The hand-written gold sets (evaluation only; never used for training or tuning)."""
    base = Path(root) if root else Path(__file__).resolve().parent.parent / "tests" / "data"
    return {"fi": base / "gold_fi.jsonl", "fi_colloquial": base / "gold_fi_colloquial.jsonl",
            "sv": base / "gold_sv.jsonl"}


def items_from_examples(examples: Sequence[Any], with_themes: bool = True) -> list[LabelledItem]:
    return [LabelledItem(text=e.text, language=e.language, themes=tuple(e.themes) if with_themes else None,
                         sentiment=e.sentiment, urgent=e.urgent) for e in examples]


def run_evaluation(embedder: Any, classifier: Any, progress: bool = True, gold_root: Any = None) -> dict[str, Any]:
    """Evaluate ``classifier`` on each gold set that exists; {``gold_<name>``: report}."""
    codes = classifier.theme_codes
    out: dict[str, Any] = {}
    for name, path in gold_paths(gold_root).items():
        gold = load_jsonl(path, f"gold_{name}")
        if not gold:
            continue
        emb = embed_cached(embedder, [e.text for e in gold], progress=progress, desc=f"gold {name}")
        preds = classifier.classify(emb, [e.text for e in gold], [e.language for e in gold],
                                    [e.rating for e in gold])
        out[f"gold_{name}"] = evaluate(items_from_examples(gold), preds, codes)
    return out


def loo_figures(loo: dict[str, Any]) -> dict[str, float]:
    """Every model figure of a leave-one-org-out result, flat: ``<org or mean>.<figure>``."""
    keys = ("themes_micro_f1", "themes_macro_f1", "sentiment_macro_f1")
    out = {f"{org}.{k}": float(e["model"][k]) for org, e in loo["per_org"].items() for k in keys}
    out.update({f"mean.{k}": float(loo["mean"]["model"][k]) for k in keys})
    return out


def reproduction(recorded: dict[str, Any] | None, measured: dict[str, Any],
                 tolerance: float = REPRODUCE_TOLERANCE) -> dict[str, Any]:
    """Compare freshly measured leave-one-org-out figures with those an artifact recorded
    when it was trained; ``ok`` when every figure is within ``tolerance``."""
    if not recorded:
        return {"ok": False, "reason": "the artifact records no leave-one-organisation-out figures"}
    a, b = loo_figures(recorded), loo_figures(measured)
    missing = sorted(set(a) ^ set(b))
    diffs = {k: round(abs(a[k] - b[k]), 4) for k in sorted(set(a) & set(b))}
    worst = max(diffs.values()) if diffs else 0.0
    return {"ok": not missing and worst <= tolerance, "max_abs_diff": worst, "tolerance": tolerance,
            "missing": missing, "diffs": diffs}
