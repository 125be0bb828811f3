"""pipelines/clock.py: every timestamp the events carry is ISO 8601 in UTC with a Z."""
from datetime import datetime, timedelta, timezone

import time_machine

from pipelines.clock import parse_ts, utc_iso, utc_now


def test_utc_now_is_utc_with_z_and_matches_utc_iso():
    with time_machine.travel(datetime(2031, 3, 30, 0, 59, 59, 250_000, tzinfo=timezone.utc), tick=False):
        now = utc_now()
        assert now == "2031-03-30T00:59:59.250000Z"
        assert now == utc_iso(datetime.now(timezone.utc))
    with time_machine.travel(datetime(2031, 3, 30, 1, 0, tzinfo=timezone.utc), tick=False):
        assert utc_now() == "2031-03-30T01:00:00Z"  # no fraction when there is none, as isoformat writes it


def test_utc_iso_converts_offsets_and_takes_naive_as_utc():
    helsinki = timezone(timedelta(hours=3))
    assert utc_iso(datetime(2030, 7, 1, 12, 0, tzinfo=helsinki)) == "2030-07-01T09:00:00Z"
    assert utc_iso(datetime(2030, 7, 1, 12, 0)) == "2030-07-01T12:00:00Z"
    assert parse_ts(utc_iso(datetime(2030, 7, 1, 12, 0, tzinfo=helsinki))) == datetime(2030, 7, 1, 9, 0,
                                                                                       tzinfo=timezone.utc)
