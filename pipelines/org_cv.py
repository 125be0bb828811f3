"""Heads trained across organisations, tuned and measured leave-one-organisation-out.

Every labelled English comment belongs to one organisation (NEAS, Trust A, B, C). The
procedure that makes a model from a set of organisations S is:

1. fit the theme and sentiment heads on S (plus the multilingual seeds and prototypes);
2. choose the per-theme thresholds and the neutral-logit shift on out-of-fold scores from
   an inner leave-one-organisation-out over S (fit on S minus j, score j, for each j in S),
   so nothing is tuned on one trust's split.

``feedback train`` runs it on every organisation; ``leave_one_org_out`` runs it on each
set of all-but-one and scores the one left out, beside a plain baseline (frozen
embeddings + scikit-learn LogisticRegression with defaults, no weights, no tuning) fitted
on the same rows. Fits are cached by their set of training organisations, so the nested
evaluation needs 4 + 6 fits for four organisations, not 16.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from pipelines.classify import SENTIMENTS, proto_theme_scores
from pipelines.evaluation import multilabel_report, sentiment_report

NO_SENTIMENT = -1
SHIFT_GRID = tuple(float(s) for s in np.round(np.arange(-1.0, 1.01, 0.1), 2))


@dataclass
class OrgRows:
    """Labelled organisation rows and the always-present multilingual training extras."""

    orgs: np.ndarray  # [n] organisation name per row
    emb: np.ndarray  # [n, d]
    y: np.ndarray  # [n, k] 0/1 theme truth
    theme_w: np.ndarray  # [n, k] training weight of each (row, theme) cell; 0 = unknown
    scored: np.ndarray  # [n] themes are labelled for this row (scored in evaluation)
    sent: np.ndarray  # [n] index into SENTIMENTS, NO_SENTIMENT when unlabelled
    extra_emb: np.ndarray  # seeds + prototypes
    extra_y: np.ndarray
    extra_w: np.ndarray
    extra_is_seed: np.ndarray  # [m] seed rows (count toward a head's positives); prototypes False
    proto_emb: np.ndarray
    proto_theme: np.ndarray
    codes: list[str]
    scored_codes: list[str] = field(default_factory=list)  # themes English truth can carry
    # [n] the row's truth is one theme only (phase 1: one subcategory per comment); None = none is
    single: np.ndarray | None = None

    @property
    def org_names(self) -> list[str]:
        return sorted(set(self.orgs.tolist()), key=lambda o: (o != "NEAS", o))


@dataclass
class Heads:
    """One fit: theme heads (one-vs-rest) and the English sentiment head."""

    coef: np.ndarray
    intercept: np.ndarray
    has_head: np.ndarray
    # English sentiment heads by class weighting ("balanced": every class the same total weight;
    # "plain": as the rows come); tuning picks one by inner leave-one-org-out.
    sent: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class Tuned:
    """A fit with the thresholds and neutral shift chosen by inner leave-one-org-out."""

    heads: Heads
    thresholds: np.ndarray
    neutral_shift: float
    inner: dict[str, Any]
    sent_weighting: str = "balanced"

    @property
    def sent_coef(self) -> np.ndarray:
        return self.heads.sent[self.sent_weighting][0]

    @property
    def sent_intercept(self) -> np.ndarray:
        return self.heads.sent[self.sent_weighting][1]


def fit_multilabel_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, C: float,
                            max_iter: int = 3000, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest L2 logistic regressions, each ``C * sum(w * logloss) + |coef|^2 / 2``
    (scikit-learn's objective, intercept unpenalised), solved jointly with one L-BFGS run.

    The objective separates by column, so the solution is that of k separate fits; solving
    them together turns k small optimisations into one with matrix products, about k times
    faster. Deterministic: zero start, no randomness.
    """
    from scipy.optimize import minimize

    # Centred features: the intercept is unpenalised, so the optimum is the same model, but
    # e5 embeddings share a large common direction (cosines 0.75-1.0) and centring removes
    # it, which makes the problem far better conditioned (many times fewer iterations).
    mu = np.asarray(x, dtype=np.float64).mean(axis=0)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64) - mu)
    y = y.astype(np.float64)
    w = w.astype(np.float64)
    n, d = x.shape
    k = y.shape[1]
    # Divided by C * n, as scikit-learn scales its objective, so the stopping tolerance means
    # the same whatever the data size.
    scale = 1.0 / (C * n)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef = theta[: d * k].reshape(d, k)
        b = theta[d * k:]
        z = x @ coef + b
        # log(1 + e^z) - y z, stably
        loss = np.logaddexp(0.0, z) - y * z
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = C * w * (p - y)
        value = C * float((w * loss).sum()) + 0.5 * float((coef * coef).sum())
        grad = np.concatenate([(x.T @ g + coef).ravel(), g.sum(axis=0)])
        return value * scale, grad * scale

    res = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxcor": 20, "ftol": 1e-10, "gtol": tol})
    theta = res.x
    coef = theta[: d * k].reshape(d, k).T.copy()
    return coef, theta[d * k:] - coef @ mu


