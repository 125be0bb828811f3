"""Leave-one-organisation-out training and evaluation (pipelines/org_cv.py), the phase-1
mapping (pipelines/phase1.py) and the reproduction check, on small synthetic data."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.classify import load_taxonomy
from pipelines.evaluation_run import reproduction
from pipelines.org_cv import NO_SENTIMENT, OrgCV, OrgRows, class_balanced, fit_multilabel_logistic, format_loo
from pipelines.phase1 import load_phase1_map, phase1_sentiment, phase1_theme
from pipelines.training import DEFAULT_DATA_DIR, TrainConfig

ORGS = ("NEAS", "Trust A", "Trust B", "Trust C")
CODES = ["alpha", "beta", "gamma"]


def test_joint_solver_matches_scikit_learn_per_column() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.stack([(x[:, 0] + 0.5 * rng.normal(size=300) > 0), (x[:, 1] - x[:, 2] > 0.5)], axis=1).astype(float)
    w = rng.uniform(0.2, 2.0, size=y.shape)
    coef, intercept = fit_multilabel_logistic(x, y, w, C=4.0)
    for j in range(2):
        ref = LogisticRegression(C=4.0, max_iter=5000, tol=1e-10).fit(x, y[:, j], sample_weight=w[:, j])
        assert np.allclose(coef[j], ref.coef_[0], atol=2e-3)
        assert intercept[j] == pytest.approx(ref.intercept_[0], abs=2e-3)


def test_zero_weight_cells_do_not_train() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    y = (x[:, :1] > 0).astype(float)
    w = np.ones_like(y)
    flipped = y.copy()
    flipped[:50] = 1 - flipped[:50]
    w0 = w.copy()
    w0[:50] = 0.0
    a = fit_multilabel_logistic(x, y, w0, C=1.0)
    b = fit_multilabel_logistic(x, flipped, w0, C=1.0)
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])


def test_class_balanced_gives_each_class_equal_mass() -> None:
    labels = np.asarray([0] * 8 + [1] * 2 + [2] * 10)
    w = class_balanced(labels, 3)
    assert [w[labels == k].sum() for k in range(3)] == pytest.approx([20 / 3] * 3)
    assert w.mean() == pytest.approx(1.0)


# ---------------------------------------------------------------- phase-1 mapping
def test_phase1_sentiment_bands_and_unlabelled_values() -> None:
    m = load_phase1_map()
    got = {v: phase1_sentiment(v, m) for v in ("-5", "-2", "-1", "0", "1", "2", "5", "-9", "-o", "NA", "")}
    # The sign carries the direction: a mild +1 is still praise, a mild -1 still a complaint.
    assert got == {"-5": "negative", "-2": "negative", "-1": "negative", "0": None, "1": "positive",
                   "2": "positive", "5": "positive", "-9": None, "-o": None, "NA": None, "": None}


def test_phase1_map_names_only_taxonomy_themes_and_splits_care_received_by_sentiment() -> None:
    m = load_phase1_map()
    codes = {t["code"] for t in load_taxonomy()["themes"]}
    for code, entry in m["subcategories"].items():
        targets = entry["theme"].values() if isinstance(entry["theme"], dict) else [entry["theme"]]
        assert all(t is None or t in codes for t in targets), code
        assert entry["why"], code
    assert phase1_theme("cc", "positive", m) == "positive_gratitude"
    assert phase1_theme("cc", "negative", m) == "care_quality"
    assert phase1_theme("cc", None, m) is None
    assert phase1_theme("ef", None, m) == "food"
    with pytest.raises(KeyError):
        phase1_theme("zz", None, m)


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "pxtextmining-phase1" / "text_data.csv").is_file(),
                    reason="shared training data not beside the clone")
def test_phase1_loader_on_the_shared_data() -> None:
    from pipelines.training import load_phase1, phase1_csv

    rows = load_phase1(phase1_csv())
    assert len(rows) == 10334
    assert {r.org for r in rows} == {"Trust A", "Trust B", "Trust C"}
    assert all(r.theme_label == ("single" if r.themes else "none") and len(r.themes) <= 1 for r in rows)
    # Trust B leaves most rows ungraded (criticality 0): they stay unlabelled, not neutral.
    b = [r for r in rows if r.org == "Trust B"]
    assert sum(r.sentiment is None for r in b) > 2000


# ---------------------------------------------------------------- leave-one-org-out
def _rows(seed: int = 0, n_per_org: int = 80) -> OrgRows:
    """Four organisations; themes and sentiment follow the first dimensions, plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6)) * 2
    xs, ys, sents, orgs = [], [], [], []
    for k, org in enumerate(ORGS):
        c = rng.integers(0, 3, size=n_per_org)
        x = centres[c] + rng.normal(size=(n_per_org, 6)) + 0.2 * k
        xs.append(x)
        ys.append(np.eye(3)[c])
        sents.append(np.where(x[:, 5] > 0.8, 2, np.where(x[:, 5] < -0.8, 0, 1)))
        orgs += [org] * n_per_org
    x = np.concatenate(xs).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.concatenate(ys)
    return OrgRows(orgs=np.asarray(orgs), emb=x, y=y, theme_w=np.ones_like(y), scored=np.ones(len(x), bool),
                   sent=np.concatenate(sents), extra_emb=np.zeros((0, 6), np.float32), extra_y=np.zeros((0, 3)),
                   extra_w=np.zeros((0, 3)), extra_is_seed=np.zeros(0, bool), proto_emb=x[:3].copy(),
                   proto_theme=np.arange(3), codes=CODES, scored_codes=CODES)


