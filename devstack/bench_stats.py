"""The statistics and the report of `feedback bench e2e` and `feedback bench ingest` (pure:
no stack, no clock), so that what the benches print can be unit-tested."""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max of ``values``, rounded to milliseconds."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)
    return {"n": len(values), "p50": r(percentile(values, 50)), "p95": r(percentile(values, 95)),
            "p99": r(percentile(values, 99)), "max": r(max(values) if values else None)}


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 for fewer than two distinct times."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


def backlog_flat(lag: Sequence[tuple[float, float]], rate: float, *, growth_share: float = 0.05,
                 allowed_s: float = 2.0) -> bool:
    """Whether the consumer lag stayed flat while items were sent at ``rate`` per second.

    Flat: the lag did not grow by more than ``growth_share`` of the rate per second (a
    backlog that grows that slowly would take minutes to matter), or it never held more
    than ``allowed_s`` seconds of input (at least 5 items: one batch in flight is not a
    backlog).
    """
    if not lag:
        return True
    if max(y for _, y in lag) <= max(5.0, rate * allowed_s):
        return True
    return slope(lag) <= growth_share * rate


def highest_sustainable(phases: Iterable[Mapping[str, Any]]) -> float | None:
    """The highest steady rate whose backlog stayed flat and whose items all became searchable
    (a burst has no rate and does not count)."""
    ok = [p["rate"] for p in phases if p.get("rate") is not None and p.get("flat") and p.get("all_searchable")]
    return max(ok) if ok else None


# --- Prometheus text format --------------------------------------------------------------

Sample = tuple[str, tuple[tuple[str, str], ...]]  # metric name, sorted labels


