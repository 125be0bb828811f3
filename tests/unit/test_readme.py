"""The README stays true: its configuration table and commands match the code."""
from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from services.cli import app
from services.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table():
    documented = set(re.findall(r"\| `(FEEDBACK_[A-Z0-9_]+)` \|", README))
    assert documented == {f"FEEDBACK_{name.upper()}" for name in Settings.model_fields}


def test_the_two_commands_come_first():
    first_block = README.split("```")[1]
    assert "./scripts/demo.sh" in first_block and "./scripts/test.sh" in first_block


def test_every_command_named_in_the_readme_exists():
    cli = get_command(app)
    for cmd in set(re.findall(r"`feedback ([a-z][a-z-]*)", README)):
        assert cmd in cli.commands, f"README names `feedback {cmd}` but there is no such command"