def test_leave_one_org_out_reports_every_org_with_baseline_and_is_deterministic() -> None:
    cfg = TrainConfig(head_min_positives=5)
    first = OrgCV(_rows(), cfg).leave_one_org_out()
    again = OrgCV(_rows(), cfg).leave_one_org_out()
    assert first == again
    assert first["orgs"] == list(ORGS)
    for org in ORGS:
        assert set(first["per_org"][org]) >= {"model", "baseline"}
        assert first["per_org"][org]["model"]["themes_n"] == 80
    assert first["mean"]["model"]["themes_micro_f1"] > 0.8  # separable themes
    table = format_loo(first)
    assert "Trust C" in table and "mean" in table and " | " in table


def test_tuning_never_sees_the_left_out_organisation() -> None:
    """Thresholds and the neutral shift for {NEAS, A, B} must not move when Trust C's labels change."""
    rows = _rows()
    other = replace(rows, y=rows.y.copy(), sent=rows.sent.copy())
    c = other.orgs == "Trust C"
    other.y[c] = 1 - other.y[c]
    other.sent[c] = NO_SENTIMENT
    train = frozenset(ORGS) - {"Trust C"}
    cfg = TrainConfig(head_min_positives=5)
    a, b = OrgCV(rows, cfg).tune(train), OrgCV(other, cfg).tune(train)
    assert np.array_equal(a.thresholds, b.thresholds) and a.neutral_shift == b.neutral_shift
    assert np.array_equal(a.heads.coef, b.heads.coef)


def test_fits_are_shared_between_outer_and_inner_folds() -> None:
    cv = OrgCV(_rows(), TrainConfig(head_min_positives=5))
    cv.leave_one_org_out(baseline=False)
    sizes = sorted(len(k) for k in cv._fits)
    assert sizes == [2] * 6 + [3] * 4  # 10 fits, not 4 x (1 + 3)


def test_reproduction_within_tolerance() -> None:
    loo = OrgCV(_rows(), TrainConfig(head_min_positives=5)).leave_one_org_out(baseline=False)
    assert reproduction(loo, loo)["ok"]
    moved = json.loads(json.dumps(loo))
    moved["per_org"]["Trust A"]["model"]["sentiment_macro_f1"] += 0.02
    rep = reproduction(loo, moved)
    assert not rep["ok"] and rep["max_abs_diff"] == pytest.approx(0.02)
    assert not reproduction(None, loo)["ok"]


