"""Spike detection for daily feedback counts per unit and theme (pure).

A day's count is a spike when it is well above the same unit and theme's recent
baseline (the previous ``baseline_days`` days, empty days counting as zero): at least
``min_count`` items, at least ``ratio`` times the baseline mean, and at least ``z``
standard deviations above it. The standard deviation has a floor so that a perfectly
flat baseline (0, 0, 0, ...) does not make every second item a spike. An alert fires
once per day window: when the count first reaches the threshold.
"""
from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipelines.clock import parse_ts, utc_iso

ALERT_NAMESPACE = uuid.UUID("7d7c2f8e-3b0a-4a55-9a51-0c2f3e6f4b11")
DAY_S = 86_400


@dataclass(frozen=True)
class SpikeRule:
    """When a day's count counts as a spike."""

    baseline_days: int = 7
    min_count: int = 5
    ratio: float = 3.0
    z: float = 3.0
    std_floor: float = 1.0


@dataclass(frozen=True)
class Baseline:
    mean: float
    std: float
    threshold: int


def baseline(history: Sequence[int], rule: SpikeRule = SpikeRule()) -> Baseline:
    """Mean, standard deviation and the spike threshold of the previous days' counts."""
    days = list(history)[: rule.baseline_days]
    days += [0] * (rule.baseline_days - len(days))
    mean = statistics.fmean(days) if days else 0.0
    std = statistics.pstdev(days) if len(days) > 1 else 0.0
    threshold = max(rule.min_count, math.ceil(rule.ratio * mean - 1e-9),
                    math.ceil(mean + rule.z * max(std, rule.std_floor) - 1e-9))
    return Baseline(round(mean, 3), round(std, 3), int(threshold))


def is_spike(count: int, history: Sequence[int], rule: SpikeRule = SpikeRule()) -> bool:
    return count >= baseline(history, rule).threshold


def crossed(previous: int, count: int, history: Sequence[int], rule: SpikeRule = SpikeRule()) -> Baseline | None:
    """The baseline if ``count`` just reached the threshold (``previous`` was below it), else None."""
    b = baseline(history, rule)
    return b if previous < b.threshold <= count else None


def day_window(ts: float) -> tuple[float, float]:
    """The UTC day [start, end) a timestamp (epoch seconds) falls in; faust's tumbling windows align so."""
    start = math.floor(ts / DAY_S) * DAY_S
    return float(start), float(start + DAY_S)


def alert_id(unit: str, theme: str, window_start: float) -> str:
    """Same unit, theme and day -> same id: consumers drop repeats (at-least-once delivery)."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{unit}|{theme}|{int(window_start)}"))


def _iso(ts: float) -> str:
    return utc_iso(datetime.fromtimestamp(ts, tz=timezone.utc))


def alert_event(*, unit: str, service_area: str | None, theme: str, window_start: float, count: int,
                base: Baseline, rule: SpikeRule, detected_at: str) -> dict[str, Any]:
    """A feedback.trend_alerts event."""
    return {
        "schema_version": 1,
        "alert_id": alert_id(unit, theme, window_start),
        "unit": unit,
        "service_area": service_area,
        "theme": theme,
        "window_start": _iso(window_start),
        "window_end": _iso(window_start + DAY_S),
        "count": count,
        "threshold": base.threshold,
        "baseline_mean": base.mean,
        "baseline_std": base.std,
        "baseline_days": rule.baseline_days,
        "detected_at": detected_at,
    }


def event_timestamp(received_at: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp (naive ones are UTC)."""
    dt = parse_ts(received_at)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def trend_key(unit: str, theme: str) -> str:
    return f"{unit}|{theme}"
