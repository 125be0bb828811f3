"""CSV survey import: UTF-8 with or without BOM, Windows-1252 and Latin-1 exports, made here;
bad rows reported with row, field and problem while the rest is imported; the file is
streamed. Ingest is a stub transport here; tests/integration/test_survey_import_and_limits.py
posts to the real ingest and Kafka."""
from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from services.ops.survey_import import CsvFormatError, detect_encoding, import_csv

HEADER = ["response_id", "submitted_at", "unit", "question_id", "score", "answer", "email", "phone", "language",
          "follow_up"]
# Characters every one of the encodings has: ä ö å Ä Ö Å, quotes, ½ and °.
PLAIN = [
    ("R1", "turku-ed", "4", 'Odotin päivystyksessä viisi tuntia, ja "kiireellinen" tarkoitti yötä.'),
    ("R2", "raisio-hc", "1", "Åbolands hälsocentral: bra bemötande. ÄÖÅ äöå ½ tuntia, 38,5 °C."),
]
# Windows-1252 and UTF-8 only (not Latin-1): the euro sign, curly quotes, an en dash.
WIDE = [("R3", "salo-ed", "5", "Taksi maksoi 42 € – ”ei tässä mitään”, sanoi lääkäri.")]


def recent() -> str:
    return (datetime.now(timezone.utc) - timedelta(days=3)).isoformat(timespec="seconds")


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # as Excel writes it
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def row(rid: str, unit: str, score: str, answer: str, **extra: str) -> list[str]:
    values = {"response_id": rid, "submitted_at": recent(), "unit": unit, "question_id": "q_open", "score": score,
              "answer": answer, "email": "", "phone": "", "language": "fi", "follow_up": "no", **extra}
    return [values[c] for c in HEADER]


