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


def test_only_the_trends_worker_uses_faust():
    # Every at-least-once worker runs on services/runtime.py, which owns its commits; faust
    # stays only where its windowed tables earn their place.
    faust_import = re.compile(r"^\s*(?:import|from)\s+faust\b", re.MULTILINE)
    users = sorted(str(p.relative_to(ROOT)) for folder in ("services", "pipelines", "schemas")
                   for p in (ROOT / folder).rglob("*.py") if faust_import.search(p.read_text(encoding="utf-8")))
    assert users == ["services/trends.py"]


def test_no_patches_of_library_internals():
    # Assigning to a library's attribute (``aiokafka.x.Y.method = ...``) is how a patch looks.
    patch = re.compile(r"^\s*(?:aiokafka|faust|kafka|elasticsearch|mode)\.[\w.]+\s*=", re.MULTILINE)
    for folder in ("services", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not patch.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)
