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
    # Every at-least-once worker runs on services/workers/runtime.py, which owns its commits; faust
    # stays only where its windowed tables earn their place.
    faust_import = re.compile(r"^\s*(?:import|from)\s+faust\b", re.MULTILINE)
    users = sorted(str(p.relative_to(ROOT)) for folder in ("services", "pipelines", "schemas")
                   for p in (ROOT / folder).rglob("*.py") if faust_import.search(p.read_text(encoding="utf-8")))
    assert users == ["services/workers/trends.py"]


def test_no_patches_of_library_internals():
    # Assigning to a library's attribute (``aiokafka.x.Y.method = ...``) is how a patch looks.
    patch = re.compile(r"^\s*(?:aiokafka|faust|kafka|elasticsearch|mode)\.[\w.]+\s*=", re.MULTILINE)
    for folder in ("services", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not patch.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)


def _project_imports() -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere in its body (lazy imports count too:
    a lazy import that breaks a circle at import time still ties the two modules)."""
    import ast

    files = {}
    for folder in ("services", "pipelines", "schemas"):
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_no_import_circles():
    graph = _project_imports()
    circles = []
    for start in graph:  # a path back to ``start``; the graph is small enough for a plain search
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert circles == []


def test_production_code_does_not_import_the_dev_tools():
    # The image copies pipelines/, services/ and schemas/ only; devstack/ (local stack, demo)
    # is reached through services/cli/devtools.py, which says so clearly when it is missing.
    dev_import = re.compile(r"^\s*(?:import|from)\s+devstack\b", re.MULTILINE)
    for folder in ("services", "pipelines", "schemas"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not dev_import.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)
