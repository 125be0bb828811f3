"""Leak rates on Faker identifiers (fi_FI, sv_SE, en_GB) in plain and Unicode-space variants."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("faker")

from pipelines.redaction_leaks import VARIANTS, false_redactions, format_leak_report, generate_leak_set, leak_report

GOLD = sorted((Path(__file__).resolve().parents[1] / "data").glob("gold_*.jsonl"))


@pytest.fixture(scope="module")
def report() -> dict:
    items = generate_leak_set(per_cell=150, seed=2026)
    assert len(items) >= 5000
    assert generate_leak_set(per_cell=2, seed=2026) == generate_leak_set(per_cell=2, seed=2026)
    return leak_report(items)


@pytest.mark.parametrize("kind", ["HETU", "PNR", "PHONE", "EMAIL", "IBAN"])
def test_structured_identifiers_never_leak(report: dict, kind: str) -> None:
    for variant in VARIANTS:
        leaked, total = report["cells"][(kind, variant)]
        assert total >= 100 and leaked == 0, (kind, variant, report["examples"].get(kind))


@pytest.mark.parametrize("kind", ["ADDRESS", "NAME"])
def test_addresses_and_names_leak_at_most_one_percent(report: dict, kind: str) -> None:
    for variant in VARIANTS:
        leaked, total = report["cells"][(kind, variant)]
        assert leaked / total <= 0.01, (kind, variant, format_leak_report(report))


def test_false_redactions_on_gold_texts_under_two_percent() -> None:
    hit, total, found = false_redactions(GOLD)
    assert total >= 500 and hit / total < 0.02, found
