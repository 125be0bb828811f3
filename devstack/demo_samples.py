"""The demo's sample set, moved in time so that it always lies just before the run.

The files in ``deploy/local/samples`` carry the times they were written with. Sent as
they are, they would age: an action for "the last two months" would match nothing a
year later. So every sample time is moved by the same whole number of weeks (weekday
and hour of day stay as written) until the newest sample lies just before the run, and
the demo's action covers the samples' period relative to that same moment.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipelines.clock import parse_ts, utc_iso

SAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "local" / "samples"
CHANNEL_FILES = {"app": "app.jsonl", "survey": "survey.jsonl", "kiosk": "kiosk.jsonl"}
# Where each channel carries the time the resident gave the feedback.
TIME_FIELD = {"app": "submitted_at", "survey": "submitted_at", "kiosk": "pressed_at"}
CSV_FILE = "survey_export.csv"
CSV_TIME_COLUMN = "submitted_at"
# The newest sample lands at least this long before the run (ingest may refuse future times).
MARGIN = timedelta(hours=1)

DEMO_ACTION_TEXT: dict[str, Any] = {
    "unit": "turku-ed",
    "themes": ["access_waiting"],
    "title": {"fi": "Päivystyksen odotusajat", "sv": "Väntetider på jouren", "en": "Waiting times at the ED"},
    "messages": {
        "fi": "Kerroitte pitkistä odotusajoista yhteispäivystyksessä. Lisäsimme iltavuoroon kaksi hoitajaa ja "
              "otimme käyttöön tekstiviesti-ilmoituksen, kun vuorosi lähestyy.",
        "sv": "Ni berättade om långa väntetider på samjouren. Vi har lagt till två skötare på kvällsskiftet och "
              "skickar nu ett sms när det snart är din tur.",
        "en": "You told us about long waits at the emergency department. We added two nurses to the evening "
              "shift and now send a text message when your turn is near.",
    },
}


def sample_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _written_times() -> list[datetime]:
    times = [parse_ts(body[TIME_FIELD[channel]]) for channel, name in CHANNEL_FILES.items()
             for body in sample_lines(name) if body.get(TIME_FIELD[channel])]
    with (SAMPLES / CSV_FILE).open(newline="", encoding="utf-8") as fh:
        times += [parse_ts(row[CSV_TIME_COLUMN]) for row in csv.DictReader(fh) if row.get(CSV_TIME_COLUMN)]
    return times


@dataclass(frozen=True)
class DemoSamples:
    """The sample set as the demo sends it at ``now``."""

    now: datetime
    offset: timedelta
    first: datetime  # earliest sample time after the move
    last: datetime  # newest sample time after the move

    def move(self, value: str | None) -> str | None:
        """A sample's timestamp moved by the offset, in its own UTC offset; None stays None."""
        if not value:
            return value
        return (parse_ts(value) + self.offset).isoformat()

    def bodies(self, channel: str) -> list[dict[str, Any]]:
        """The channel's sample request bodies with their times moved."""
        field = TIME_FIELD[channel]
        return [{**b, field: self.move(b.get(field))} if b.get(field) else b for b in sample_lines(CHANNEL_FILES[channel])]

    def invalid(self) -> list[dict[str, Any]]:
        """The deliberately invalid samples, times moved so that only their planted fault remains."""
        out = []
        for item in sample_lines("invalid.jsonl"):
            field = TIME_FIELD.get(item["channel"])
            body = dict(item["body"])
            if field and isinstance(body.get(field), str):
                try:
                    body[field] = self.move(body[field])
                except ValueError:
                    pass  # a planted bad date stays as written
            out.append({**item, "body": body})
        return out

    def csv_text(self) -> str:
        """The survey export with its submitted_at column moved."""
        with (SAMPLES / CSV_FILE).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [{**r, CSV_TIME_COLUMN: self.move(r.get(CSV_TIME_COLUMN))} for r in reader]
            columns = list(reader.fieldnames or [])
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def action(self, published_at: datetime | None = None) -> dict[str, Any]:
        """The demo's "you said, we did" action: the whole moved sample period up to publishing."""
        to = published_at or datetime.now(timezone.utc)
        start = (self.first - timedelta(days=1)).astimezone(timezone.utc)
        return {**DEMO_ACTION_TEXT, "period": {"from": utc_iso(start), "to": utc_iso(to)}}


def samples_at(now: datetime | None = None) -> DemoSamples:
    """The sample set moved by whole weeks so its newest time lies just before ``now``."""
    now = now or datetime.now(timezone.utc)
    times = _written_times()
    weeks = math.floor((now - MARGIN - max(times)) / timedelta(weeks=1))
    offset = timedelta(weeks=weeks)
    return DemoSamples(now, offset, min(times) + offset, max(times) + offset)
