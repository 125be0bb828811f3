"""`feedback bench ingest` end to end, short: the real Kafka of the session, ingest and the bare
endpoint as real processes, wrk as the load. Checks that the bench runs and that what it prints
follows from its rounds; the figures themselves are for an idle machine (README)."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

# The session stack's ports (tests/conftest.py); the services beside every other module's.
KAFKA_PORT = os.environ.get("FEEDBACK_TEST_KAFKA_PORT", "29092")
PORT_OFFSET = int(os.environ.get("FEEDBACK_TEST_SERVICE_PORT_OFFSET", "1000")) + 300


def test_bench_ingest_short_run(stack, tmp_path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: scripts/install.sh installs it (apt package wrk)")
    out = tmp_path / "ingest.json"
    proc = subprocess.run([sys.executable, "-m", "services.cli", "bench", "ingest", "--duration", "1", "--rounds", "2",
                           "--connections", "4", "--threads", "1", "--json", str(out),
                           "--kafka-port", KAFKA_PORT, "--port-offset", str(PORT_OFFSET)],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    for name in ("ingest", "bare"):
        rounds = result["endpoints"][name]["rounds"]
        assert len(rounds) == 2 and all(r["requests"] > 0 for r in rounds), (name, rounds)
        assert result["endpoints"][name]["non_2xx"] == 0 and result["endpoints"][name]["errors"] == 0, name
    ratios = result["round_throughput_ratios"]
    assert len(ratios) == 2 and result["throughput_ratio"] == pytest.approx(statistics.median(ratios), abs=0.001)
    assert "throughput ratio ingest/bare" in proc.stdout and "p99 ratio" in proc.stdout
