"""Pure helpers of `feedback bench search`."""
from __future__ import annotations

import numpy as np

from pipelines.search_bench import keyword_queries, percentile, summarize


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([3.0], 95) == 3.0


def test_summary_in_milliseconds() -> None:
    s = summarize("knn", [0.010, 0.020, 0.030, 0.040], took_ms=[5, 6, 7, 8])
    assert (s.n, s.p50_ms, s.p95_ms, s.mean_ms, s.es_took_p50_ms) == (4, 20.0, 40.0, 25.0, 6.0)
    assert "knn" in s.row() and summarize("x", [0.001]).es_took_p50_ms is None


def test_keyword_queries_come_from_the_corpus() -> None:
    texts = [("fi", "Jono oli todella pitkä päivystyksessä"), ("sv", "Personalen var vänlig")]
    qs = keyword_queries(texts, 20, np.random.default_rng(1))
    vocab = {w.lower() for _, t in texts for w in t.split()}
    assert len(qs) == 20
    assert all(set(q.split()) <= vocab and 1 <= len(q.split()) <= 3 for q, _ in qs)
    assert {lang for _, lang in qs} == {"fi", "sv", None}