class Ingest:
    """A stand-in ingest that accepts every body and keeps what it got."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.client = httpx.Client(base_url="http://ingest.test", transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return httpx.Response(202, json={"feedback_id": "f", "status": "accepted"})

    def texts(self) -> dict[str, str]:
        return {b["response_id"]: b["answer_text"] for b in self.bodies}


def run(path: Path, **kw) -> tuple[Ingest, object]:
    ingest = Ingest()
    report = import_csv(path, "export-1", "http://ingest.test", "key", progress=False, client=ingest.client, **kw)
    return ingest, report


@pytest.mark.parametrize("encoding,detected,rows", [
    ("utf-8-sig", "utf-8-sig", PLAIN + WIDE),  # UTF-8 with a byte-order mark (Excel's "CSV UTF-8")
    ("utf-8", "utf-8-sig", PLAIN + WIDE),
    ("cp1252", "cp1252", PLAIN + WIDE),  # Excel's plain "CSV" on Western Windows
    ("latin-1", "cp1252", PLAIN),  # ISO-8859-1 reads the same through Windows-1252
])
def test_each_encoding_imports_the_finnish_text_exactly(tmp_path, encoding, detected, rows):
    path = tmp_path / f"export-{encoding}.csv"
    path.write_bytes(csv_bytes([row(*r) for r in rows], encoding))
    ingest, report = run(path)
    assert report.rejected == []
    assert report.summary() == {"rows": len(rows), "accepted": len(rows), "duplicates": 0, "rejected": 0,
                                "encoding": detected}
    assert ingest.texts() == {rid: answer for rid, _, _, answer in rows}
    assert ingest.bodies[0]["survey_id"] == "export-1" and ingest.bodies[0]["unit"] == "turku-ed"


def test_bad_rows_are_reported_by_row_field_and_problem_and_the_rest_imported(tmp_path):
    naive = datetime.now().replace(microsecond=0).isoformat()
    rows = [
        row(*PLAIN[0]),                                                    # row 2: fine
        row("R-bad-unit", "helsinki-ed", "3", "Hyvä."),                    # row 3
        row("", "turku-ed", "3", "Ei tunnistetta."),                       # row 4
        row("R-score", "turku-ed", "kolme", "Pisteet sanoin."),            # row 5
        row("R-naive", "turku-ed", "3", "Aika ilman vyöhykettä.", submitted_at=naive),  # row 6
        row("R-email", "turku-ed", "3", "Yhteys.", email="x" * 300 + "@example.fi", follow_up="yes"),  # row 7
        row("R-extra", "turku-ed", "3", "Ylimääräinen solu.") + ["surplus"],  # row 8
        row("R-huge", "turku-ed", "3", "ä" * 200_000),                    # row 9: over the csv field limit
        row(*PLAIN[1]),                                                    # row 10: fine
    ]
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(rows, "cp1252"))
    ingest, report = run(path)
    assert sorted(ingest.texts()) == ["R1", "R2"], "the good rows around the bad ones are imported"
    rejected = {number: {e["field"]: e["problem"] for e in errors} for number, errors in report.rejected}
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8, 9]
    assert "unknown unit" in rejected[3]["unit"]
    assert "response_id" in rejected[4]["(row)"]
    assert set(rejected[5]) == {"score"}
    assert "timezone" in rejected[6]["submitted_at"]
    assert "at most 254" in rejected[7]["respondent.email"]
    assert "11 cells, the header has 10" in rejected[8]["(row)"]
    assert "CSV" in rejected[9]["(row)"] or "answer" in rejected[9]
    assert report.summary()["rows"] == 9 and report.summary()["rejected"] == 7


def test_undecodable_windows_1252_bytes_are_reported_per_row(tmp_path):
    good = csv_bytes([row(*PLAIN[0]), row("R-x", "turku-ed", "2", "PLACEHOLDER"), row(*WIDE[0])], "cp1252")
    path = tmp_path / "export.csv"
    path.write_bytes(good.replace(b"PLACEHOLDER", b"Kiitos \x81 paljon"))  # 0x81: undefined in Windows-1252
    ingest, report = run(path)
    assert ingest.texts() == {"R1": PLAIN[0][3], "R3": WIDE[0][3]}
    assert report.rejected == [(3, [{"field": "answer", "problem": "holds bytes that are not valid cp1252"}])]
    assert report.encoding.startswith("cp1252")


def test_utf8_with_a_broken_byte_is_not_read_as_windows_1252(tmp_path):
    # One pasted Latin-1 "ä" (0xE4) in a UTF-8 file: reading it all as Windows-1252 would turn
    # every other "ä" into "Ã¤" without a word. It stays UTF-8 and only that row is reported.
    data = csv_bytes([row(*PLAIN[0]), row("R-x", "turku-ed", "2", "PLACEHOLDER"), row(*WIDE[0])], "utf-8")
    path = tmp_path / "export.csv"
    path.write_bytes(data.replace(b"PLACEHOLDER", b"p\xe4iv\xe4"))
    assert detect_encoding(path).codec == "utf-8-sig"
    ingest, report = run(path)
    assert ingest.texts() == {"R1": PLAIN[0][3], "R3": WIDE[0][3]}
    assert [number for number, _ in report.rejected] == [3]
    assert report.rejected[0][1][0]["field"] == "answer"


def test_a_named_encoding_overrides_the_guess(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes([row(*PLAIN[1])], "latin-1"))
    ingest, report = run(path, encoding="latin-1")
    assert ingest.texts() == {"R2": PLAIN[1][3]} and report.encoding.startswith("latin-1")


def test_a_header_without_the_required_columns_stops_before_any_row(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("id,vastaus\nR1,Hyvä\n", encoding="utf-8")
    ingest = Ingest()
    with pytest.raises(CsvFormatError, match="response_id, unit"):
        import_csv(path, "export-1", "http://ingest.test", "key", progress=False, client=ingest.client)
    assert ingest.bodies == []
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(CsvFormatError, match="no header"):
        import_csv(tmp_path / "empty.csv", "e", "http://ingest.test", "key", progress=False, client=ingest.client)


def test_unknown_columns_are_named_in_the_summary(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("response_id,unit,score,nps\nR1,turku-ed,3,9\n", encoding="utf-8")
    ingest, report = run(path)
    assert report.summary()["ignored_columns"] == ["nps"] and len(ingest.bodies) == 1


def test_the_file_is_streamed_not_read_whole(tmp_path):
    # 600 rows of 9,000 characters: about 6 MB of text. Reading it whole (or listing its
    # rows) needs that much memory at once; streaming needs a few rows' worth.
    path = tmp_path / "big.csv"
    answer = ("Odotusaika oli pitkä mutta hoito hyvää. " * 230)[:9000]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        stamp = recent()
        for i in range(600):
            writer.writerow([f"R{i}", stamp, "turku-ed", "q", "3", answer, "", "", "fi", "no"])
    assert path.stat().st_size > 5_000_000
    ingest = Ingest()
    ingest.handle = lambda request: httpx.Response(202, json={"status": "accepted"})  # keep nothing
    ingest.client = httpx.Client(base_url="http://ingest.test", transport=httpx.MockTransport(ingest.handle))
    tracemalloc.start()
    try:
        report = import_csv(path, "export-1", "http://ingest.test", "key", progress=False, client=ingest.client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.accepted == 600
    assert peak < 2_500_000, f"peak {peak / 1e6:.1f} MB while importing a {path.stat().st_size / 1e6:.0f} MB file"
