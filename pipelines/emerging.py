"""Emerging topics ("what is new"): clusters of recent feedback that no theme covers well (pure).

Of a service area's recent feedback, only documents whose best theme score is low
(``max_theme_score`` under a cut-off: no theme, or only a weak one) are clustered, on their
stored embeddings, with HDBSCAN: it finds dense groups of any number and leaves the
scattered rest as noise instead of forcing every comment into some cluster. A cluster is
*emerging* when it is large enough and has grown: the documents of earlier windows of the
same length that lie as close to its centre as its own members count as its earlier size,
so a kind of comment that has always been there (and the taxonomy just misses) is reported
but not flagged. Each cluster is described by Finnish and Swedish keywords (Snowball stems
counted against the rest of the recent feedback, stopwords from schemas/stopwords.json,
each shown as its most common written form) and its three most central documents as quotes.
The stored text is already redacted; quotes are handed on by feedback id.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from schemas import load_json

STEMMER_LANGUAGES = {"fi": "finnish", "sv": "swedish"}
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)  # letters only, at least three
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")  # redaction placeholders are no keywords


@dataclass(frozen=True)
class EmergingParams:
    """The knobs of one run (settings.insights_emerging_* in production)."""

    max_theme_score: float = 0.5  # documents whose best theme scores under this are clustered
    min_cluster_size: int = 8
    min_samples: int | None = 4
    min_growth: float = 2.0  # recent size / mean earlier size (both +1) to flag a cluster
    max_p: float = 0.001  # and the recent size must be this unlikely under the earlier mean (Poisson)
    keywords: int = 6
    quotes: int = 3


@dataclass(frozen=True)
class Topic:
    """One cluster of poorly covered recent feedback."""

    topic_id: str
    size: int
    earlier_sizes: tuple[int, ...]  # per earlier window, oldest first
    growth: float
    emerging: bool
    keywords: dict[str, tuple[str, ...]]  # language -> keywords, strongest first
    quote_ids: tuple[str, ...]  # the most central members
    member_ids: tuple[str, ...]
    centroid: tuple[float, ...] = field(repr=False, default=())  # of the recent members


def max_theme_score(doc: Mapping[str, Any]) -> float:
    """The document's best theme score (0 when it has no theme)."""
    return max((float(t.get("score") or 0.0) for t in doc.get("themes") or ()), default=0.0)


def poorly_covered(docs: Sequence[Mapping[str, Any]], cutoff: float) -> list[Mapping[str, Any]]:
    """Documents with text and an embedding whose best theme score is under ``cutoff``."""
    return [d for d in docs if d.get("embedding") and (d.get("text") or "").strip() and max_theme_score(d) < cutoff]


@lru_cache(maxsize=1)
def stopwords() -> dict[str, frozenset[str]]:
    data = load_json("stopwords.json")
    return {lang: frozenset(data[lang]) for lang in STEMMER_LANGUAGES}


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(STEMMER_LANGUAGES[language])


def stems(text: str, language: str) -> list[tuple[str, str]]:
    """(stem, word) of the content words of ``text`` (lowercased, stopwords removed)."""
    stop = stopwords()[language]
    words = [w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text).lower()) if w not in stop]
    return list(zip(_stemmer(language).stemWords(words), words))


