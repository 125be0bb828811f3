"""The statistics and reports of `feedback bench e2e` and `feedback bench ingest` (pure parts)."""
from __future__ import annotations

import pytest

from devstack.bench_stats import (backlog_flat, e2e_report, e2e_targets, highest_sustainable, histogram_delta,
                                  ingest_report, paired_ratios, parse_metrics, percentile, slope, summary,
                                  wrk_aggregate)

EXPOSITION_BEFORE = """# HELP feedback_queue_wait_seconds x
# TYPE feedback_queue_wait_seconds histogram
feedback_queue_wait_seconds_bucket{le="0.1",stage="enricher"} 10.0
feedback_queue_wait_seconds_bucket{le="1.0",stage="enricher"} 10.0
feedback_queue_wait_seconds_bucket{le="+Inf",stage="enricher"} 10.0
feedback_queue_wait_seconds_count{stage="enricher"} 10.0
feedback_queue_wait_seconds_sum{stage="enricher"} 0.5
feedback_queue_wait_seconds_count{stage="indexer"} 3.0
"""
EXPOSITION_AFTER = """feedback_queue_wait_seconds_bucket{le="0.1",stage="enricher"} 60.0
feedback_queue_wait_seconds_bucket{le="1.0",stage="enricher"} 110.0
feedback_queue_wait_seconds_bucket{le="+Inf",stage="enricher"} 110.0
feedback_queue_wait_seconds_count{stage="enricher"} 110.0
feedback_queue_wait_seconds_sum{stage="enricher"} 30.5
feedback_queue_wait_seconds_count{stage="indexer"} 9.0
feedback_events_processed_total{outcome="ok",stage="enricher"} 42.0
"""


def test_percentiles_use_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([], 50) is None
    s = summary([0.2, 0.1, 0.4])
    assert s == {"n": 3, "p50": 0.2, "p95": 0.4, "p99": 0.4, "max": 0.4}


def test_slope_of_a_growing_backlog():
    assert slope([(0, 0), (1, 2), (2, 4)]) == pytest.approx(2.0)
    assert slope([(0, 5)]) == 0.0


def test_a_backlog_is_flat_while_small_or_not_growing():
    assert backlog_flat([(t, 3.0) for t in range(10)], rate=10)  # one batch in flight
    assert backlog_flat([(t, 50.0 + (t % 2)) for t in range(10)], rate=10)  # large but steady
    assert not backlog_flat([(t, 10.0 * t) for t in range(10)], rate=20)  # growing half the rate per second
    assert backlog_flat([], rate=40)


def test_the_highest_sustainable_rate_needs_a_flat_backlog_and_every_item_found():
    phases = [{"rate": 5, "flat": True, "all_searchable": True}, {"rate": 10, "flat": True, "all_searchable": True},
              {"rate": 20, "flat": False, "all_searchable": True}, {"rate": 40, "flat": True, "all_searchable": False}]
    assert highest_sustainable(phases) == 10
    assert highest_sustainable([{"rate": 5, "flat": False, "all_searchable": True}]) is None
    burst = {"rate": None, "flat": True, "all_searchable": True}
    assert highest_sustainable(phases + [burst]) == 10
    assert highest_sustainable([burst]) is None


def test_histogram_delta_between_scrapes_with_mean_and_interpolated_quantile():
    before, after = parse_metrics(EXPOSITION_BEFORE), parse_metrics(EXPOSITION_AFTER)
    h = histogram_delta(before, after, "feedback_queue_wait_seconds", stage="enricher")
    assert h.count == 100 and h.mean == pytest.approx(0.3)
    assert h.quantile(0.5) == pytest.approx(0.1)  # 50 of 100 fell in the first bucket
    assert h.quantile(0.95) == pytest.approx(0.1 + 0.9 * 45 / 50)
    assert histogram_delta(before, after, "feedback_queue_wait_seconds", stage="indexer").count == 6
    assert after[("feedback_events_processed_total", (("outcome", "ok"), ("stage", "enricher")))] == 42.0


def test_a_quantile_in_the_inf_bucket_is_the_largest_finite_bound():
    after = parse_metrics('x_bucket{le="1.0"} 1\nx_bucket{le="+Inf"} 4\nx_count 4\nx_sum 40\n')
    assert histogram_delta({}, after, "x").quantile(0.99) == 1.0
    assert histogram_delta({}, {}, "x").quantile(0.5) is None


