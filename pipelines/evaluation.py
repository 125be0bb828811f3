"""Metrics for theme, sentiment and urgency predictions, and their text rendering.

Pure functions over labels, so they are unit-tested on hand-made examples; the
classifier-specific glue (``evaluate``) only turns Classification objects into labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

SENTIMENT_LABELS = ("negative", "neutral", "positive")


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; 0 where undefined."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def multilabel_report(y_true: Sequence[Iterable[str]], y_pred: Sequence[Iterable[str]],
                      codes: Sequence[str]) -> dict[str, Any]:
    """Per-label P/R/F1/support, micro F1, and macro F1 over labels present in ``y_true``.

    Labels absent from the truth are left out of the macro average (their F1 is
    undefined, not zero) but still listed with their false positives.
    """
    true_sets = [set(t) for t in y_true]
    pred_sets = [set(p) for p in y_pred]
    if len(true_sets) != len(pred_sets):
        raise ValueError("y_true and y_pred differ in length")
    per: dict[str, dict[str, float]] = {}
    tot_tp = tot_fp = tot_fn = 0
    for code in codes:
        tp = sum(1 for t, p in zip(true_sets, pred_sets) if code in t and code in p)
        fp = sum(1 for t, p in zip(true_sets, pred_sets) if code not in t and code in p)
        fn = sum(1 for t, p in zip(true_sets, pred_sets) if code in t and code not in p)
        p_, r_, f_ = prf(tp, fp, fn)
        per[code] = {"precision": p_, "recall": r_, "f1": f_, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}
        tot_tp, tot_fp, tot_fn = tot_tp + tp, tot_fp + fp, tot_fn + fn
    mp, mr, mf = prf(tot_tp, tot_fp, tot_fn)
    present = [c for c in codes if per[c]["support"] > 0]
    macro = float(np.mean([per[c]["f1"] for c in present])) if present else 0.0
    return {"per_theme": per, "micro_precision": mp, "micro_recall": mr, "micro_f1": mf,
            "macro_f1": macro, "macro_over": len(present), "n": len(true_sets)}


def sentiment_report(y_true: Sequence[str], y_pred: Sequence[str],
                     labels: Sequence[str] = SENTIMENT_LABELS) -> dict[str, Any]:
    """Accuracy, per-class P/R/F1, macro F1 (over classes present in truth) and confusion[true][pred]."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    confusion = {t: {p: 0 for p in labels} for t in labels}
    for t, p in zip(y_true, y_pred):
        confusion[t][p] += 1
    per: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = confusion[c][c]
        fp = sum(confusion[t][c] for t in labels if t != c)
        fn = sum(confusion[c][p] for p in labels if p != c)
        p_, r_, f_ = prf(tp, fp, fn)
        per[c] = {"precision": p_, "recall": r_, "f1": f_, "support": tp + fn}
    present = [c for c in labels if per[c]["support"] > 0]
    n = len(y_true)
    return {"accuracy": (sum(1 for t, p in zip(y_true, y_pred) if t == p) / n) if n else 0.0,
            "macro_f1": float(np.mean([per[c]["f1"] for c in present])) if present else 0.0,
            "per_class": per, "confusion": confusion, "labels": list(labels), "n": n}


def binary_report(y_true: Sequence[bool], y_pred: Sequence[bool]) -> dict[str, Any]:
    """Precision/recall/F1 of the positive class with counts."""
    tp = sum(1 for t, p in zip(y_true, y_pred) if t and p)
    fp = sum(1 for t, p in zip(y_true, y_pred) if not t and p)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t and not p)
    p_, r_, f_ = prf(tp, fp, fn)
    return {"precision": p_, "recall": r_, "f1": f_, "tp": tp, "fp": fp, "fn": fn,
            "positives": tp + fn, "n": len(y_true)}


@dataclass(frozen=True)
class LabelledItem:
    """What evaluation needs of an example: truth per task (None = not labelled)."""

    text: str
    language: str
    themes: tuple[str, ...] | None
    sentiment: str | None
    urgent: bool | None


def evaluate(items: Sequence[LabelledItem], predictions: Sequence[Any], codes: Sequence[str]) -> dict[str, Any]:
    """Report for Classification-like predictions (``themes``, ``sentiment``, ``urgent``)."""
    th = [(it.themes, tuple(t.code for t in pr.themes)) for it, pr in zip(items, predictions) if it.themes is not None]
    se = [(it.sentiment, pr.sentiment) for it, pr in zip(items, predictions) if it.sentiment]
    ur = [(bool(it.urgent), bool(pr.urgent)) for it, pr in zip(items, predictions) if it.urgent is not None]
    report: dict[str, Any] = {"n": len(items)}
    report["themes"] = multilabel_report([a for a, _ in th], [b for _, b in th], codes) if th else None
    report["sentiment"] = sentiment_report([a for a, _ in se], [b for _, b in se]) if se else None
    report["urgency"] = binary_report([a for a, _ in ur], [b for _, b in ur]) if ur and any(a for a, _ in ur) else None
    return report


def format_report(name: str, report: dict[str, Any]) -> str:
    """Human-readable tables for one evaluated set."""
    lines = [f"== {name} (n={report['n']}) =="]
    th = report.get("themes")
    if th:
        lines.append(f"{'theme':<28}{'P':>7}{'R':>7}{'F1':>7}{'sup':>6}{'fp':>5}")
        for code, m in th["per_theme"].items():
            if m["support"] == 0 and m["fp"] == 0:
                continue
            lines.append(f"{code:<28}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
                         f"{int(m['support']):>6}{int(m['fp']):>5}")
        lines.append(f"themes micro F1 {th['micro_f1']:.3f} (P {th['micro_precision']:.3f} R {th['micro_recall']:.3f})"
                     f"  macro F1 {th['macro_f1']:.3f} over {th['macro_over']} themes")
    se = report.get("sentiment")
    if se:
        lines.append(f"sentiment accuracy {se['accuracy']:.3f}  macro F1 {se['macro_f1']:.3f}  (n={se['n']})")
        labels = se["labels"]
        lines.append("  true\\pred " + "".join(f"{lab[:8]:>10}" for lab in labels))
        for t in labels:
            lines.append(f"  {t[:9]:<9} " + "".join(f"{se['confusion'][t][p]:>10}" for p in labels))
    ur = report.get("urgency")
    if ur:
        lines.append(f"urgency precision {ur['precision']:.3f} recall {ur['recall']:.3f} "
                     f"(tp {ur['tp']} fp {ur['fp']} fn {ur['fn']})")
    return "\n".join(lines)
