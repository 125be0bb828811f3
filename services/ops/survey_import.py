"""Import a survey tool's CSV export through the ingest API (same validation, same keys).

The file is read twice, in chunks and row by row, never whole: large exports cost
constant memory.

1. **Encoding.** Survey tools and spreadsheets export UTF-8 (often with a byte-order
   mark), Windows-1252 (Excel's "CSV" on Western Windows) or ISO-8859-1 (Latin-1). The
   first pass decodes the file as strict UTF-8; if every byte decodes, it is UTF-8 and
   a leading BOM is dropped (``utf-8-sig``). Otherwise it is read as Windows-1252, which
   also reads Latin-1 exports: the two agree on every byte except 0x80-0x9F, where
   Latin-1 has C1 control codes that real text never contains and Windows-1252 has the
   printable characters that exports do contain (the euro sign, curly quotes, dashes).
   So a Latin-1 file decodes to the same text, and ä, ö, å, Ä, Ö, Å (0xE4, 0xF6, 0xE5,
   0xC4, 0xD6, 0xC5) are the same in both. One exception keeps this honest: a file
   that is mostly valid UTF-8 with a few broken bytes is read as UTF-8 (reading it as
   Windows-1252 would silently turn every "ä" into "Ã¤"). The encoding used is printed
   in the summary, and ``--encoding`` overrides the guess.
2. **Undecodable bytes** (broken UTF-8, or the five bytes Windows-1252 leaves undefined:
   0x81, 0x8D, 0x8F, 0x90, 0x9D) are decoded as U+FFFD, and every row that contains
   one is reported with its row number and field and not imported: the rest of the
   file is.
3. **Rows.** Each row is validated with the same contract as the webhook and posted to
   ingest; a bad row (a missing or malformed field, extra cells, an over-long field, a
   CSV syntax error, or ingest's 4xx) is reported as (row, field, problem) and the
   import goes on. Row numbers count the header as row 1, as a spreadsheet shows them.
"""
from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError
from tqdm import tqdm

from pipelines.intake import CSV_COLUMNS, SurveyResponseIn, survey_from_csv_row
from services.apps.http_common import validation_errors

CHUNK_BYTES = 1 << 16
REQUIRED_COLUMNS = ("response_id", "unit")
REPLACEMENT = "\ufffd"
# Well-formed UTF-8 multi-byte sequences (RFC 3629), to tell broken UTF-8 from Windows-1252.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_NON_ASCII = bytes(range(0x80, 0x100))
_CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"


class CsvFormatError(ValueError):
    """The file cannot be imported at all (no header, a required column missing)."""


@dataclass(frozen=True)
class CsvEncoding:
    """How the second pass decodes the file: the codec, and whether bytes failed to decode."""

    codec: str
    clean: bool  # False: some bytes do not decode; their rows are reported, not imported

    @property
    def label(self) -> str:
        return self.codec if self.clean else f"{self.codec} (rows with undecodable bytes are reported)"