def phase(name, rate, p95, missing=0, flat=True):
    return {"name": name, "rate": rate, "sent": 10, "accepted": 10, "achieved_rate": rate or 50.0,
            "time_to_searchable": {"n": 10, "p50": p95 / 2, "p95": p95, "p99": p95, "max": p95},
            "missing": missing, "max_lag": 3.0, "flat": flat, "all_searchable": not missing,
            "stages": {"queue before enricher": {"mean": 0.05, "p95": 0.1, "count": 10}}}


def test_targets_are_checked_at_10_per_second_and_near_half_the_highest_rate():
    phases = [phase("5/s", 5, 1.0), phase("10/s", 10, 2.5), phase("20/s", 20, 2.9), phase("40/s", 40, 9.0)]
    targets = e2e_targets(phases, 40)
    assert targets[0]["met"] is False and targets[0]["figure"] == "2.50s"
    assert "measured at 20" in targets[1]["what"] and targets[1]["met"] is True
    assert e2e_targets([phase("10/s", 10, 1.5, missing=1)], None)[0]["met"] is False


def test_e2e_report_shows_every_phase_stage_cost_and_the_enricher_ratio():
    result = {"poll_s": 0.1, "rates": [5, 10], "phases": [phase("5/s", 5, 1.0), phase("burst 50", None, 4.0)],
              "highest_sustainable": 5,
              "cost": {"enricher": {"cpu_ms_per_item": 51.0, "cpu_s": 8.7, "peak_rss_mb": 267}},
              "saturation": {"items": 64, "enricher_items_per_s": 7.6, "bare_encode_items_per_s": 8.0,
                             "batch_size": 32, "ratio": 0.95, "indexer": "stopped",
                             "beside_indexer_items_per_s": 6.1},
              "targets": [{"what": "t", "figure": "1.00s", "met": True}]}
    text = e2e_report(result)
    for expected in ("5/s", "burst 50", "queue before enricher", "51.0 ms", "267 MB", "ratio 0.95",
                     "highest sustainable rate: 5 items/s", "t: 1.00s -> met",
                     "(indexer stopped)", "beside it on the same cores: 6.1 items/s"):
        assert expected in text


def _wrk_round(requests: int, p99_ms: float, seconds: float = 8.0) -> dict:
    return {"requests": requests, "duration_us": int(seconds * 1e6), "p50_us": 10_000, "p99_us": int(p99_ms * 1000),
            "non_2xx": 0, "errors": 0}


def test_paired_ratios_take_the_median_of_back_to_back_pairs():
    # The machine slowed down in the middle (a disturbed pair): both endpoints lost rate there,
    # so the pair's ratio stays put while a pooled ratio would move with the order of rounds.
    ingest = [_wrk_round(24_000, 20), _wrk_round(12_000, 40), _wrk_round(23_200, 21)]
    bare = [_wrk_round(25_600, 40), _wrk_round(14_400, 80), _wrk_round(25_600, 40)]
    r = paired_ratios(ingest, bare)
    assert r["round_throughput_ratios"] == [0.938, 0.833, 0.906]
    assert r["throughput_ratio"] == 0.906
    assert r["throughput_ratio_range"] == [0.833, 0.938]
    assert r["p99_ratio"] == 0.5 and r["p99_ratio_range"] == [0.5, 0.525]
    pooled = wrk_aggregate(ingest)
    assert pooled["requests_per_s"] == round(59_200 / 24, 1) and pooled["p99_ms"] == 27.0


def test_paired_ratios_refuse_unpaired_rounds():
    with pytest.raises(ValueError, match="same number of rounds"):
        paired_ratios([_wrk_round(1, 1)], [])


def test_ingest_report_shows_both_endpoints_and_the_ratios():
    endpoint = {"requests_per_s": 900.0, "p50_ms": 30.0, "p99_ms": 120.0, "non_2xx": 0, "errors": 0}
    text = ingest_report({"generator": "wrk 4.1.0", "connections": 32, "threads": 2, "duration_s": 10, "rounds": 2,
                          "endpoints": {"ingest": endpoint, "bare": {**endpoint, "requests_per_s": 1000.0}},
                          "throughput_ratio": 0.9, "throughput_ratio_range": [0.88, 0.92],
                          "throughput_ratio_pooled": 0.9, "p99_ratio": 1.0, "p99_ratio_range": [0.9, 1.1]})
    assert "ingest" in text and "bare" in text
    assert "throughput ratio ingest/bare 0.90 (target >= 0.9): median of 2 back-to-back round pairs, " \
           "range 0.88-0.92; over all rounds pooled 0.90" in text
    assert "p99 ratio 1.00 (target <= 1.2), range 0.90-1.10" in text

