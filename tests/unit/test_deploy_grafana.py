"""Grafana provisioning and the pipeline dashboard (pure: no Grafana needed)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
COMPOSE_FILE = ROOT / "deploy" / "compose" / "docker-compose.yml"

EXPORTER_METRICS = {"up", "kafka_consumergroup_lag"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}
# What the dashboard must show (brief) -> a metric its queries must reach.
REQUIRED = {
    "throughput": "feedback_events_processed_total",
    "intake": "feedback_ingest_requests_total",
    "lag": "kafka_consumergroup_lag",
    "latency": "feedback_ingest_to_index_seconds_bucket",
    "dead letters": "feedback_dead_letters_total",
    "sentiment over time": "feedback_classified_total",
    "closure actions": "feedback_closure_actions_total",
    "closure rate": "feedback_closure_rate_ratio",
    "notification outcomes": "feedback_notifications_total",
}


def pipeline_metric_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    from services import metrics

    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            base, kind = value._name, value._type
            if kind == "counter":
                names |= {f"{base}_total", f"{base}_created"}
            elif kind in ("histogram", "summary"):
                names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
            else:
                names.add(base)
    return names


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if not expr[m.end():].lstrip().startswith("(") and m.group().lower() not in PROMQL_WORDS:
            names.add(m.group())
    return names


def recording_rules() -> dict[str, str]:
    out = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.update({r["record"]: r["expr"] for r in group["rules"] if "record" in r})
    return out


def panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_dashboards_parse_and_have_unique_ids():
    assert DASHBOARDS, "no dashboard JSON"
    uids = set()
    for path in DASHBOARDS:
        dash = load(path)
        assert dash["uid"] not in uids and dash["title"]
        uids.add(dash["uid"])
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), path.name


def test_every_panel_has_a_datasource_and_targets():
    for path in DASHBOARDS:
        dash = load(path)
        variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
        for p in panels(dash):
            if p["type"] == "row":
                continue
            where = f"{path.name}: {p['title']}"
            ds = p.get("datasource")
            assert ds and ds.get("type") == "prometheus" and ds.get("uid"), where
            if ds["uid"].startswith("${"):
                var = ds["uid"][2:-1]
                assert variables[var]["type"] == "datasource" and variables[var]["query"] == "prometheus", where
            assert p.get("targets"), where
            for t in p["targets"]:
                assert t.get("expr", "").strip() and t.get("refId"), where
            assert "gridPos" in p, where


def test_dashboard_metrics_exist():
    known = pipeline_metric_names() | EXPORTER_METRICS
    recorded = recording_rules()
    for path in DASHBOARDS:
        for p in panels(load(path)):
            for t in p.get("targets", []):
                unknown = metric_names(t["expr"]) - known - set(recorded)
                assert not unknown, f"{p['title']}: unknown metrics {sorted(unknown)} in {t['expr']}"


def test_dashboard_shows_the_required_signals():
    recorded = recording_rules()
    used: set[str] = set()
    for path in DASHBOARDS:
        for p in panels(load(path)):
            for t in p.get("targets", []):
                names = metric_names(t["expr"])
                used |= names
                for n in names & set(recorded):
                    used |= metric_names(recorded[n])
    for what, metric in REQUIRED.items():
        assert metric in used, f"no panel for {what} ({metric})"


def test_provisioning_matches_the_dashboard_and_compose():
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"]
    for path in DASHBOARDS:
        for var in load(path).get("templating", {}).get("list", []):
            if var["type"] == "datasource":
                assert var["current"]["value"] == ds["uid"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "feedback.yml").read_text())
    (provider,) = providers["providers"]
    grafana = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts[provider["options"]["path"]] == "../grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"
    assert grafana["environment"]["PROMETHEUS_URL"].startswith("http://prometheus:")
