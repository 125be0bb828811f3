"""Pure helpers of ``feedback bench search``: query sampling and latency summaries."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class LatencySummary:
    kind: str
    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    es_took_p50_ms: float | None

    def row(self) -> str:
        took = f"{self.es_took_p50_ms:8.1f}" if self.es_took_p50_ms is not None else "       -"
        return f"{self.kind:<16}{self.n:>6}{self.p50_ms:>10.1f}{self.p95_ms:>10.1f}{self.mean_ms:>10.1f}{took:>12}"


HEADER = f"{'query':<16}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'ES took p50':>12}"


def summarize(kind: str, seconds: Sequence[float], took_ms: Sequence[float] = ()) -> LatencySummary:
    ms = [s * 1000 for s in seconds]
    return LatencySummary(kind, len(ms), round(percentile(ms, 50), 2), round(percentile(ms, 95), 2),
                          round(sum(ms) / len(ms), 2), round(percentile(took_ms, 50), 2) if took_ms else None)


def keyword_queries(texts: Sequence[tuple[str, str]], n: int, rng: np.random.Generator
                    ) -> list[tuple[str, str | None]]:
    """``n`` (query, language or None) pairs of one to three words from the corpus sentences.

    Half name the language (one analyzer), half do not (every language's clause).
    """
    out: list[tuple[str, str | None]] = []
    while len(out) < n:
        lang, text = texts[int(rng.integers(len(texts)))]
        words = _WORD.findall(text.lower())
        if not words:
            continue
        k = int(rng.integers(1, min(3, len(words)) + 1))
        picks = rng.choice(len(words), k, replace=False)
        out.append((" ".join(words[int(i)] for i in sorted(picks)), lang if len(out) % 2 == 0 else None))
    return out
