"""Key drivers ("what matters most"): how much each theme moves satisfaction at a unit (pure).

For one group of feedback (a unit or a service area, one period) the outcome is

- the channel **rating** where at least ``min_n`` documents carry one (kiosk smileys,
  survey scores; 1 = best on the document, see pipelines.classify.rating_to_score), else
- the text's **sentiment** score (-1..1),

both put on one 0..100 "satisfaction" scale (100 = best) so effects read the same way.
A theme's *effect* is its coefficient in a ridge regression of the outcome on 0/1 theme
indicators: themes co-occur (a long wait and a curt nurse in one comment), and a joint
model splits the drop between them where a per-theme mean difference would count it twice.
Ridge keeps the fit stable when two themes nearly always appear together. Intervals come
from a seeded bootstrap over documents; *impact* = effect x prevalence (the share of the
group's documents with the theme): a large effect of a rare theme costs less overall than
a moderate one of a common theme. Too little data is said, never ranked: a group below
``min_n`` documents gets no ranking, a theme below ``min_theme_n`` is listed as too rare.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.classify import rating_to_score

RATING, SENTIMENT = "rating", "sentiment"


@dataclass(frozen=True)
class DriverParams:
    """The knobs of one analysis (settings.insights_* in production)."""

    min_n: int = 50  # documents in the group with an outcome
    min_theme_n: int = 10  # documents with the theme
    alpha: float = 1.0  # ridge penalty on the 0..100 scale; small next to n, it only tames collinearity
    bootstrap: int = 200
    seed: int = 13
    level: float = 0.95


@dataclass(frozen=True)
class Driver:
    """One theme's estimated effect in a group."""

    theme: str
    n: int  # documents with the theme
    prevalence: float
    effect: float  # satisfaction points (0..100) the theme adds (negative: costs)
    effect_low: float
    effect_high: float
    impact: float  # effect x prevalence: points of the group's mean satisfaction
    impact_low: float
    impact_high: float

    @property
    def clear(self) -> bool:
        """Whether the interval excludes zero (the sign is not noise)."""
        return self.effect_low > 0 or self.effect_high < 0


@dataclass(frozen=True)
class DriverResult:
    """The analysis of one group: ranked drivers, or the reason there are none."""

    n: int
    outcome: str | None  # RATING, SENTIMENT, or None when nothing could be measured
    mean: float | None  # mean satisfaction of the group (0..100)
    drivers: tuple[Driver, ...] = ()  # most impact (by magnitude) first
    too_rare: dict[str, int] = field(default_factory=dict)  # theme -> documents, under min_theme_n
    insufficient: str | None = None  # why nothing is ranked

    @property
    def ok(self) -> bool:
        return self.insufficient is None


def satisfaction(doc: Mapping[str, Any], outcome: str) -> float | None:
    """The 0..100 satisfaction of a document for ``outcome`` (None: it has none)."""
    if outcome == RATING:
        score = rating_to_score(doc.get("rating"), doc.get("rating_scale"))
    else:
        score = doc.get("sentiment_score")
    return None if score is None else 50.0 * (float(score) + 1.0)


def choose_outcome(docs: Sequence[Mapping[str, Any]], min_n: int) -> str:
    """Rating where enough documents have one (it is the resident's own verdict), else sentiment."""
    rated = sum(1 for d in docs if d.get("rating") is not None)
    return RATING if rated >= min_n else SENTIMENT


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge coefficients with an unpenalised intercept (centred closed form)."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    return np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)


def key_drivers(docs: Iterable[Mapping[str, Any]], params: DriverParams = DriverParams()) -> DriverResult:
    """Rank the themes of ``docs`` (each with ``theme_codes`` and a rating or sentiment) by impact."""
    docs = list(docs)
    outcome = choose_outcome(docs, params.min_n)
    rows = [(d, s) for d in docs if (s := satisfaction(d, outcome)) is not None]
    n = len(rows)
    if n < params.min_n:
        return DriverResult(n=n, outcome=outcome if n else None,
                            mean=round(float(np.mean([s for _, s in rows])), 2) if rows else None,
                            insufficient=f"{n} documents with a {outcome}; at least {params.min_n} are needed")
    counts: dict[str, int] = {}
    for d, _ in rows:
        for code in set(d.get("theme_codes") or ()):
            counts[code] = counts.get(code, 0) + 1
    kept = sorted(c for c, k in counts.items() if params.min_theme_n <= k < n)
    too_rare = {c: k for c, k in sorted(counts.items()) if k < params.min_theme_n}
    y = np.asarray([s for _, s in rows], dtype=float)
    mean = round(float(y.mean()), 2)
    if not kept:
        return DriverResult(n=n, outcome=outcome, mean=mean, too_rare=too_rare,
                            insufficient=f"no theme appears in at least {params.min_theme_n} documents")
    x = np.asarray([[1.0 if c in set(d.get("theme_codes") or ()) else 0.0 for c in kept] for d, _ in rows])
    coef = _ridge(x, y, params.alpha)
    rng = np.random.default_rng(params.seed)
    boot = np.empty((params.bootstrap, len(kept)))
    prev_boot = np.empty_like(boot)
    for b in range(params.bootstrap):
        idx = rng.integers(0, n, n)
        xb = x[idx]
        # A resample where a theme is constant carries no information on it: its column
        # centres to zero and ridge returns 0 for it, which only widens the interval.
        boot[b] = _ridge(xb, y[idx], params.alpha)
        prev_boot[b] = xb.mean(axis=0)
    tail = (1.0 - params.level) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail], axis=0)
    ilo, ihi = np.percentile(boot * prev_boot, [tail, 100 - tail], axis=0)
    prevalence = x.mean(axis=0)
    drivers = [Driver(theme=c, n=counts[c], prevalence=round(float(prevalence[j]), 4),
                      effect=round(float(coef[j]), 2), effect_low=round(float(lo[j]), 2),
                      effect_high=round(float(hi[j]), 2), impact=round(float(coef[j] * prevalence[j]), 2),
                      impact_low=round(float(ilo[j]), 2), impact_high=round(float(ihi[j]), 2))
               for j, c in enumerate(kept)]
    drivers.sort(key=lambda dr: (-abs(dr.impact), dr.theme))
    return DriverResult(n=n, outcome=outcome, mean=mean, drivers=tuple(drivers), too_rare=too_rare)
