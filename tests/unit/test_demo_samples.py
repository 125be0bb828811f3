"""The demo's sample set moves with the run: whole weeks, newest sample just before now."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devstack.demo_samples import CHANNEL_FILES, MARGIN, sample_lines, samples_at

DATES = [datetime(2026, 12, 4, 11, 0, tzinfo=timezone.utc), datetime(2027, 12, 4, 11, 0, tzinfo=timezone.utc),
         datetime(2030, 2, 28, 23, 30, tzinfo=timezone.utc), datetime(2026, 10, 15, 8, 0, tzinfo=timezone.utc)]


@pytest.mark.parametrize("now", DATES)
def test_newest_sample_lies_within_a_week_before_the_run(now):
    s = samples_at(now)
    assert now - MARGIN - timedelta(weeks=1) < s.last <= now - MARGIN
    assert s.offset % timedelta(weeks=1) == timedelta(0)


@pytest.mark.parametrize("now", DATES)
def test_every_moved_time_keeps_weekday_and_hour_and_lies_in_the_action_period(now):
    s = samples_at(now)
    action = s.action(published_at=now)
    start = datetime.fromisoformat(action["period"]["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(action["period"]["to"].replace("Z", "+00:00"))
    originals = {"app": "submitted_at", "survey": "submitted_at", "kiosk": "pressed_at"}
    for channel, field in originals.items():
        for before, after in zip(sample_lines(CHANNEL_FILES[channel]), s.bodies(channel)):
            a = datetime.fromisoformat(before[field].replace("Z", "+00:00"))
            b = datetime.fromisoformat(after[field])
            assert (b.weekday(), b.hour, b.minute, b.utcoffset()) == (a.weekday(), a.hour, a.minute, a.utcoffset())
            assert start <= b <= end


def test_csv_export_moves_its_dates_and_keeps_everything_else():
    import csv
    import io

    from devstack.demo_samples import CSV_FILE, SAMPLES

    s = samples_at(datetime(2029, 6, 1, tzinfo=timezone.utc))
    with (SAMPLES / CSV_FILE).open(newline="", encoding="utf-8") as fh:
        before = list(csv.DictReader(fh))
    after = list(csv.DictReader(io.StringIO(s.csv_text())))
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert {k: v for k, v in a.items() if k != "submitted_at"} == {k: v for k, v in b.items() if k != "submitted_at"}
        assert datetime.fromisoformat(b["submitted_at"]) - datetime.fromisoformat(a["submitted_at"]) == s.offset


def test_a_planted_bad_date_stays_bad():
    s = samples_at(datetime(2028, 1, 1, tzinfo=timezone.utc))
    written = {i["why"]: i["body"].get("submitted_at") for i in sample_lines("invalid.jsonl")}
    moved = {i["why"]: i["body"].get("submitted_at") for i in s.invalid()}
    unparseable = [why for why, value in written.items() if value and "T" not in value]
    assert unparseable and all(moved[why] == written[why] for why in unparseable)
    assert all(moved[w] != v for w, v in written.items() if v and w not in unparseable)
