"""Thanks that reach the team, end to end on the real Elasticsearch and SMTP sink.

Feedback of one week and the week before goes into the index through the indexer's own
document builder and bulk lines (redacted text, as the enricher leaves it): thanks, a
complaint and an urgent item for turku-ed (opted in, digest in Finnish and Swedish), thanks
for salo-ed (not opted in). `feedback insights thanks-digest --week` runs as the CronJob runs
it, first with the SMTP relay unreachable (the job fails and records nothing), then for real;
the SMTP sink then holds exactly one digest, to turku-ed's team address, with the counts
against the previous week and the quotes in the unit's languages; salo-ed's team got
nothing; a rerun sends nothing new.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.smtp import read_mailbox
from pipelines.synthetic import enriched_event
from pipelines.thanks import week_bounds
from pipelines.units import units

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
WEEK, PREVIOUS = "2026-W40", "2026-W39"
# (unit, language, text, themes, sentiment, urgent) in WEEK; every one but the last two is thanks.
THIS_WEEK = [
    ("turku-ed", "fi", "Kiitos ihanalle henkilökunnalle, hoito oli erinomaista.", ["staff_attitude"], "positive", False),
    ("turku-ed", "fi", "Lämmin kiitos yövuoron hoitajille!", ["positive_gratitude"], "neutral", False),
    ("turku-ed", "fi", "Kiitos hoitaja [NAME], olit korvaamaton.", ["staff_attitude"], "positive", False),
    ("turku-ed", "sv", "Tack för den fina vården på jouren.", ["positive_gratitude"], "positive", False),
    ("turku-ed", "en", "Thank you, the doctor was wonderful.", ["positive_gratitude"], "positive", False),
    ("turku-ed", "fi", "Kiitos, mutta odotin kuusi tuntia ja pelkäsin.", ["access_waiting"], "positive", True),
    ("turku-ed", "fi", "Jono oli aivan liian pitkä.", ["access_waiting"], "negative", False),
    ("salo-ed", "fi", "Kiitos Salon päivystykselle ystävällisestä palvelusta.", ["staff_attitude"], "positive", False),
    ("salo-ed", "fi", "Kiitos nopeasta avusta!", ["positive_gratitude"], "positive", False),
]
LAST_WEEK = [
    ("turku-ed", "fi", "Kiitos hyvästä hoidosta.", ["positive_gratitude"], "positive", False),
    ("turku-ed", "sv", "Tack så mycket!", ["positive_gratitude"], "positive", False),
    ("turku-ed", "fi", "Pysäköinti on mahdotonta.", ["transport_parking"], "negative", False),
]


def events(rows, week: str) -> list[dict]:
    start, _ = week_bounds(week)
    return [enriched_event(unit=unit, text=text, language=lang, theme_codes=themes, sentiment=sentiment,
                           urgent=urgent, received_at=start + timedelta(hours=10 + 7 * i), embedding=None)
            for i, (unit, lang, text, themes, sentiment, urgent) in enumerate(rows)]


def digest_job(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "services.cli", "insights", "thanks-digest", *args],
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digests(maildir) -> list:
    return [m for m in read_mailbox(maildir) if m["X-Thanks-Digest"]]


@pytest.fixture(scope="module")
def indexed(pipeline_env, index_events, stack):
    env, settings = pipeline_env
    es = index_events(settings, events(THIS_WEEK, WEEK) + events(LAST_WEEK, PREVIOUS))
    return env, settings, es, stack.maildir


def test_the_opted_in_team_gets_one_digest_with_quotes_and_counts_and_a_rerun_sends_nothing(indexed):
    env, settings, es, maildir = indexed
    # The sink is shared by the session (and kept between runs): only what this run adds counts.
    before = {m["Message-ID"] for m in digests(maildir)}
    # The SMTP relay down: the job fails (exit 1, so the CronJob retries), records nothing, sends nothing.
    down = subprocess.run([sys.executable, "-m", "services.cli", "insights", "thanks-digest", "--week", WEEK],
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT), "FEEDBACK_SMTP_PORT": str(closed_port())},
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert down.returncode == 1, down.stderr[-2000:]
    assert list(json.loads(down.stdout.strip().splitlines()[-1])["failed"]) == ["turku-ed"]
    assert not es.exists(index=f"{settings.index_alias}-digests", id=f"thanks-turku-ed-{WEEK}")

    report = digest_job(env, "--week", WEEK)
    assert report["sent"] == ["turku-ed"] and not report["failed"]
    assert set(report["no_thanks"]) == {"parainen-hc", "turku-dental"}, "opted in, but nothing to thank for"
    new = [m for m in digests(maildir) if m["Message-ID"] not in before]
    assert len(new) == 1, [m["To"] for m in new]
    [mail] = new
    team = units()["turku-ed"].thanks_digest.team_email
    assert mail["To"] == team and mail["X-Envelope-To"] == team
    assert mail["X-Unit"] == "turku-ed" and mail["X-Thanks-Digest"] == f"thanks-turku-ed-{WEEK}"
    assert mail["Message-ID"] == f"<thanks-turku-ed-{WEEK}@{settings.mail_from.rpartition('@')[2]}>"
    assert mail["Subject"] == f"Kiitokset tiimille / Tack till teamet: Turun yhteispäivystys, {WEEK}"
    body = mail.get_content()
    # Five thanks this week (not the complaint, not the urgent item), two the week before, seven in all.
    assert "Kiitoksia ja myönteistä palautetta: 5 (edellinen viikko 2, muutos +3); kaikkiaan 7" in body
    assert "Tack och positiv respons: 5 (föregående vecka 2, förändring +3)" in body
    for _, lang, text, *_ in THIS_WEEK[:4]:
        assert f"“{text}” ({lang})" in body, text
    assert "Thank you, the doctor" not in body, "English is not one of turku-ed's digest languages"
    assert "pelkäsin" not in body and "Jono oli" not in body, "urgent items and complaints are not thanks"
    assert "Salon" not in body
    assert "/console/thanks?unit=turku-ed" in body
    assert not [m for m in new if m["X-Unit"] == "salo-ed"], "salo-ed has not opted in"
    record = es.get(index=f"{settings.index_alias}-digests", id=f"thanks-turku-ed-{WEEK}")["_source"]
    assert {k: record[k] for k in ("unit", "week", "thanks", "previous", "quotes")} == {
        "unit": "turku-ed", "week": WEEK, "thanks": 5, "previous": 2, "quotes": 4}
    assert "text" not in json.dumps(record)

    again = digest_job(env, "--week", WEEK)
    assert again["sent"] == [] and again["already_sent"] == ["turku-ed"]
    assert len([m for m in digests(maildir) if m["Message-ID"] not in before]) == 1, "a rerun sends nothing new"


def test_a_malformed_week_is_refused_in_one_line(indexed):
    env, *_ = indexed
    done = subprocess.run([sys.executable, "-m", "services.cli", "insights", "thanks-digest", "--week", "last"],
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "--week" in done.stderr and "2026-W48" in done.stderr
