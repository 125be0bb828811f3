"""Every service: health, readiness, Prometheus metrics, JSON logs, clean stop on SIGTERM."""
from __future__ import annotations

import json
import re
import signal

import httpx
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import ALL_SERVICES
from services.topics import ALL_TOPICS

pytestmark = pytest.mark.integration
METRIC_NAME = re.compile(r"^[a-z_:][a-z0-9_:]*$")
# Label values must stay bounded and impersonal: no ids, refs, emails or free text.
FORBIDDEN_LABEL_VALUE = re.compile(r"@|r_[0-9a-f]{24}|[0-9a-f]{8}-[0-9a-f]{4}-|\s{2,}")


@pytest.fixture(scope="module")
def running(service_group):
    service_group.start_all()
    return service_group


def test_topics_exist_with_their_partitions_and_configs(pipeline_env):
    _, settings = pipeline_env
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics([settings.topic(t.name) for t in ALL_TOPICS])}
        for spec in ALL_TOPICS:
            assert len(described[settings.topic(spec.name)]["partitions"]) == spec.partitions
        contacts = settings.topic("respondent.contacts")
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, contacts)])
        (by_name,) = result.values()
        policy = by_name[contacts]["cleanup.policy"]
        assert (policy["value"] if isinstance(policy, dict) else policy) == "compact"
    finally:
        admin.close()


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_health_ready_and_metrics(running, name):
    sp = running.running[name]
    assert httpx.get(f"{sp.url}/health", timeout=5).status_code == 200
    ready = httpx.get(f"{sp.url}/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    text = httpx.get(f"{sp.url}/metrics", timeout=5).text
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if f.name.startswith("feedback_")]
    assert ours, "no feedback_ metrics exposed"
    for family in ours:
        assert METRIC_NAME.match(family.name)
        assert family.documentation, f"{family.name} has no help text"
        if family.type == "counter":
            assert {x.name for x in family.samples} >= {f"{family.name}_total"} or not family.samples
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_events")), f"{family.name} lacks a unit suffix"
        for sample in family.samples:
            for value in sample.labels.values():
                assert not FORBIDDEN_LABEL_VALUE.search(value), f"{family.name} label {value!r}"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_logs_are_json_and_sigterm_stops_cleanly(running, name):
    sp = running.running[name]
    code = running.stop(name, sig=signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown, so -15 is its clean exit.
    assert code in (0, -signal.SIGTERM), f"{name} exited with {code}"
    lines = [line for line in sp.log_path.read_text().splitlines() if line.strip()]
    assert lines
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(parsed) >= 0.9 * len(lines), f"{name} wrote non-JSON log lines"
    assert all("level" in p and "timestamp" in p for p in parsed)
    assert any(p.get("event") == "service_stopping" for p in parsed), f"{name} did not shut down gracefully"
