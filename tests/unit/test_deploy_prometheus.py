"""Prometheus scrape config, recording and alert rules (promtool), runbook links.

promtool comes with Debian's `prometheus` package (apt-get install prometheus);
the promtool tests skip only when it is missing. The other checks are pure.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RUNBOOK = ROOT / "deploy" / "RUNBOOK.md"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))

# Metrics of exporters the rules may use besides the pipeline's own.
EXPORTER_METRICS = {"up", "kafka_consumergroup_lag"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}
# What the alerts must cover (brief): metric or alert name -> alert.
REQUIRED_ALERTS = {
    "FeedbackConsumerLagHigh": "kafka_consumergroup_lag",
    "FeedbackDeadLettersRising": "feedback_dead_letters_total",
    "FeedbackEnrichmentErrorRateHigh": "feedback_events_processed_total",
    "FeedbackIndexingLatencyHigh": "feedback_ingest_to_index_seconds_bucket",
    "FeedbackNotificationFailures": "feedback_notifications_total",
    "FeedbackUrgentItemsWaiting": "feedback_urgent_items_total",
    "FeedbackUrgentUnacknowledged": "feedback_urgent_open_items",
    "FeedbackServiceDown": "up",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=120)


def pipeline_metric_names() -> set[str]:
    """Every sample name services/metrics.py exposes."""
    from prometheus_client.metrics import MetricWrapperBase

    from services import metrics

    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        base, kind = value._name, value._type
        if kind == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif kind in ("histogram", "summary"):
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
        else:
            names.add(base)
    return names


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects (functions, keywords and labels removed)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[m.end():].lstrip().startswith("("):
            continue  # a function or aggregation
        if m.group().lower() not in PROMQL_WORDS:
            names.add(m.group())
    return names


def rules() -> list[dict]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += group["rules"]
    return out


def github_anchor(heading: str) -> str:
    text = unicodedata.normalize("NFKD", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), re.M)}


# --- promtool -------------------------------------------------------------------------------------


def test_promtool_check_config():
    result = run_promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    result = run_promtool("check", "rules", *[str(p.relative_to(PROM)) for p in RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    result = run_promtool("test", "rules", "tests.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- pure checks --------------------------------------------------------------------------------------


def test_scrape_config_covers_every_service_on_its_port():
    from services.settings import SERVICE_PORTS

    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    targets = {sc["labels"]["service"]: sc["targets"] for sc in jobs["feedback"]["static_configs"]}
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICE_PORTS.items()}
    assert jobs["feedback"].get("metrics_path", "/metrics") == "/metrics"
    assert "kafka-exporter" in jobs
    assert sorted(config["rule_files"]) == sorted(f"rules/{p.name}" for p in RULE_FILES)


def test_rules_use_only_known_metrics():
    known = pipeline_metric_names() | EXPORTER_METRICS
    recorded = {r["record"] for r in rules() if "record" in r}
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known - recorded
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: unknown metrics {sorted(unknown)}"


def test_alerts_cover_the_required_signals():
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    recorded = {r["record"]: r["expr"] for r in rules() if "record" in r}
    for name, metric in REQUIRED_ALERTS.items():
        assert name in alerts, name
        expr = alerts[name]["expr"]
        used = metric_names(expr)
        for r in list(used):
            if r in recorded:
                used |= metric_names(recorded[r])
        assert metric in used, f"{name} does not use {metric}"
    assert 'status="failed"' in alerts["FeedbackNotificationFailures"]["expr"]


def test_every_alert_has_severity_summary_and_a_runbook_anchor():
    anchors = runbook_anchors()
    alerts = [r for r in rules() if "alert" in r]
    assert alerts
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = alert["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        url = annotations["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("deploy/RUNBOOK.md"), url
        assert anchor == name.lower(), url
        assert anchor in anchors, f"RUNBOOK.md has no section for {name}"


def test_runbook_covers_the_operations():
    text = RUNBOOK.read_text()
    for command in ("feedback replay", "feedback dlq redrive", "feedback contacts rotate-key", "feedback reindex"):
        assert command in text, command
    anchors = runbook_anchors()
    for section in ("deploy", "upgrade", "scale", "replay-a-topic", "redrive-dead-letters", "rotate-keys",
                    "rebuild-the-index"):
        assert section in anchors, section
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"broken link #{link}"


def test_alert_tests_exercise_every_alert():
    tests = yaml.safe_load((PROM / "tests.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])}
    firing = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert tested == alerts and firing == alerts
