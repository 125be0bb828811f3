"""Throughput of the enricher's steps against the bare embedding model.

The enricher does redact -> language -> embed -> classify per message; embedding
dominates, so the non-embedding steps must stay cheap (target: enrich rate at least
0.85 of the bare encode rate on the same texts).
"""
from __future__ import annotations

import importlib
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable

from pipelines.classify import FeedbackClassifier
from pipelines.embedding import Embedder
from pipelines.language import detect_language


def _redactor() -> tuple[Callable[[str], str], str]:
    """``pipelines.redaction.redact`` when the module exists (it returns a str or an object with ``.text``)."""
    try:
        mod = importlib.import_module("pipelines.redaction")
        fn = getattr(mod, "redact")
    except (ImportError, AttributeError):
        return (lambda s: s), "none (pipelines.redaction not available)"

    def run(text: str) -> str:
        out = fn(text)
        if isinstance(out, str):
            return out
        for attr in ("text", "redacted", "redacted_text"):
            if hasattr(out, attr):
                return str(getattr(out, attr))
        if isinstance(out, tuple) and out and isinstance(out[0], str):
            return out[0]
        return text

    return run, "pipelines.redaction.redact"


def _max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


@dataclass
class BenchResult:
    n: int
    batch_size: int
    bare_items_per_s: float
    enrich_items_per_s: float
    ratio: float
    step_seconds: dict[str, float]
    peak_rss_mb: float
    tracemalloc_peak_mb: float
    redaction: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _enrich_batch(embedder: Embedder, classifier: FeedbackClassifier, redact: Callable[[str], str],
                  chunk: list[str], hints: list[str | None]) -> dict[str, float]:
    """One enricher batch; seconds per step."""
    a = time.perf_counter()
    red = [redact(t) for t in chunk]
    b = time.perf_counter()
    langs = [detect_language(t, h).language for t, h in zip(red, hints)]
    c = time.perf_counter()
    emb = embedder.encode(red, kind=classifier.embed_kind)  # type: ignore[arg-type]
    d = time.perf_counter()
    classifier.classify(emb, red, langs)
    e = time.perf_counter()
    return {"redact": b - a, "language": c - b, "embed": d - c, "classify": e - d}


def bench_enrich(embedder: Embedder, classifier: FeedbackClassifier, texts: list[str], batch_size: int = 32,
                 hints: list[str | None] | None = None) -> BenchResult:
    """Bare ``encode`` rate vs the enricher pipeline rate on the same texts."""
    redact, redaction_name = _redactor()
    hints = hints or [None] * len(texts)
    embedder.warm_up()
    embedder.encode(texts[:4], kind=classifier.embed_kind)  # type: ignore[arg-type]
    detect_language(texts[0])  # loads the language models outside the timing

    # Bare and enricher passes alternate batch by batch so that load from other
    # processes on the machine hits both alike.
    bare = 0.0
    steps = {"redact": 0.0, "language": 0.0, "embed": 0.0, "classify": 0.0}
    for s in range(0, len(texts), batch_size):
        chunk = texts[s:s + batch_size]
        t0 = time.perf_counter()
        embedder.encode(chunk, kind=classifier.embed_kind)  # type: ignore[arg-type]
        bare += time.perf_counter() - t0
        for name, seconds in _enrich_batch(embedder, classifier, redact, chunk, hints[s:s + batch_size]).items():
            steps[name] += seconds
    enrich = sum(steps.values())
    # Memory on a separate short pass: tracemalloc slows allocation-heavy code and would skew the rates.
    tracemalloc.start()
    _enrich_batch(embedder, classifier, redact, texts[:batch_size], hints[:batch_size])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bare_rate = len(texts) / bare
    enrich_rate = len(texts) / enrich
    return BenchResult(n=len(texts), batch_size=batch_size, bare_items_per_s=round(bare_rate, 2),
                       enrich_items_per_s=round(enrich_rate, 2), ratio=round(enrich_rate / bare_rate, 3),
                       step_seconds={k: round(v, 3) for k, v in steps.items()},
                       peak_rss_mb=round(_max_rss_mb(), 1), tracemalloc_peak_mb=round(peak / 1e6, 2),
                       redaction=redaction_name)


def bench_texts(n: int) -> list[str]:
    """A realistic mix: Finnish/Swedish seed examples and English comments, repeated to ``n``."""
    from pipelines.training import SEED_PATH, load_jsonl, load_pxtextmining

    pool = [e.text for e in load_jsonl(SEED_PATH, "seed")]
    pool += [e.text for e in load_pxtextmining() if e.split == "test"][: max(0, n - len(pool))]
    if not pool:
        raise RuntimeError("no texts to benchmark")
    return [pool[i % len(pool)] for i in range(n)]