def class_balanced(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Sample weights giving every present class the same total weight (mean weight 1)."""
    w = np.zeros(len(labels), dtype=np.float64)
    present = [c for c in range(n_classes) if (labels == c).any()]
    for c in present:
        m = labels == c
        w[m] = len(labels) / (len(present) * m.sum())
    return w


def three_class(clf: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn LogisticRegression as logits over all of SENTIMENTS.

    Rows without a label of some class (phase 1 has no neutral, so a fit without NEAS has
    none) still need a logit for it: that class gets zero weights and a very low intercept,
    so it is never predicted. A two-class fit has one coefficient row, for its second class.
    """
    coef = np.zeros((len(SENTIMENTS), dim))
    intercept = np.full(len(SENTIMENTS), -30.0)
    classes = [int(c) for c in clf.classes_]
    if len(classes) == 2:
        coef[classes[1]], intercept[classes[1]] = clf.coef_[0], clf.intercept_[0]
        intercept[classes[0]] = 0.0
    else:
        coef[classes], intercept[classes] = clf.coef_, clf.intercept_
    return coef, intercept


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


class OrgCV:
    """Fits, tuning and leave-one-org-out figures over ``rows``; fits are cached per org set."""

    def __init__(self, rows: OrgRows, config: Any, log: Callable[[str], None] = lambda s: None) -> None:
        self.rows = rows
        self.config = config
        self.log = log
        self._fits: dict[frozenset[str], Heads] = {}
        self._tuned: dict[frozenset[str], Tuned] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, train_orgs: frozenset[str]) -> Heads:
        """Heads fitted on the rows of ``train_orgs`` plus the multilingual extras (cached)."""
        if train_orgs not in self._fits:
            self._fits[train_orgs] = self._fit(np.isin(self.rows.orgs, sorted(train_orgs)))
            self.log(f"  fitted heads on {', '.join(sorted(train_orgs))}")
        return self._fits[train_orgs]

    def _fit(self, mask: np.ndarray) -> Heads:
        from sklearn.linear_model import LogisticRegression

        r, cfg = self.rows, self.config
        x = np.concatenate([r.emb[mask], r.extra_emb])
        y = np.concatenate([r.y[mask], r.extra_y])
        w = np.concatenate([r.theme_w[mask], r.extra_w])
        positives = (r.y[mask] * (r.theme_w[mask] > 0)).sum(axis=0) + r.extra_y[r.extra_is_seed].sum(axis=0)
        has_head = positives >= cfg.head_min_positives
        if cfg.theme_positive_weight != 1.0:
            # Rare themes: weigh positives up (capped) so a head is not just its prior.
            pos = (y * (w > 0)).sum(axis=0)
            neg = ((1 - y) * (w > 0)).sum(axis=0)
            boost = np.clip((neg / np.maximum(pos, 1.0)) ** 0.5, 1.0, cfg.theme_positive_weight)
            w = np.where(y > 0, w * boost[None, :], w)
        coef = np.zeros((len(r.codes), x.shape[1]), dtype=np.float64)
        intercept = np.full(len(r.codes), -10.0)
        cols = np.flatnonzero(has_head)
        if len(cols):
            c, b = fit_multilabel_logistic(x, y[:, cols], w[:, cols], cfg.theme_C)
            coef[cols], intercept[cols] = c, b
        s_mask = mask & (r.sent != NO_SENTIMENT)
        labels = r.sent[s_mask]
        sent = {}
        for weighting in cfg.sent_weightings:
            sw = class_balanced(labels, len(SENTIMENTS)) if weighting == "balanced" else np.ones(len(labels))
            clf = LogisticRegression(C=cfg.sent_C, max_iter=3000, random_state=cfg.seed)
            clf.fit(r.emb[s_mask].astype(np.float64), labels, sample_weight=sw)
            sent_coef, sent_intercept = three_class(clf, x.shape[1])
            sent[weighting] = (sent_coef.astype(np.float32), sent_intercept.astype(np.float32))
        return Heads(coef.astype(np.float32), intercept.astype(np.float32), has_head, sent)

    # ------------------------------------------------------------------ scoring
    def theme_scores(self, heads: Heads, emb: np.ndarray) -> np.ndarray:
        """English theme scores as classify computes them: the head, or prototypes without one."""
        r, cfg = self.rows, self.config
        head = 1.0 / (1.0 + np.exp(-(emb @ heads.coef.T + heads.intercept)))
        proto = proto_theme_scores(emb, r.proto_emb, r.proto_theme, len(r.codes), cfg.proto_center, cfg.proto_slope)
        return np.where(heads.has_head[None, :], head, proto)

    @staticmethod
    def sentiment_logits(heads: Heads, emb: np.ndarray, weighting: str) -> np.ndarray:
        coef, intercept = heads.sent[weighting]
        return emb @ coef.T + intercept

    # ------------------------------------------------------------------ tuning
    def tune(self, orgs: frozenset[str]) -> Tuned:
        """Fit on ``orgs``; thresholds, the sentiment head's class weighting and its neutral shift
        from inner leave-one-org-out over them."""
        if orgs in self._tuned:
            return self._tuned[orgs]
        r, cfg = self.rows, self.config
        scores, truth, logits, s_truth, s_org = [], [], [], [], []
        for held in sorted(orgs):
            heads = self.fit(orgs - {held})
            m = (r.orgs == held) & r.scored
            scores.append(self.theme_scores(heads, r.emb[m]))
            truth.append(r.y[m])
            sm = (r.orgs == held) & (r.sent != NO_SENTIMENT)
            logits.append({w: self.sentiment_logits(heads, r.emb[sm], w) for w in cfg.sent_weightings})
            s_truth.append(r.sent[sm])
            s_org += [held] * int(sm.sum())
        oof, y_oof = np.concatenate(scores), np.concatenate(truth)
        heads = self.fit(orgs)
        thresholds = np.full(len(r.codes), cfg.proto_threshold, dtype=np.float32)
        for j in range(len(r.codes)):
            n_pos = int(y_oof[:, j].sum())
            if not heads.has_head[j] or n_pos == 0:
                continue
            t, _ = best_threshold(oof[:, j], y_oof[:, j])
            if n_pos < cfg.threshold_shrink_below:
                # Few out-of-fold positives: the tuned value is noise, so pull it toward 0.5.
                t = 0.5 + (t - 0.5) * n_pos / cfg.threshold_shrink_below
            thresholds[j] = round(float(t), 4)
        all_truth, org_arr = np.concatenate(s_truth), np.asarray(s_org)
        f1: dict[tuple[str, float], float] = {}
        for weighting in cfg.sent_weightings:
            all_logits = np.concatenate([lg[weighting] for lg in logits])
            for shift in SHIFT_GRID:
                pred = (all_logits + np.asarray([0.0, shift, 0.0])).argmax(axis=1)
                f1[(weighting, shift)] = float(np.mean([
                    sentiment_report([SENTIMENTS[i] for i in all_truth[org_arr == o]],
                                     [SENTIMENTS[i] for i in pred[org_arr == o]])["macro_f1"] for o in sorted(orgs)]))
        # Ties go to the first weighting listed and the smaller shift.
        order = {w: i for i, w in enumerate(cfg.sent_weightings)}
        weighting, best = max(f1, key=lambda k: (round(f1[k], 9), -order[k[0]], -abs(k[1])))
        tuned = Tuned(heads, thresholds, best,
                      {"orgs": sorted(orgs), "neutral_shift": best, "sent_weighting": weighting,
                       "inner_sentiment_macro_f1": round(f1[(weighting, best)], 4)}, weighting)
        self._tuned[orgs] = tuned
        return tuned

    # ------------------------------------------------------------------ evaluation
    def predict(self, tuned: Tuned, emb: np.ndarray) -> tuple[list[list[str]], list[str]]:
        """Themes (at most ``max_themes``, best first) and sentiment labels for English rows."""
        r = self.rows
        scores = self.theme_scores(tuned.heads, emb)
        themes = []
        for row in scores:
            above = np.flatnonzero(row >= tuned.thresholds)
            top = above[np.argsort(-row[above], kind="stable")][: self.config.max_themes]
            themes.append([r.codes[j] for j in top])
        logits = self.sentiment_logits(tuned.heads, emb, tuned.sent_weighting) + np.asarray([0.0, tuned.neutral_shift, 0.0])
        return themes, [SENTIMENTS[i] for i in logits.argmax(axis=1)]

    def baseline(self, train_orgs: frozenset[str], emb: np.ndarray) -> tuple[list[list[str]], list[str]]:
        """Plain baseline on the same rows: LogisticRegression() per theme (a phase-1 row is a
        negative for every theme but its own) and for sentiment; no weights, 0.5 / argmax."""
        from sklearn.linear_model import LogisticRegression

        r, cfg = self.rows, self.config
        mask = np.isin(r.orgs, sorted(train_orgs))
        tm = mask & r.scored
        x = r.emb[tm].astype(np.float64)
        proba = np.zeros((len(emb), len(r.codes)))
        for j, code in enumerate(r.codes):
            yj = r.y[tm, j]
            if yj.min() == yj.max():
                continue
            proba[:, j] = LogisticRegression(max_iter=3000, random_state=cfg.seed).fit(x, yj).predict_proba(emb)[:, 1]
        themes = [[r.codes[j] for j in np.argsort(-row, kind="stable") if row[j] >= 0.5] for row in proba]
        sm = mask & (r.sent != NO_SENTIMENT)
        clf = LogisticRegression(max_iter=3000, random_state=cfg.seed).fit(r.emb[sm].astype(np.float64), r.sent[sm])
        return themes, [SENTIMENTS[i] for i in clf.predict(emb)]

    def score_org(self, org: str, themes: Sequence[Sequence[str]], sentiments: Sequence[str]) -> dict[str, Any]:
        """Theme micro/macro F1 (mapped themes) and sentiment macro F1 on one organisation's rows.

        ``themes`` are ranked, best first. Where a row's truth is a single theme (phase 1: the
        labeller picked one subcategory and said nothing of the others), only the first
        predicted theme is scored against it (precision and recall at 1): counting the other
        themes a comment also raises as false positives would score truth that does not exist.
        Rows with every theme labelled (NEAS) are scored on the whole predicted set.
        """
        r = self.rows
        rows = np.flatnonzero(r.orgs == org)
        t_idx = [i for i, g in enumerate(rows) if r.scored[g]]
        s_idx = [i for i, g in enumerate(rows) if r.sent[g] != NO_SENTIMENT]
        truth = [{r.codes[j] for j in np.flatnonzero(r.y[rows[i]])} for i in t_idx]
        single = r.single if r.single is not None else np.zeros(len(r.orgs), dtype=bool)
        predicted = [set(themes[i][:1]) if single[rows[i]] else set(themes[i]) for i in t_idx]
        th = multilabel_report(truth, predicted, r.scored_codes)
        se = sentiment_report([SENTIMENTS[r.sent[rows[i]]] for i in s_idx], [sentiments[i] for i in s_idx])
        return {"themes_n": len(t_idx), "themes_micro_f1": round(th["micro_f1"], 4),
                "themes_macro_f1": round(th["macro_f1"], 4), "themes_macro_over": th["macro_over"],
                "sentiment_n": len(s_idx), "sentiment_macro_f1": round(se["macro_f1"], 4),
                "sentiment_accuracy": round(se["accuracy"], 4)}

    def leave_one_org_out(self, baseline: bool = True) -> dict[str, Any]:
        """Per left-out organisation and averaged: the tuned heads and (optionally) the baseline."""
        r = self.rows
        names = r.org_names
        per: dict[str, Any] = {}
        for org in names:
            train = frozenset(names) - {org}
            self.log(f"leave out {org}")
            tuned = self.tune(train)
            emb = r.emb[r.orgs == org]
            entry = {"model": self.score_org(org, *self.predict(tuned, emb)),
                     "neutral_shift": tuned.neutral_shift, "sent_weighting": tuned.sent_weighting}
            if baseline:
                entry["baseline"] = self.score_org(org, *self.baseline(train, emb))
            per[org] = entry
        keys = ("themes_micro_f1", "themes_macro_f1", "sentiment_macro_f1", "sentiment_accuracy")
        mean = {kind: {k: round(float(np.mean([per[o][kind][k] for o in names])), 4) for k in keys}
                for kind in (("model", "baseline") if baseline else ("model",))}
        return {"orgs": names, "per_org": per, "mean": mean}


