"""Spike detection (pipelines.trends) and the trends worker's pure parts."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipelines.trends import (DAY_S, SpikeRule, alert_event, alert_id, baseline, crossed, day_window,
                              event_timestamp, is_spike)
from schemas.validate import event_errors


def test_flat_zero_baseline_needs_min_count() -> None:
    b = baseline([0] * 7)
    assert b.mean == 0 and b.threshold == 5  # min_count; the std floor keeps z from saying 3
    assert not is_spike(4, [0] * 7) and is_spike(5, [0] * 7)


def test_threshold_follows_mean_ratio_and_spread() -> None:
    assert baseline([2] * 7).threshold == 6  # ratio 3 x mean 2
    noisy = [0, 10, 0, 10, 0, 10, 0]  # mean ~4.3, std ~4.9: z dominates
    b = baseline(noisy)
    assert b.threshold == 20 and b.std == pytest.approx(4.949, abs=1e-3)
    assert not is_spike(15, noisy)


def test_short_history_is_padded_with_empty_days() -> None:
    assert baseline([7]).mean == 1.0
    assert baseline([1] * 20, SpikeRule(baseline_days=3)).mean == 1.0


def test_crossed_fires_once_per_window() -> None:
    history = [1] * 7  # threshold max(5, 3, 4) = 5
    fired = [n for n in range(1, 12) if crossed(n - 1, n, history)]
    assert fired == [5]
    assert crossed(4, 5, history).threshold == 5


def test_rule_is_configurable() -> None:
    rule = SpikeRule(min_count=2, ratio=1.5, z=1.0)
    assert baseline([2] * 7, rule).threshold == 3


def test_day_window_and_alert_ids() -> None:
    ts = event_timestamp("2026-11-10T23:59:59+02:00")  # 21:59:59 UTC
    start, end = day_window(ts)
    assert datetime.fromtimestamp(start, tz=timezone.utc) == datetime(2026, 11, 10, tzinfo=timezone.utc)
    assert end - start == DAY_S
    assert alert_id("turku-ed", "access_waiting", start) == alert_id("turku-ed", "access_waiting", start)
    assert alert_id("turku-ed", "access_waiting", start) != alert_id("turku-ed", "access_waiting", start + DAY_S)
    assert event_timestamp("2026-11-10T00:00:00") == event_timestamp("2026-11-10T00:00:00Z")


def test_alert_event_is_schema_valid() -> None:
    rule = SpikeRule()
    start = day_window(event_timestamp("2026-11-10T12:00:00Z"))[0]
    event = alert_event(unit="turku-ed", service_area="emergency", theme="access_waiting", window_start=start,
                        count=5, base=baseline([1] * 7, rule), rule=rule, detected_at="2026-11-10T12:00:01Z")
    assert event_errors("feedback.trend_alerts", event) == []
    assert event["window_start"] == "2026-11-10T00:00:00Z" and event["window_end"] == "2026-11-11T00:00:00Z"


def test_observations_skip_duplicates_and_unknown_themes() -> None:
    from services.workers.trends import observations

    ev = {"unit": "turku-ed", "received_at": "2026-11-10T12:00:00Z",
          "themes": [{"code": "access_waiting", "score": 0.9}, {"code": "nope", "score": 0.5}]}
    assert observations(ev) == [{"unit": "turku-ed", "theme": "access_waiting", "received_at": "2026-11-10T12:00:00Z"}]
    assert observations({**ev, "duplicate_of": "x"}) == []