def parse_metrics(text: str) -> dict[Sample, float]:
    """Samples of a Prometheus text exposition (comments skipped)."""
    out: dict[Sample, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, ()
        if "{" in head:
            name, _, rest = head.partition("{")
            pairs = []
            for part in _split_labels(rest.rstrip("}")):
                k, _, v = part.partition("=")
                pairs.append((k.strip(), v.strip().strip('"')))
            labels = tuple(sorted(pairs))
        try:
            out[(name.strip(), labels)] = float(value)
        except ValueError:
            continue
    return out


def _split_labels(text: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


@dataclass(frozen=True)
class HistogramDelta:
    """What a histogram observed between two scrapes."""

    count: float
    total: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` (0..1) quantile, interpolated within its bucket as Prometheus'
        histogram_quantile does; the largest finite bound when it falls in +Inf."""
        if not self.count:
            return None
        target = q * self.count
        prev_bound, prev_count = 0.0, 0.0
        for bound, cum in self.buckets:
            if cum >= target:
                if math.isinf(bound):
                    return prev_bound
                if cum == prev_count:
                    return bound
                return prev_bound + (bound - prev_bound) * (target - prev_count) / (cum - prev_count)
            prev_bound, prev_count = bound, cum
        return prev_bound


def histogram_delta(before: Mapping[Sample, float], after: Mapping[Sample, float], name: str,
                    **labels: str) -> HistogramDelta:
    """The observations of histogram ``name`` (with exactly ``labels``, ``le`` aside) between scrapes."""
    want = tuple(sorted(labels.items()))

    def value(sample_name: str, extra: tuple[tuple[str, str], ...] = ()) -> float:
        key = (sample_name, tuple(sorted(want + extra)))
        return after.get(key, 0.0) - before.get(key, 0.0)

    bounds = sorted({dict(lbl)["le"] for (n, lbl) in after if n == f"{name}_bucket"
                     and tuple(x for x in lbl if x[0] != "le") == want}, key=lambda b: float(b))
    buckets = tuple((float(b), value(f"{name}_bucket", (("le", b),))) for b in bounds)
    return HistogramDelta(value(f"{name}_count"), value(f"{name}_sum"), buckets)


# --- the report --------------------------------------------------------------------------

def fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    return f"{x:.2f}{unit}" if unit == "s" else f"{x:.1f}{unit}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table, columns left-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def e2e_report(result: Mapping[str, Any]) -> str:
    """The readable report of `feedback bench e2e` from its JSON result."""
    out = [f"time to searchable (ingest's 202 -> found by a search; polled every {result['poll_s']} s)"]
    rows = []
    for p in result["phases"]:
        t = p["time_to_searchable"]
        rows.append([p["name"], f"{p['sent']}/{p['accepted']}", f"{p['achieved_rate']:.1f}", fmt(t["p50"]),
                     fmt(t["p95"]), fmt(t["max"]), p["missing"], f"{p['max_lag']:.0f}",
                     "yes" if p["flat"] else "NO"])
    out.append(table(rows, ["phase", "sent/202", "items/s", "p50", "p95", "max", "missing", "max lag", "flat"]))
    best = result.get("highest_sustainable")
    out.append(f"highest sustainable rate: {best if best is not None else 'none'} items/s "
               f"(of {', '.join(str(r) for r in result['rates'])})")
    out.append("\nwhere the time goes (mean / p95 from the services' histograms, per phase)")
    stage_rows = []
    for p in result["phases"]:
        for stage, s in p["stages"].items():
            stage_rows.append([p["name"], stage, fmt(s.get("mean")), fmt(s.get("p95")), int(s.get("count", 0))])
    out.append(table(stage_rows, ["phase", "stage", "mean", "p95", "observations"]))
    if result.get("cost"):
        out.append("\ncost per item (CPU-seconds of each service over all phases / items; peak RSS)")
        out.append(table([[name, f"{c['cpu_ms_per_item']:.1f} ms", f"{c['cpu_s']:.1f} s",
                           f"{c['peak_rss_mb']:.0f} MB"] for name, c in result["cost"].items()],
                         ["service", "CPU per item", "CPU total", "peak RSS"]))
    sat = result.get("saturation")
    if sat:
        indexer = sat.get("indexer", "running")
        out.append(f"\nenricher saturated (indexer {indexer}): {sat['enricher_items_per_s']:.1f} items/s over "
                   f"{sat['items']} items; bare encode in the same run: {sat['bare_encode_items_per_s']:.1f} items/s "
                   f"(batch {sat['batch_size']}); ratio {sat['ratio']:.2f} (target >= 0.9)")
        if indexer == "stopped":
            out.append(f"with the indexer and Elasticsearch indexing beside it on the same cores: "
                       f"{sat['beside_indexer_items_per_s']:.1f} items/s")
    targets = result.get("targets")
    if targets:
        out.append("\ntargets")
        out.extend(f"  {t['what']}: {t['figure']} -> {'met' if t['met'] else 'NOT met'}" for t in targets)
    return "\n".join(out)


def e2e_targets(phases: Sequence[Mapping[str, Any]], highest: float | None) -> list[dict[str, Any]]:
    """The issue's latency targets checked against the phases the bench ran."""
    steady = {p["rate"]: p for p in phases if p.get("rate") is not None}
    out: list[dict[str, Any]] = []
    if 10 in steady:
        p95 = steady[10]["time_to_searchable"]["p95"]
        out.append({"what": "p95 time to searchable at 10 items/s <= 2 s", "figure": fmt(p95),
                    "met": p95 is not None and p95 <= 2.0 and not steady[10]["missing"]})
    if highest:
        half = highest / 2
        near = min(steady, key=lambda r: (abs(r - half), r))
        p95 = steady[near]["time_to_searchable"]["p95"]
        out.append({"what": f"p95 at half the highest sustainable rate ({half:g}; measured at {near:g}) <= 3 s",
                    "figure": fmt(p95), "met": p95 is not None and p95 <= 3.0 and not steady[near]["missing"]})
    return out


def wrk_aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One endpoint's wrk rounds pooled: throughput over all rounds (requests / seconds), p50 and
    p99 the mean of the rounds'."""
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    return {"requests_per_s": round(sum(r["requests"] for r in runs) / seconds, 1),
            "p50_ms": round(sum(r["p50_us"] for r in runs) / len(runs) / 1000, 2),
            "p99_ms": round(sum(r["p99_us"] for r in runs) / len(runs) / 1000, 2),
            "non_2xx": sum(r["non_2xx"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "rounds": list(runs)}


def paired_ratios(ingest: Sequence[Mapping[str, Any]], bare: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Ingest against bare round by round. Round i of each endpoint ran back to back, so a pair
    shares the machine's state of the moment (another process, CPU frequency, Kafka's log
    flushes); the median over pairs is the figure, robust to one disturbed pair, and the
    range shows how far the pairs spread."""
    if len(ingest) != len(bare) or not ingest:
        raise ValueError(f"need the same number of rounds per endpoint, got {len(ingest)} and {len(bare)}")

    def rate(r: Mapping[str, Any]) -> float:
        return r["requests"] / (r["duration_us"] / 1e6)

    throughput = [rate(i) / rate(b) for i, b in zip(ingest, bare)]
    p99 = [i["p99_us"] / b["p99_us"] for i, b in zip(ingest, bare)]
    return {"throughput_ratio": round(statistics.median(throughput), 3),
            "throughput_ratio_range": [round(min(throughput), 3), round(max(throughput), 3)],
            "p99_ratio": round(statistics.median(p99), 3),
            "p99_ratio_range": [round(min(p99), 3), round(max(p99), 3)],
            "round_throughput_ratios": [round(x, 3) for x in throughput]}


def ingest_report(result: Mapping[str, Any]) -> str:
    """The readable report of `feedback bench ingest`."""
    rows = [[name, f"{r['requests_per_s']:.0f}", fmt(r["p50_ms"], " ms"), fmt(r["p99_ms"], " ms"), r["non_2xx"],
             r["errors"]] for name, r in result["endpoints"].items()]
    lo, hi = result["throughput_ratio_range"]
    p99_lo, p99_hi = result["p99_ratio_range"]
    out = [f"load: {result['generator']}, {result['connections']} connections, {result['threads']} threads, "
           f"{result['duration_s']} s per endpoint, {result['rounds']} rounds alternating",
           table(rows, ["endpoint", "requests/s", "p50", "p99", "non-2xx", "socket errors"]),
           f"throughput ratio ingest/bare {result['throughput_ratio']:.2f} (target >= 0.9): median of "
           f"{result['rounds']} back-to-back round pairs, range {lo:.2f}-{hi:.2f}; over all rounds pooled "
           f"{result['throughput_ratio_pooled']:.2f}",
           f"p99 ratio {result['p99_ratio']:.2f} (target <= 1.2), range {p99_lo:.2f}-{p99_hi:.2f}"]
    return "\n".join(out)