LOO_TARGETS = {"sentiment_macro_f1": 0.72, "sentiment_margin": 0.03, "themes_micro_f1": 0.65,
               "themes_macro_f1": 0.50}


def format_loo(loo: dict[str, Any]) -> str:
    """Table: each left-out organisation, model figure with the baseline beside it."""
    cols = (("themes_micro_f1", "themes micro F1"), ("themes_macro_f1", "themes macro F1"),
            ("sentiment_macro_f1", "sentiment macro F1"))
    head = f"{'left out':<10}{'n (themes/sent)':>17}" + "".join(f"{label:>22}" for _, label in cols)
    lines = ["== leave-one-organisation-out (model | plain baseline) ==", head]
    for org in loo["orgs"]:
        e = loo["per_org"][org]
        n = f"{e['model']['themes_n']}/{e['model']['sentiment_n']}"
        cells = "".join(f"{e['model'][k]:>13.3f} | {e.get('baseline', {}).get(k, float('nan')):>5.3f}"
                        for k, _ in cols)
        lines.append(f"{org:<10}{n:>17}{cells}")
    m = loo["mean"]
    cells = "".join(f"{m['model'][k]:>13.3f} | {m.get('baseline', {}).get(k, float('nan')):>5.3f}" for k, _ in cols)
    lines.append(f"{'mean':<10}{'':>17}{cells}")
    lines.append("targets (mean): " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in loo_targets(loo).items()))
    return "\n".join(lines)


def loo_targets(loo: dict[str, Any]) -> dict[str, bool]:
    """Which of the issue's generalisation targets the mean figures meet."""
    m = loo["mean"]["model"]
    out = {"sentiment macro F1 >= 0.72": m["sentiment_macro_f1"] >= LOO_TARGETS["sentiment_macro_f1"],
           "themes micro F1 >= 0.65": m["themes_micro_f1"] >= LOO_TARGETS["themes_micro_f1"],
           "themes macro F1 >= 0.50": m["themes_macro_f1"] >= LOO_TARGETS["themes_macro_f1"]}
    if "baseline" in loo["mean"]:
        out["sentiment >= baseline + 0.03"] = (
            m["sentiment_macro_f1"] >= loo["mean"]["baseline"]["sentiment_macro_f1"] + LOO_TARGETS["sentiment_margin"])
    return out