def keywords(members: Sequence[Mapping[str, Any]], others: Sequence[Mapping[str, Any]], language: str,
             k: int) -> tuple[str, ...]:
    """The ``k`` stems most typical of ``members`` against ``others`` (documents of ``language`` only),
    each as its most common written form; a keyword must occur in two members at least."""
    def doc_stems(docs: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        return [{s for s, _ in stems(d.get("text") or "", language)} for d in docs if d.get("language") == language]

    mine, rest = doc_stems(members), doc_stems(others)
    if not mine:
        return ()
    df_mine = Counter(s for doc in mine for s in doc)
    df_rest = Counter(s for doc in rest for s in doc)
    forms: dict[str, Counter[str]] = {}
    for d in members:
        if d.get("language") == language:
            for s, w in stems(d.get("text") or "", language):
                forms.setdefault(s, Counter())[w] += 1
    # Share of members with the stem, weighted by how rare it is elsewhere (class TF-IDF).
    scored = sorted(((df_mine[s] / len(mine)) * math.log((1 + len(rest)) / (1 + df_rest[s])) + 0.0, s)
                    for s in df_mine if df_mine[s] >= 2)
    ranked = sorted(scored, key=lambda p: (-p[0], p[1]))
    return tuple(forms[s].most_common(1)[0][0] for score, s in ranked[:k] if score > 0)


def _unit_rows(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def cluster_labels(embeddings: np.ndarray, params: EmergingParams) -> np.ndarray:
    """HDBSCAN labels (-1: noise) of unit-length embeddings (euclidean there ranks like cosine)."""
    from sklearn.cluster import HDBSCAN

    if len(embeddings) < params.min_cluster_size:
        return np.full(len(embeddings), -1)
    return HDBSCAN(min_cluster_size=params.min_cluster_size, min_samples=params.min_samples,
                   metric="euclidean", copy=True).fit_predict(embeddings)


def topic_id(scope: str, member_ids: Sequence[str]) -> str:
    """A stable id for a cluster: its scope and its most central members."""
    return "t_" + hashlib.sha256("|".join([scope, *member_ids]).encode()).hexdigest()[:20]


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean): how surprising ``k`` recent documents are."""
    if k <= 0:
        return 1.0
    term = total = math.exp(-mean)
    for i in range(1, k):
        term *= mean / i
        total += term
    return max(0.0, 1.0 - total)


def find_topics(windows: Sequence[Sequence[Mapping[str, Any]]], params: EmergingParams = EmergingParams(),
                scope: str = "") -> list[Topic]:
    """Clusters of poorly covered feedback with members in the last (recent) window, emerging first.

    ``windows``: the documents of consecutive windows of one length, oldest first, the recent one
    last; documents need ``feedback_id``, ``text``, ``language``, ``embedding`` and ``themes``.
    The windows are clustered together, so a cluster's size in each window is counted the same
    way: a kind of comment that was always there spreads over all of them and shows no growth.
    """
    pools = [poorly_covered(w, params.max_theme_score) for w in windows]
    pool = [d for w in pools for d in w]
    window_of = np.asarray([i for i, w in enumerate(pools) for _ in w])
    recent = len(windows) - 1
    if not pools or not pools[-1]:
        return []
    x = _unit_rows([d["embedding"] for d in pool])
    labels = cluster_labels(x, params)
    topics = []
    for label in sorted(set(labels.tolist()) - {-1}):
        idx = np.flatnonzero((labels == label) & (window_of == recent))
        if not len(idx):
            continue
        sizes = np.bincount(window_of[labels == label], minlength=len(windows))
        earlier_sizes = tuple(int(v) for v in sizes[:-1])
        base = float(np.mean(earlier_sizes)) if earlier_sizes else 0.0
        growth = (len(idx) + 1) / (base + 1)
        # Chance alone makes some small cluster lean to the recent window; the tail probability
        # (with at least half a document a window expected) keeps such a lean from being flagged.
        surprise = poisson_tail(len(idx), max(base, 0.5))
        centre = x[idx].mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        order = idx[np.argsort(-(x[idx] @ centre))]
        members = [pool[i] for i in order]
        others = [pool[i] for i in np.flatnonzero((labels != label) & (window_of == recent))]
        ids = tuple(str(m["feedback_id"]) for m in members)
        topics.append(Topic(
            topic_id=topic_id(scope, sorted(ids[: params.quotes])), size=len(idx), earlier_sizes=earlier_sizes,
            growth=round(growth, 2),
            emerging=len(idx) >= params.min_cluster_size and growth >= params.min_growth and surprise < params.max_p,
            keywords={lang: keywords(members, others, lang, params.keywords) for lang in STEMMER_LANGUAGES},
            quote_ids=ids[: params.quotes], member_ids=ids, centroid=tuple(round(float(v), 6) for v in centre)))
    return sorted(topics, key=lambda t: (not t.emerging, -t.growth, -t.size, t.topic_id))


def same_topic(centroid: Sequence[float], other: Sequence[float], min_cos: float = 0.95) -> bool:
    """Whether two topics' centres are close enough to be one topic seen on different days (so a
    dismissed or promoted topic keeps its decision when the job finds it again)."""
    a, b = _unit_rows([centroid, other])
    return bool(a @ b >= min_cos)
