"""Metrics on hand-made examples, the fixed split and the training-data mapping."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.evaluation import (LabelledItem, binary_report, evaluate, format_report, multilabel_report, prf,
                                  sentiment_report)
from pipelines.training import best_threshold, label_map, pxt_sentiment, split_of


def test_prf_basic_and_undefined() -> None:
    assert prf(2, 1, 1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert prf(1, 0, 3) == pytest.approx((1.0, 0.25, 0.4))


def test_multilabel_micro_macro() -> None:
    truth = [{"a"}, {"a", "b"}, {"b"}, set()]
    pred = [{"a"}, {"a"}, {"b", "c"}, {"c"}]
    rep = multilabel_report(truth, pred, ["a", "b", "c"])
    a, b, c = (rep["per_theme"][k] for k in "abc")
    assert (a["tp"], a["fp"], a["fn"]) == (2, 0, 0) and a["f1"] == 1.0
    assert (b["tp"], b["fp"], b["fn"]) == (1, 0, 1) and b["f1"] == pytest.approx(2 / 3)
    assert (c["tp"], c["fp"], c["fn"]) == (0, 2, 0) and c["support"] == 0
    # micro: tp 3, fp 2, fn 1 -> P 0.6, R 0.75
    assert rep["micro_precision"] == pytest.approx(0.6)
    assert rep["micro_recall"] == pytest.approx(0.75)
    assert rep["micro_f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    # macro over labels present in the truth only (a, b)
    assert rep["macro_over"] == 2
    assert rep["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_multilabel_length_mismatch() -> None:
    with pytest.raises(ValueError):
        multilabel_report([{"a"}], [], ["a"])


def test_sentiment_report_confusion_and_macro() -> None:
    truth = ["negative", "negative", "neutral", "positive", "positive", "positive"]
    pred = ["negative", "neutral", "neutral", "positive", "positive", "negative"]
    rep = sentiment_report(truth, pred)
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["confusion"]["negative"]["neutral"] == 1
    assert rep["confusion"]["positive"]["negative"] == 1
    neg = rep["per_class"]["negative"]  # tp 1, fp 1, fn 1
    neu = rep["per_class"]["neutral"]  # tp 1, fp 1, fn 0
    pos = rep["per_class"]["positive"]  # tp 2, fp 0, fn 1
    assert neg["f1"] == pytest.approx(0.5)
    assert neu["f1"] == pytest.approx(2 / 3)
    assert pos["f1"] == pytest.approx(0.8)
    assert rep["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_binary_report() -> None:
    rep = binary_report([True, True, False, False], [True, False, True, False])
    assert (rep["tp"], rep["fp"], rep["fn"]) == (1, 1, 1)
    assert rep["precision"] == 0.5 and rep["recall"] == 0.5


def test_evaluate_skips_unlabelled_tasks() -> None:
    items = [LabelledItem("x", "fi", ("a",), "negative", True),
             LabelledItem("y", "fi", None, None, False)]
    preds = [SimpleNamespace(themes=(SimpleNamespace(code="a"),), sentiment="negative", urgent=True),
             SimpleNamespace(themes=(), sentiment="positive", urgent=False)]
    rep = evaluate(items, preds, ["a"])
    assert rep["themes"]["n"] == 1 and rep["themes"]["micro_f1"] == 1.0
    assert rep["sentiment"]["n"] == 1
    assert rep["urgency"]["recall"] == 1.0 and rep["urgency"]["n"] == 2
    text = format_report("tiny", rep)
    assert "micro F1 1.000" in text and "urgency precision 1.000" in text


def test_split_is_deterministic_and_about_70_10_20() -> None:
    ids = [f"NEAS X {i} - Q1" for i in range(5000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    assert split_of("NEAS PTS 528 - Q1") == split_of("NEAS PTS 528 - Q1")
    share = {s: first.count(s) / len(first) for s in ("train", "val", "test")}
    assert share["train"] == pytest.approx(0.7, abs=0.03)
    assert share["val"] == pytest.approx(0.1, abs=0.02)
    assert share["test"] == pytest.approx(0.2, abs=0.03)


def test_pxt_sentiment_mapping() -> None:
    assert [pxt_sentiment(v) for v in ("1", "2", "3", "4", "5", "")] == [
        "positive", "positive", "neutral", "negative", "negative", None]


def test_label_map_covers_taxonomy() -> None:
    from pipelines.classify import load_taxonomy

    mapping = label_map(load_taxonomy())
    assert mapping["Timeliness of care"] == "access_waiting"
    assert mapping["Parking"] == "transport_parking"
    assert "language_rights" not in mapping.values()


def test_best_threshold_finds_separating_cut() -> None:
    scores = np.array([0.1, 0.2, 0.35, 0.6, 0.7, 0.9])
    truth = np.array([0, 0, 0, 1, 1, 1])
    t, f = best_threshold(scores, truth)
    assert 0.35 < t <= 0.6 and f == 1.0
