"""The services and commands refuse the built-in development keys and tokens (and the published
CHANGE-ME examples) unless FEEDBACK_DEV_MODE is set, with one line naming what to change."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from services.cli import app
from services.settings import SECRET_SETTINGS, SERVICE_SECRETS, SERVICES, DevelopmentSecretsError, Settings, \
    get_settings

ROOT = Path(__file__).resolve().parents[2]
REAL = {"FEEDBACK_INGEST_API_KEYS": json.dumps({"app": "a" * 32, "survey": "s" * 32, "kiosk": "k" * 32}),
        "FEEDBACK_API_TOKENS": json.dumps({"lead": "t" * 32}),
        "FEEDBACK_LEAD_SERVICE_AREAS": json.dumps({"lead": ["*"]}),
        "FEEDBACK_PSEUDONYM_KEY": "p" * 48,
        "FEEDBACK_CONTACT_KEYS": json.dumps([Fernet.generate_key().decode()])}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FEEDBACK_* variable, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}, **extra}


def test_every_built_in_secret_is_named():
    found = Settings(dev_mode=False).development_secrets()
    assert found == [f"FEEDBACK_{n.upper()}" for n in SECRET_SETTINGS]
    with pytest.raises(DevelopmentSecretsError) as err:
        Settings(dev_mode=False).require_real_secrets()
    assert "FEEDBACK_PSEUDONYM_KEY" in str(err.value) and "FEEDBACK_DEV_MODE" in str(err.value)


def test_dev_mode_allows_them_and_real_secrets_need_no_dev_mode(monkeypatch: pytest.MonkeyPatch):
    Settings(dev_mode=True).require_real_secrets()
    for name, value in REAL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FEEDBACK_DEV_MODE", "false")
    real = Settings()
    assert real.development_secrets() == []
    real.require_real_secrets()


def test_one_built_in_value_among_real_ones_is_refused():
    dev_fernet = Settings.model_fields["contact_keys"].get_default(call_default_factory=True)[0]
    settings = Settings(dev_mode=False, contact_keys=[Fernet.generate_key().decode(), dev_fernet],
                        api_tokens={"lead": "t" * 32, "old": "dev-lead-token"})
    assert set(settings.development_secrets(("contact_keys", "api_tokens"))) == {
        "FEEDBACK_CONTACT_KEYS", "FEEDBACK_API_TOKENS"}


def test_the_published_examples_are_refused_too():
    example: dict[str, str] = {}
    for line in (ROOT / "deploy" / "compose" / ".env.example").read_text().splitlines():
        name, eq, value = line.partition("=")
        if eq and name in {f"FEEDBACK_{n.upper()}" for n in SECRET_SETTINGS}:
            example[name.removeprefix("FEEDBACK_").lower()] = value.strip("'")
    assert set(example) == set(SECRET_SETTINGS)
    settings = Settings(dev_mode=False, **{k: json.loads(v) if v[:1] in "[{" else v for k, v in example.items()})
    assert len(settings.development_secrets()) == len(SECRET_SETTINGS)


def test_a_service_refuses_to_start_in_one_line_naming_the_settings():
    out = subprocess.run([sys.executable, "-m", "services.cli", "run", "api"], cwd=ROOT, timeout=120,
                         env=clean_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for name in ("FEEDBACK_API_TOKENS", "FEEDBACK_PSEUDONYM_KEY", "FEEDBACK_CONTACT_KEYS", "FEEDBACK_DEV_MODE"):
        assert name in lines[0]
    assert "FEEDBACK_INGEST_API_KEYS" not in lines[0], "the api does not use the ingest keys"


def test_each_service_is_checked_for_the_secrets_it_uses():
    assert set(SERVICE_SECRETS) == set(SERVICES)
    assert all(set(names) <= set(SECRET_SETTINGS) for names in SERVICE_SECRETS.values())
    settings = Settings(dev_mode=False)
    assert settings.development_secrets(SERVICE_SECRETS["trends"]) == []
    # Workers seal dead letters with the contact key: the built-in one is refused there too.
    assert settings.development_secrets(SERVICE_SECRETS["enricher"]) == ["FEEDBACK_CONTACT_KEYS"]
    assert settings.development_secrets(SERVICE_SECRETS["ingest"]) == [
        "FEEDBACK_INGEST_API_KEYS", "FEEDBACK_PSEUDONYM_KEY", "FEEDBACK_CONTACT_KEYS"]


@pytest.mark.parametrize(("args", "setting"), [
    (["erase", "--ref", "r_" + "0" * 24], "FEEDBACK_PSEUDONYM_KEY"),
    (["contacts", "rotate-key", "--dry-run"], "FEEDBACK_CONTACT_KEYS"),
    (["import", "survey-csv", "x.csv", "--survey-id", "s1"], "FEEDBACK_INGEST_API_KEYS"),
])
def test_commands_that_use_secrets_refuse_them(monkeypatch: pytest.MonkeyPatch, args: list[str], setting: str):
    monkeypatch.setenv("FEEDBACK_DEV_MODE", "false")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert setting in result.output and "FEEDBACK_DEV_MODE" in result.output


def test_no_deployment_sets_dev_mode():
    manifests = [p for p in (ROOT / "deploy").rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml", ".example"}
                 or p.name == ".env.example"]
    assert manifests
    assert not [p for p in manifests if "FEEDBACK_DEV_MODE" in p.read_text(errors="replace")]
