"""Import a survey tool's CSV export through the ingest API (same validation, same keys)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError
from tqdm import tqdm

from pipelines.intake import survey_from_csv_row
from services.apps.http_common import validation_errors


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, list[dict[str, str]]]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": len(self.rejected)}


def import_csv(path: Path, survey_id: str, ingest_url: str, api_key: str, progress: bool = True) -> ImportReport:
    """POST every row to /v1/feedback/survey; rows that fail validation are reported by row number."""
    report = ImportReport()
    with path.open(newline="", encoding="utf-8-sig") as fh, httpx.Client(base_url=ingest_url, timeout=30) as client:
        rows = list(csv.DictReader(fh))
        for number, row in enumerate(tqdm(rows, desc=f"import {path.name}", disable=not progress), start=2):
            try:
                body = survey_from_csv_row(row, survey_id)
            except ValidationError as exc:
                report.rejected.append((number, validation_errors(list(exc.errors()))))
                continue
            except ValueError as exc:
                report.rejected.append((number, [{"field": "(row)", "problem": str(exc)}]))
                continue
            payload = body.model_dump(mode="json", exclude_none=True)
            resp = client.post("/v1/feedback/survey", json=payload,
                               headers={"X-API-Key": api_key, "Idempotency-Key": f"{survey_id}:{body.response_id}"})
            if resp.status_code == 202:
                report.accepted += 1
            elif resp.status_code == 200:
                report.duplicates += 1
            else:
                errors = resp.json().get("errors") or [{"field": "(row)", "problem": resp.text[:200]}]
                report.rejected.append((number, errors))
    return report
