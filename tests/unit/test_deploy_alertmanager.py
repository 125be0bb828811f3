"""Compose's Alertmanager: a valid config (amtool), wired to Prometheus and to the SMTP sink.

Needs `amtool` (Debian: apt-get install prometheus-alertmanager) for the config check.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_amtool_check_config():
    amtool = shutil.which("amtool")
    if not amtool:
        pytest.skip("amtool is not installed (apt-get install prometheus-alertmanager)")
    result = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_sends_alerts_to_alertmanager_which_mails_the_smtp_sink():
    document = yaml.safe_load((ROOT / "deploy" / "compose" / "docker-compose.yml").read_text())
    compose = document["services"]
    manager = compose["alertmanager"]
    assert "../alertmanager:/etc/alertmanager:ro" in manager["volumes"]
    assert manager["profiles"] == compose["prometheus"]["profiles"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for am in prometheus["alerting"]["alertmanagers"] for sc in am["static_configs"]
               for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    config = yaml.safe_load(CONFIG.read_text())
    host, _, port = config["global"]["smtp_smarthost"].partition(":")
    assert host in compose and host in manager["depends_on"], "the SMTP sink is a compose service"
    # The same SMTP server and port the pipeline's emails go to (${FEEDBACK_SMTP_PORT:-1025}).
    assert port in document["x-feedback-env"]["FEEDBACK_SMTP_PORT"]
    receivers = {r["name"]: r for r in config["receivers"]}
    used = {config["route"]["receiver"]} | {r["receiver"] for r in config["route"].get("routes", [])}
    assert used <= set(receivers)
    for name in used:
        assert all(c["to"].endswith(".example") for c in receivers[name]["email_configs"]), "fictional addresses"
