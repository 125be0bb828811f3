"""Closure metrics per unit: how much feedback was answered by an action, and how fast.

``closure_stats_query`` is the Elasticsearch request; ``closure_stats`` reads its
answer. The closure worker turns the result into Prometheus gauges, the console
shows it to service leads. The median comes from Elasticsearch's percentiles
aggregation (TDigest): exact for small counts, approximate (well under 1 %) for large.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UnitClosure:
    unit: str
    feedback: int
    closed: int
    median_hours: float | None

    @property
    def rate(self) -> float:
        """Share of the unit's feedback closed by at least one action (0..1)."""
        return self.closed / self.feedback if self.feedback else 0.0


def closure_stats_query(window_days: int, max_units: int = 500) -> dict[str, Any]:
    """Search body (size 0) over feedback received in the last ``window_days``."""
    return {
        "size": 0,
        "query": {"range": {"received_at": {"gte": f"now-{int(window_days)}d"}}},
        "aggs": {"units": {
            "terms": {"field": "unit", "size": max_units},
            "aggs": {"closed": {
                "filter": {"term": {"closure_status": "closed"}},
                "aggs": {"hours": {"percentiles": {"field": "hours_to_closure", "percents": [50]}}},
            }},
        }},
    }


def closure_stats(response: dict[str, Any]) -> dict[str, UnitClosure]:
    """Per-unit counts and median hours to closure from the aggregation answer."""
    out: dict[str, UnitClosure] = {}
    for bucket in response.get("aggregations", {}).get("units", {}).get("buckets", []):
        closed = bucket["closed"]
        values = closed.get("hours", {}).get("values", {})
        median = next(iter(values.values()), None) if values else None
        out[bucket["key"]] = UnitClosure(bucket["key"], int(bucket["doc_count"]), int(closed["doc_count"]),
                                         float(median) if median is not None and closed["doc_count"] else None)
    return out
