"""Thanks to the team, the pure parts: weeks, the digest's composition, the public-quote rule
and the training-set export (CSV safe against formula injection, Markdown inert)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from pipelines import thanks
from pipelines.units import units


def src(text: str, language: str = "fi", fid: str = "f1", redactions: int = 0) -> dict:
    return {"feedback_id": fid, "unit": "turku-ed", "text": text, "language": language,
            "received_at": "2026-11-24T10:00:00Z", "redaction_total": redactions}


def test_weeks_are_helsinki_weeks_and_relative_to_now():
    start, end = thanks.week_bounds("2026-W48")
    assert start.isoformat() == "2026-11-23T00:00:00+02:00" and (end - start).days == 7
    assert thanks.previous_week("2026-W48") == "2026-W47"
    assert thanks.previous_week("2027-W01") == "2026-W53"
    # Monday 06:00 Helsinki is 04:00 UTC: last week is W48, whatever today is.
    assert thanks.last_complete_week(datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)) == "2026-W48"
    # Sunday 23:30 Helsinki (21:30 UTC) is still in W48: the last complete week is W47.
    assert thanks.last_complete_week(datetime(2026, 11, 29, 21, 30, tzinfo=timezone.utc)) == "2026-W47"
    for bad in ("2026-48", "2026-W60", "W48", ""):
        with pytest.raises(ValueError, match="week"):
            thanks.parse_week(bad)


def test_thanks_query_takes_positive_or_gratitude_but_not_duplicates_or_urgent():
    q = thanks.period_query("turku-ed", *thanks.week_bounds("2026-W48"))
    clauses = q["bool"]["filter"]
    assert {"term": {"unit": "turku-ed"}} in clauses
    assert clauses[0]["range"]["received_at"] == {"gte": "2026-11-22T22:00:00Z", "lt": "2026-11-29T22:00:00Z"}
    f = clauses[-1]["bool"]
    assert {"term": {"theme_codes": thanks.GRATITUDE_THEME}} in f["should"] and f["minimum_should_match"] == 1
    assert {"term": {"urgent": True}} in f["must_not"] and {"term": {"is_duplicate": True}} in f["must_not"]
    assert len(thanks.period_query("turku-ed", *thanks.week_bounds("2026-W48"), thanks=False)["bool"]["filter"]) == 2


def test_digest_has_counts_against_last_week_quotes_in_the_units_languages_and_a_stable_id():
    unit = units()["turku-ed"]  # digest languages fi, sv
    quotes = thanks.pick_quotes([src("Kiitos ihanalle hoitajalle!", "fi", "a"), src("Thanks a lot!", "en", "b"),
                                 src("Tack för den fina vården.", "sv", "c"),
                                 src("kiitos  IHANALLE hoitajalle!", "fi", "d")], unit.thanks_digest.languages)
    assert [q.feedback_id for q in quotes] == ["a", "c"], "only fi/sv, one per distinct text"
    mail = thanks.compose_digest(unit, "2026-W48", 7, 4, 20, quotes, "https://palaute.example/")
    assert mail.to == "team.turku-ed@hyvinvointialue.example"
    assert mail.subject == "Kiitokset tiimille / Tack till teamet: Turun yhteispäivystys, 2026-W48"
    assert "Kiitoksia ja myönteistä palautetta: 7 (edellinen viikko 4, muutos +3)" in mail.body
    assert "Tack och positiv respons: 7 (föregående vecka 4, förändring +3)" in mail.body
    assert "“Kiitos ihanalle hoitajalle!” (fi)" in mail.body and "“Tack för den fina vården.” (sv)" in mail.body
    assert "Thanks a lot" not in mail.body
    assert "https://palaute.example/console/thanks?unit=turku-ed" in mail.body
    assert mail.mail_id == thanks.digest_id("turku-ed", "2026-W48") == "thanks-turku-ed-2026-W48"
    record = thanks.digest_record(mail, datetime(2026, 11, 30, 5, tzinfo=timezone.utc))
    assert record == {"digest_id": mail.mail_id, "unit": "turku-ed", "week": "2026-W48", "team_email": mail.to,
                      "thanks": 7, "previous": 4, "quotes": 2, "sent_at": "2026-11-30T05:00:00Z"}
    fewer = thanks.compose_digest(unit, "2026-W48", 2, 5, 9, [], "https://palaute.example")
    assert "muutos -3" in fewer.body and "ei ollut lainattavia" in fewer.body


def test_a_unit_that_has_not_opted_in_gets_no_digest():
    for code in ("salo-ed", "homecare-south"):  # none at all; listed but disabled
        with pytest.raises(ValueError, match="opted in"):
            thanks.compose_digest(units()[code], "2026-W48", 1, 0, 1, [], "https://x.example")


def test_long_quotes_are_cut_at_a_word():
    [q] = thanks.pick_quotes([src("kiitos " * 200)], ("fi",))
    assert len(q.text) <= thanks.MAX_QUOTE_CHARS and q.text.endswith("kiitos…")


@pytest.mark.parametrize("text,redactions,ok", [
    ("Kiitos ystävällisestä kohtelusta!", 0, True),
    ("Kiitos hoitaja [NAME], olit ihana.", 1, False),  # placeholder: someone was named
    ("Kiitos kaikille, soittakaa [PHONE]", 0, False),  # a placeholder even if the count is missing
    ("Kiitos!", 0, False),  # too short to say anything
    ("Kiitos huoneen 12345 hoitajille", 0, False),  # long digit runs stay off the board
    ("Kiitos " * 60, 0, False),  # too long
])
def test_public_board_quotes_have_nothing_redacted(text, redactions, ok):
    assert thanks.public_quote(src(text, redactions=redactions)) is ok


def test_board_quotes_prefer_the_board_language():
    out = thanks.board_quotes([src("Tack för den fina vården.", "sv", "s"), src("Kiitos hyvästä hoidosta.", "fi", "f"),
                               src("Kiitos [NAME] hyvästä hoidosta.", "fi", "x", 1)], "fi")
    assert [q.feedback_id for q in out] == ["f", "s"]


def test_csv_export_defuses_formulas_and_keeps_finnish_letters():
    rows = [{"unit": "turku-ed", "unit_name": "Turun yhteispäivystys", "language": "fi", "week": "2026-W48",
             "text": text} for text in ("=HYPERLINK(\"http://evil.example\",\"klikkaa\")", "+358 kiitos", "-1+2",
                                        "@SUM(A1)", "\t=1+1", "Kiitos, hyvä hoito; \"lainaus\"\nrivi")]
    out = thanks.training_csv(rows)
    assert out.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"))))
    assert parsed[0] == list(thanks.TRAINING_COLUMNS)
    texts = [r[4] for r in parsed[1:]]
    assert texts[:5] == ["'=HYPERLINK(\"http://evil.example\",\"klikkaa\")", "'+358 kiitos", "'-1+2", "'@SUM(A1)",
                         "'\t=1+1"]
    assert texts[5] == "Kiitos, hyvä hoito; \"lainaus\"\nrivi", "ordinary text round-trips unchanged"
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in parsed for cell in r)
    assert thanks.csv_cell("Kiitos") == "Kiitos" and thanks.csv_cell(None) == ""


def test_markdown_export_groups_by_unit_and_renders_no_markup():
    rows = [{"unit": "turku-ed", "unit_name": "Turun yhteispäivystys", "language": "fi", "week": "2026-W48",
             "text": "Kiitos! [klikkaa](http://evil.example) <img src=x>\n# otsikko"}]
    md = thanks.training_markdown(rows, "Kiitokset")
    assert md.startswith("# Kiitokset\n") and "## Turun yhteispäivystys" in md
    assert "\\[klikkaa\\]\\(http://evil.example\\)" in md and "\\<img src=x\\>" in md
    assert "\n# otsikko" not in md and "\\# otsikko" in md
    assert "(no quotes picked yet)" in thanks.training_markdown([], "x")


def test_the_digest_job_pushes_its_counter_to_a_pushgateway_when_one_is_set():
    """A CronJob ends before any scrape: its counter goes to the Pushgateway (a real HTTP server here)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from services.ops.thanks_digest import push_metrics
    from services.settings import Settings

    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - the http.server interface
            received.append(("PUT", self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert push_metrics(Settings()) is False, "nothing configured, nothing pushed"
        assert push_metrics(Settings(metrics_pushgateway_url=f"http://127.0.0.1:{server.server_port}")) is True
    finally:
        server.shutdown()
        server.server_close()
    [(method, path, body)] = received
    assert path == "/metrics/job/feedback-thanks-digest"
    assert b"feedback_thanks_digests_total" in body and b"feedback_ingest" not in body, "only the job's counter"
