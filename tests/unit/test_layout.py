"""The repository layout keeps working for pytest and for a new teammate."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_module_names_are_unique():
    # Test folders are not packages, so pytest imports modules by basename.
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []


def test_pure_pipelines_do_no_io():
    # pipelines/ holds the domain; Kafka, Elasticsearch, HTTP and SMTP belong in services/.
    io_import = re.compile(r"^\s*(?:import|from)\s+(kafka|aiokafka|elasticsearch|httpx|smtplib|faust|services)\b",
                           re.MULTILINE)
    for path in (ROOT / "pipelines").rglob("*.py"):
        hits = io_import.findall(path.read_text(encoding="utf-8"))
        assert not hits, f"{path.relative_to(ROOT)} imports {hits}"
