"""Bad input against the real ingest process (uvicorn) and Kafka: a chunked body is cut off at
the limit while it streams, hostile nesting gets 400, and the CSV import brings Windows-1252,
Latin-1 and UTF-8-with-BOM exports onto feedback.received with the Finnish text intact while
reporting the bad rows."""
from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import pytest

from pipelines.intake import feedback_id_for
from services.ops.survey_import import import_csv

pytestmark = pytest.mark.integration

HEADER = ["response_id", "submitted_at", "unit", "question_id", "score", "answer", "email", "phone", "language",
          "follow_up"]
TEXTS = {
    "cp1252": 'Odotin päivystyksessä 5 h – taksi maksoi 42 €, ja ”kiireellinen” tarkoitti yötä.',
    "latin-1": 'Åbolands hälsocentral: bra bemötande, "snabbt" och vänligt. Kiitos, ½ tuntia!',
    "utf-8-sig": "Kotihoidon hoitaja oli ystävällinen 😊 – ”kiitos” äidin puolesta.",
}


@pytest.fixture(scope="module")
def ingest(pipeline_env, service_group):
    env, settings = pipeline_env
    sp = service_group.start("ingest")
    return sp.url, env, settings


def export(encoding: str, survey: str) -> bytes:
    at = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(timespec="seconds")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerow([f"{survey}-1", at, "turku-ed", "q_open", "4", TEXTS[encoding], "", "", "fi", "no"])
    writer.writerow([f"{survey}-2", at, "helsinki-ed", "q_open", "3", "Tuntematon yksikkö.", "", "", "fi", "no"])
    writer.writerow([f"{survey}-3", at, "raisio-hc", "q_open", "2", "Ääliömäinen jono.", "", "", "fi", "no"])
    return out.getvalue().encode(encoding)


def received_texts(settings, topic_records) -> dict[str, str]:
    return {e["feedback_id"]: e["text"] for e in
            (json.loads(v) for _, v in topic_records(settings, "feedback.received"))}


def test_cp1252_export_through_the_cli_reports_the_bad_row_and_imports_the_rest(ingest, tmp_path, topic_records):
    url, env, settings = ingest
    path = tmp_path / "excel.csv"
    path.write_bytes(export("cp1252", "xl"))
    done = subprocess.run([sys.executable, "-m", "services.cli", "import", "survey-csv", str(path),
                           "--survey-id", "xl", "--ingest-url", url], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # some rows were rejected
    assert "row 3: unit: unknown unit 'helsinki-ed'" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])  # the summary comes last
    assert summary == {"rows": 3, "accepted": 2, "duplicates": 0, "rejected": 1, "encoding": "cp1252"}
    texts = received_texts(settings, topic_records)
    assert texts[feedback_id_for("survey", "xl:xl-1")] == TEXTS["cp1252"]
    assert texts[feedback_id_for("survey", "xl:xl-3")] == "Ääliömäinen jono."
    assert feedback_id_for("survey", "xl:xl-2") not in texts


@pytest.mark.parametrize("encoding,detected", [("latin-1", "cp1252"), ("utf-8-sig", "utf-8-sig")])
def test_latin1_and_utf8_bom_exports_arrive_intact(ingest, tmp_path, topic_records, encoding, detected):
    url, _, settings = ingest
    survey = "l1" if encoding == "latin-1" else "bom"
    path = tmp_path / f"{survey}.csv"
    path.write_bytes(export(encoding, survey))
    report = import_csv(path, survey, url, settings.ingest_api_keys["survey"].get_secret_value(), progress=False)
    assert report.summary() == {"rows": 3, "accepted": 2, "duplicates": 0, "rejected": 1, "encoding": detected}
    assert [n for n, _ in report.rejected] == [3]
    assert received_texts(settings, topic_records)[feedback_id_for("survey", f"{survey}:{survey}-1")] == TEXTS[encoding]


def test_a_chunked_body_over_the_limit_is_answered_413_before_it_ends(ingest):
    url, _, settings = ingest
    host, port = urlsplit(url).hostname, urlsplit(url).port
    key = settings.ingest_api_keys["app"].get_secret_value()
    with socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(f"POST /v1/feedback/app HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"a" * 16384
        # Just past the limit (so the server has read all we sent when it answers), never the final chunk.
        for _ in range(settings.max_body_bytes // len(chunk) + 1):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body_too_large"' in answer


def test_deep_nesting_and_a_declared_oversize_body_on_the_real_server(ingest):
    url, _, settings = ingest
    headers = {"X-API-Key": settings.ingest_api_keys["app"].get_secret_value(), "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=30) as client:
        deep = client.post("/v1/feedback/app", content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
        assert deep.status_code == 400 and deep.json()["error"] == "json_too_deep"
        big = client.post("/v1/feedback/app", content=b" " * (settings.max_body_bytes + 1), headers=headers)
        assert big.status_code == 413 and big.json()["limit_bytes"] == settings.max_body_bytes
        assert client.get("/health").status_code == 200, "the service is still up"
