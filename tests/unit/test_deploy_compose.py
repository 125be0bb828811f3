"""The docker-compose deployment, the Dockerfile and the image's constraints.

Pure checks: `docker-compose config` only parses and interpolates the file; no
Docker engine is needed. Needs `docker-compose` (Debian: apt-get install
docker-compose) or the `docker compose` plugin for the config tests.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
CONSTRAINTS = COMPOSE_DIR / "constraints.txt"

from devstack.kafka import KAFKA_VERSION  # noqa: E402
# Every service of services/settings.SERVICE_PORTS: a new service must be deployed too.
from services.settings import SERVICE_PORTS  # noqa: E402

PIPELINE = tuple(SERVICE_PORTS)
FEEDBACK_JOBS = ("topics-create", "es-setup")


def compose_command() -> list[str] | None:
    """docker-compose (v1) or `docker compose` (v2), whichever is installed."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def clean_env() -> dict[str, str]:
    """The environment without settings that would override the env file."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def run_config(env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return subprocess.run([*cmd, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", *extra],
                          cwd=ROOT, capture_output=True, text=True, env=clean_env(), timeout=120)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value.strip("'\"")
    return out


# --- docker-compose config ---------------------------------------------------------


def test_compose_config_is_valid_with_example_env():
    result = run_config(ENV_EXAMPLE, "-q")
    assert result.returncode == 0, result.stderr


def test_compose_config_resolves_every_service():
    result = run_config(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    for name in (*PIPELINE, *FEEDBACK_JOBS, "kibana-import", "kafka", "elasticsearch", "kibana", "mailpit",
                 "es-snapshots-init", "es-backup-setup"):
        assert name in services, name
    for name in PIPELINE:
        env = services[name]["environment"]
        assert env["FEEDBACK_ES_PASSWORD"] == env_example()["FEEDBACK_ES_PASSWORD"]
        assert env["FEEDBACK_INGEST_API_KEYS"].startswith("{"), "JSON survives the env file"


def _published(resolved: dict[str, Any]) -> dict[str, list[str]]:
    """Published ports per service of a resolved file (short syntax, as `config` prints them)."""
    return {name: [str(p) for p in svc.get("ports", [])] for name, svc in resolved["services"].items()
            if svc.get("ports")}


def test_every_published_port_binds_to_loopback_unless_asked(tmp_path):
    resolved = yaml.safe_load(run_config(ENV_EXAMPLE).stdout)
    published = _published(resolved)
    assert {"ingest", "api", "kafka", "elasticsearch", "kibana", "mailpit"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    # Every port in the file, the monitoring profile's too, names its host address.
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert re.match(r"(127\.0\.0\.1|\$\{FEEDBACK_BIND:-127\.0\.0\.1\}):", port), f"{name}: {port}"
    # Asked for: FEEDBACK_BIND publishes ingest and api on another interface, nothing else.
    env = tmp_path / "wide.env"
    env.write_text(ENV_EXAMPLE.read_text().replace("FEEDBACK_BIND=127.0.0.1", "FEEDBACK_BIND=0.0.0.0"))
    wide = _published(yaml.safe_load(run_config(env).stdout))
    assert {n for n, ports in wide.items() if any(p.startswith("0.0.0.0:") for p in ports)} == {"ingest", "api"}


def test_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_config(empty, "-q")
    assert result.returncode != 0
    assert "set " in result.stderr and ".env" in result.stderr, result.stderr


# --- structure (no binary needed) ---------------------------------------------------


def test_every_pipeline_service_has_healthcheck_restart_and_dependencies():
    services = compose()["services"]
    for name in PIPELINE:
        svc = services[name]
        assert svc["command"] == ["run", name]
        assert svc["restart"] == "unless-stopped", name
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"], name
        assert svc["cap_drop"] == ["ALL"], name
        test = " ".join(svc["healthcheck"]["test"])
        assert "/ready" in test, name
        deps = svc["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["elasticsearch"]["condition"] == "service_healthy"
        assert deps["topics-create"]["condition"] == "service_completed_successfully"
        assert deps["es-setup"]["condition"] == "service_completed_successfully"
    for name in ("kafka", "elasticsearch", "kibana", "mailpit"):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["kibana-import"]["depends_on"]["kibana"]["condition"] == "service_healthy"


def cli_options(*path: str) -> set[str]:
    """The option names of a `feedback` subcommand, e.g. cli_options("es", "backup-setup")."""
    from typer.main import get_command

    from services.cli import app

    cmd = get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return {opt for param in cmd.params for opt in param.opts}


def test_elasticsearch_has_a_snapshot_volume_and_the_backup_job_registers_it():
    file = compose()
    services = file["services"]
    es = services["elasticsearch"]
    repo = es["environment"]["path.repo"]
    assert f"es-snapshots:{repo}" in es["volumes"] and "es-snapshots" in file["volumes"]
    assert es["depends_on"]["es-snapshots-init"]["condition"] == "service_completed_successfully"
    init = services["es-snapshots-init"]
    assert init["image"] == es["image"] and "es-snapshots:/snapshots" in init["volumes"]
    assert "chown 1000:0 /snapshots" in " ".join(init["command"]), "Elasticsearch runs as uid 1000"
    job = services["es-backup-setup"]
    args = job["command"]
    assert args[:2] == ["es", "backup-setup"]
    assert {a for a in args if a.startswith("--")} <= cli_options("es", "backup-setup")
    location = args[args.index("--location") + 1]
    assert location.startswith(repo + "/"), "the repository must lie inside path.repo"
    env = job["environment"]
    assert set(file["x-feedback-env"]) <= set(env)
    assert env["FEEDBACK_ES_USERNAME"] == "elastic" and env["FEEDBACK_ES_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
    assert job["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert job["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"
    assert job["restart"] == "no" and job["read_only"] is True


def test_services_share_the_feedback_env_anchor():
    from services.settings import SERVICE_PORTS

    services = compose()["services"]
    shared = compose()["x-feedback-env"]
    for name in (*PIPELINE, *FEEDBACK_JOBS):
        env = services[name]["environment"]
        extra = set(env) - set(shared)
        assert set(shared) <= set(env), name
        if name in PIPELINE:
            assert extra == {"FEEDBACK_PORT"}, name
            assert int(env["FEEDBACK_PORT"]) == SERVICE_PORTS[name]
            assert f"127.0.0.1:{SERVICE_PORTS[name]}/ready" in " ".join(services[name]["healthcheck"]["test"])
        else:
            assert not extra, name


def test_every_variable_is_a_setting_and_secrets_come_from_env_file():
    from pydantic import SecretStr

    from services.settings import Settings

    shared = compose()["x-feedback-env"]
    fields = Settings.model_fields
    for key, value in shared.items():
        field = key.removeprefix("FEEDBACK_").lower()
        assert key.startswith("FEEDBACK_") and field in fields, f"{key} is not a setting"
        if "SecretStr" in str(fields[field].annotation) or fields[field].annotation is SecretStr:
            assert re.fullmatch(r"\$\{[A-Z_]+(:[?-][^}]*)?\}", str(value)), f"{key} must come from .env"


def test_env_example_defines_every_required_variable_with_placeholders():
    text = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    example = env_example()
    assert required <= set(example), sorted(required - set(example))
    secrets = [k for k in example if re.search(r"PASSWORD|KEY|TOKEN", k) and example[k]]
    assert secrets
    for key in secrets:
        if key in ("KAFKA_CLUSTER_ID",):
            continue
        assert "change-me" in example[key].lower() or key == "FEEDBACK_CONTACT_KEYS", f"{key} looks real"


def test_images_are_pinned():
    for name, svc in compose()["services"].items():
        image = svc.get("image", "")
        if image.startswith("${FEEDBACK_IMAGE"):
            continue
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_versions_match_the_supported_ones():
    services = compose()["services"]
    # Compose runs the Kafka release the local stack and the tests run.
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert "8.19." in services["elasticsearch"]["image"] and "8.19." in services["kibana"]["image"]
    assert env_example()["ELASTIC_VERSION"].startswith("8.19.")


# --- Dockerfile and .dockerignore -------------------------------------------------------


def test_dockerfile_is_multistage_non_root_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) >= 2 and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert "/health" in text
    assert "--constraint" in text and "download.pytorch.org/whl/cpu" in text
    assert "HF_HUB_OFFLINE=1" in text, "no weights download at run time"
    assert 'ENTRYPOINT ["feedback"]' in text
    assert "/models/" in text and "multilingual-e5-small" in text


def test_dockerignore_keeps_secrets_and_venv_out_but_the_build_inputs_in():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    for pattern in (".git", ".venv", ".env", "tests"):
        assert pattern in lines, pattern
    assert "!deploy/kibana" in lines and "!deploy/compose/constraints.txt" in lines
    assert not any(ln.startswith("models") for ln in lines), "models/ is a build input"


def test_constraints_pin_every_dependency_within_pyproject():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version
    for dep in project["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} missing from {CONSTRAINTS.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} vs {req.specifier}"
    assert "torch" in pins
    assert not any(n.startswith(("nvidia-", "cuda-")) for n in pins), "GPU wheels stay out of the CPU image"


# --- obsolete keys and memory ---------------------------------------------------------------


def test_no_obsolete_top_level_version_key():
    """The Compose Specification has no `version:`; docker compose v2 warns that it is obsolete."""
    assert "version" not in compose()
    assert not re.search(r"^version:", COMPOSE_FILE.read_text(), re.M)


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", str(size).lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def _readme_memory_table() -> dict[str, str]:
    text = (COMPOSE_DIR / "README.md").read_text()
    section = text.split("## Memory", 1)[1].split("\n## ", 1)[0]
    limits: dict[str, str] = {}
    for row in re.findall(r"^\| ([^|]+) \| [^|]+ \| (\d+[kmg]) \|", section, re.M):
        for name in row[0].split(","):
            limits[name.strip()] = row[1]
    return limits


def test_every_service_has_a_memory_limit_documented_with_its_measurement():
    services = compose()["services"]
    table = _readme_memory_table()
    for name, svc in services.items():
        assert "mem_limit" in svc, f"{name}: no mem_limit (deploy.resources is ignored by docker-compose 1.x)"
        assert "deploy" not in svc, f"{name}: use mem_limit, which both compose versions apply"
        assert table.get(name) == str(svc["mem_limit"]), f"{name}: README 'Memory' table says {table.get(name)}"
    assert set(table) == set(services), "the README table lists services compose does not have"
    # Pipeline services: at least the 256 MiB floor (the README's headroom rule).
    for name in (*PIPELINE, *FEEDBACK_JOBS):
        assert _bytes(services[name]["mem_limit"]) >= 256 * 1024**2, name


def test_jvm_limits_leave_room_beside_the_heap():
    """Kafka needs off-heap memory beside its heap; Elasticsearch half the memory for Lucene."""
    services = compose()["services"]
    kafka_heap = re.search(r"-Xmx(\w+)", services["kafka"]["environment"]["KAFKA_HEAP_OPTS"]).group(1)
    assert _bytes(services["kafka"]["mem_limit"]) >= 1.5 * _bytes(kafka_heap)
    es_opts = re.search(r":-([^}]+)\}", services["elasticsearch"]["environment"]["ES_JAVA_OPTS"]).group(1)
    es_heap = re.search(r"-Xmx(\w+)", es_opts).group(1)
    assert _bytes(services["elasticsearch"]["mem_limit"]) >= 2 * _bytes(es_heap)