# ---------------------------------------------------------------- the colloquial gold set
GOLD = Path(__file__).resolve().parents[1] / "data" / "gold_fi_colloquial.jsonl"


def test_colloquial_gold_set_invariants() -> None:
    items = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    codes = [t["code"] for t in load_taxonomy()["themes"]]
    assert len(items) >= 200
    assert len({i["id"] for i in items}) == len(items)
    for i in items:
        assert set(i) == {"id", "text", "language", "themes", "sentiment", "urgent"}
        assert i["id"].startswith("fic-") and i["language"] == "fi"
        assert 1 <= len(i["themes"]) <= 3 and len(set(i["themes"])) == len(i["themes"])
        assert set(i["themes"]) <= set(codes)
        assert i["sentiment"] in ("negative", "neutral", "positive")
        assert not i["urgent"] or "safety" in i["themes"]
    for code in codes:
        assert sum(code in i["themes"] for i in items) >= 10, code


def test_colloquial_gold_set_is_not_training_text() -> None:
    root = Path(__file__).resolve().parents[2]
    seeds = {json.loads(line)["text"].strip().lower()
             for line in (root / "pipelines" / "data" / "seed_examples.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()}
    protos = {s.strip().lower() for t in load_taxonomy()["themes"] for ss in t["prototypes"].values() for s in ss}
    texts = [json.loads(line)["text"].strip().lower() for line in GOLD.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    assert not (set(texts) & (seeds | protos))


def test_single_label_rows_are_scored_on_the_first_predicted_theme_only() -> None:
    full = _rows()
    single = replace(full, single=np.ones(len(full.orgs), bool))
    org = "Trust A"
    truth = [CODES[int(np.argmax(full.y[i]))] for i in np.flatnonzero(full.orgs == org)]
    other = {c: next(o for o in CODES if o != c) for c in CODES}
    right_first = [[t, other[t]] for t in truth]
    wrong_first = [[other[t], t] for t in truth]
    sentiments = ["neutral"] * len(truth)
    cfg = TrainConfig(head_min_positives=5)
    # One subcategory per comment: a second theme is not known to be wrong, so it is not scored.
    assert OrgCV(single, cfg).score_org(org, right_first, sentiments)["themes_micro_f1"] == 1.0
    assert OrgCV(single, cfg).score_org(org, wrong_first, sentiments)["themes_micro_f1"] == 0.0
    # Every theme labelled: the whole predicted set counts, so the extra theme is a false positive.
    assert OrgCV(full, cfg).score_org(org, right_first, sentiments)["themes_micro_f1"] == round(2 / 3, 4)


def test_seed_thresholds_pick_each_themes_f1_best_and_shrink_with_few_positives() -> None:
    from pipelines.training import seed_thresholds

    rng = np.random.default_rng(3)
    n = 400
    truth = np.zeros((n, 3), dtype=np.int8)
    truth[:200, 0] = 1  # many positives: scores above 0.6 exactly for them
    truth[:4, 1] = 1  # four positives: the tuned value is pulled toward the base
    oof = rng.uniform(0.0, 0.55, size=(n, 3))
    oof[:200, 0] = rng.uniform(0.65, 0.95, size=200)
    oof[:4, 1] = 0.9
    base = np.asarray([0.3, 0.3, 0.42], dtype=np.float32)
    out = seed_thresholds(oof, truth, base, shrink_below=10)
    assert 0.55 <= out[0] <= 0.65  # separates the classes
    tuned_1 = 0.575  # the lowest grid threshold above every negative's score (0.55) ...
    assert out[1] == pytest.approx(0.3 + (tuned_1 - 0.3) * 4 / 10, abs=0.03)  # ... 4/10 of the way from base
    assert out[2] == pytest.approx(0.42)  # no positives: the base
