"""`feedback bench ingest` and `feedback bench e2e` end to end, short: the real Kafka and
Elasticsearch of the session, the services as real processes, wrk as ingest's load. Checks that
the benches run, that every item they send is accounted for and that what they print follows
from what they measured; the figures themselves are for an idle machine (README)."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest
from elasticsearch import Elasticsearch

pytestmark = pytest.mark.integration

# The session stack's ports (tests/conftest.py); the services beside every other module's.
KAFKA_PORT = os.environ.get("FEEDBACK_TEST_KAFKA_PORT", "29092")
ES_PORT = os.environ.get("FEEDBACK_TEST_ES_PORT", "29200")
PORT_OFFSET = int(os.environ.get("FEEDBACK_TEST_SERVICE_PORT_OFFSET", "1000")) + 300


def run_topics(prefix: str) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{KAFKA_PORT}")
    try:
        return [t for t in admin.list_topics() if t.startswith(prefix)]
    finally:
        admin.close()


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
    assert result["topic_prefix"] and not run_topics(result["topic_prefix"]), "the run's topics must be deleted"


def test_bench_e2e_short_run(stack, tmp_path) -> None:
    out = tmp_path / "e2e.json"
    proc = subprocess.run([sys.executable, "-m", "services.cli", "bench", "e2e", "--rates", "5", "--duration", "3",
                           "--burst", "10", "--saturate", "32", "--json", str(out), "--kafka-port", KAFKA_PORT,
                           "--es-port", ES_PORT, "--port-offset", str(PORT_OFFSET)],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    steady, burst = result["phases"]
    assert (steady["sent"], steady["accepted"], steady["missing"]) == (15, 15, 0), steady
    assert (burst["sent"], burst["missing"]) == (10, 0) and burst["all_searchable"], burst
    t2s = steady["time_to_searchable"]
    assert t2s["n"] == 15 and 0 < t2s["p50"] <= t2s["p95"] <= t2s["max"]
    assert {"queue before enricher", "enrich: embed (per batch)", "indexer chunk, commit incl."} <= set(steady["stages"])
    assert result["highest_sustainable"] == 5.0
    assert all(result["cost"][s]["cpu_ms_per_item"] > 0 for s in ("ingest", "enricher", "indexer"))
    sat = result["saturation"]
    assert sat["items"] == 32 and sat["ratio"] == pytest.approx(
        sat["enricher_items_per_s"] / sat["bare_encode_items_per_s"], abs=0.01)
    assert "highest sustainable rate: 5.0 items/s" in proc.stdout
    assert result["topic_prefix"] and not run_topics(result["topic_prefix"]), "the run's topics must be deleted"
    es = Elasticsearch(f"http://127.0.0.1:{ES_PORT}")
    assert not es.indices.exists_alias(name=result["index_alias"])
    assert not es.indices.exists_index_template(name=f"{result['index_alias']}-template")
