"""`feedback bench search` end to end on a small index of the real Elasticsearch."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bench_search_small(pipeline_env) -> None:
    env, settings = pipeline_env
    alias = f"{settings.index_alias}-bench"
    proc = subprocess.run([sys.executable, "-m", "services.cli", "bench", "search", "--docs", "400",
                           "--queries", "5", "--base", "40", "--batch", "200"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"index \S+-bench-v1: 400 documents", out), out
    for kind in ("keyword", "knn", "knn\\+area filter", "hybrid \\(rrf\\)", "query embedding"):
        assert re.search(rf"^{kind}\s+\d+\s+[\d.]+\s+[\d.]+", out, re.M), (kind, out)
    assert "deleted" in out
    from services.adapters.es import es_client

    es = es_client(settings)
    assert not es.indices.exists_alias(name=alias) and not es.indices.exists_index_template(name=f"{alias}-template")