def detect_encoding(path: Path) -> CsvEncoding:
    """UTF-8 (BOM or not) if the file decodes strictly, else Windows-1252 (which reads Latin-1 too).

    Reads the file once in chunks; see the module docstring for why and for broken UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    utf8_ok, well_formed, non_ascii, cp1252_ok = True, 0, 0, True
    with path.open("rb") as fh:
        tail = b""  # a multi-byte sequence split across two chunks is counted in the next
        while chunk := fh.read(CHUNK_BYTES):
            if utf8_ok:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
            data = tail + chunk
            cut = len(data)
            while cut > 0 and len(data) - cut < 3 and data[cut - 1] >= 0x80:
                cut -= 1
            head, tail = data[:cut], data[cut:]
            well_formed += sum(len(m) for m in _UTF8_MULTIBYTE.findall(head))
            non_ascii += len(head) - len(head.translate(None, _NON_ASCII))
            cp1252_ok = cp1252_ok and not any(b in _CP1252_UNDEFINED for b in chunk)
        well_formed += sum(len(m) for m in _UTF8_MULTIBYTE.findall(tail))
        non_ascii += len(tail) - len(tail.translate(None, _NON_ASCII))
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)  # a sequence cut off by the end of the file
        except UnicodeDecodeError:
            utf8_ok = False
    if utf8_ok:
        return CsvEncoding("utf-8-sig", clean=True)
    if well_formed > non_ascii - well_formed:
        return CsvEncoding("utf-8-sig", clean=False)
    return CsvEncoding("cp1252", clean=cp1252_ok)


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    rows: int = 0
    encoding: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    rejected: list[tuple[int, list[dict[str, str]]]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"rows": self.rows, "accepted": self.accepted, "duplicates": self.duplicates,
                                  "rejected": len(self.rejected), "encoding": self.encoding}
        if self.ignored_columns:
            out["ignored_columns"] = self.ignored_columns
        return out


@dataclass(frozen=True)
class CsvRow:
    """One data row: its spreadsheet row number and either the response or what is wrong with it."""

    number: int
    body: SurveyResponseIn | None
    errors: list[dict[str, str]]


def _row_errors(row: dict[str | None, str | list[str] | None], width: int, encoding: CsvEncoding) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    extra = row.get(None)
    if extra:
        errors.append({"field": "(row)", "problem": f"has {width + len(extra)} cells, the header has {width}"})
    if not encoding.clean:
        errors += [{"field": str(name), "problem": f"holds bytes that are not valid {encoding.codec}"}
                   for name, value in row.items()
                   if name is not None and isinstance(value, str) and REPLACEMENT in value]
    return errors


def read_rows(path: Path, survey_id: str, encoding: CsvEncoding, report: ImportReport) -> Iterator[CsvRow]:
    """The file's rows one at a time, validated; header problems raise CsvFormatError."""
    with path.open(newline="", encoding=encoding.codec, errors="strict" if encoding.clean else "replace") as fh:
        reader = csv.DictReader(fh)
        header = [(name or "").strip() for name in (reader.fieldnames or [])]
        if not header:
            raise CsvFormatError("the file has no header row")
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CsvFormatError(f"the header lacks the column(s) {', '.join(missing)} (found: {', '.join(header)})")
        reader.fieldnames = header
        report.ignored_columns = [c for c in header if c not in CSV_COLUMNS]
        number = 1
        while True:
            number += 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a field over the csv module's size limit: skip the row
                yield CsvRow(number, None, [{"field": "(row)", "problem": f"not readable as CSV: {exc}"}])
                continue
            errors = _row_errors(row, len(header), encoding)
            if errors:
                yield CsvRow(number, None, errors)
                continue
            try:
                yield CsvRow(number, survey_from_csv_row(row, survey_id), [])  # type: ignore[arg-type]
            except ValidationError as exc:
                yield CsvRow(number, None, validation_errors(list(exc.errors())))
            except ValueError as exc:
                yield CsvRow(number, None, [{"field": "(row)", "problem": str(exc)}])


def _ingest_errors(resp: httpx.Response) -> list[dict[str, str]]:
    try:
        errors = resp.json().get("errors")
    except ValueError:
        errors = None
    return errors or [{"field": "(row)", "problem": f"ingest answered {resp.status_code}: {resp.text[:200]}"}]


def import_csv(path: Path, survey_id: str, ingest_url: str, api_key: str, progress: bool = True,
               encoding: str | None = None, client: httpx.Client | None = None) -> ImportReport:
    """POST every good row to /v1/feedback/survey; bad rows are reported by row number, field and problem.

    ``encoding`` overrides the detected one (a Python codec name); ``client`` replaces the
    HTTP client made for ``ingest_url`` (tests).
    """
    report = ImportReport()
    # A named encoding may be wrong for some bytes: decode leniently and report those rows.
    detected = CsvEncoding(encoding, clean=False) if encoding else detect_encoding(path)
    report.encoding = detected.label
    own = client is None
    http = client or httpx.Client(base_url=ingest_url, timeout=30)
    try:
        rows = read_rows(path, survey_id, detected, report)
        for row in tqdm(rows, desc=f"import {path.name}", unit=" rows", disable=not progress):
            report.rows += 1
            if row.body is None:
                report.rejected.append((row.number, row.errors))
                continue
            body = row.body
            resp = http.post("/v1/feedback/survey", json=body.model_dump(mode="json", exclude_none=True),
                             headers={"X-API-Key": api_key, "Idempotency-Key": f"{survey_id}:{body.response_id}"})
            if resp.status_code == 202:
                report.accepted += 1
            elif resp.status_code == 200:
                report.duplicates += 1
            else:
                report.rejected.append((row.number, _ingest_errors(resp)))
    finally:
        if own:
            http.close()
    return report
