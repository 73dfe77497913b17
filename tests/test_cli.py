"""The command line: every command documents itself; errors map to exit codes."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from littrack.cli import cli

COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help.strip()) > 20, f"{name} is missing its help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} is missing its help"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_main_help_lists_every_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "littrack", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_readme_mentions_every_command() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"littrack {name}" in readme, f"README does not document `littrack {name}`"


def test_unknown_topic_is_a_config_error() -> None:
    result = CliRunner().invoke(cli, ["--config", "config/littrack.toml", "run", "--topic",
                                      "no-such-topic"])
    assert result.exit_code == 2
    assert "unknown topic 'no-such-topic'" in result.output


def test_bad_source_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["run", "--source", "embase"])
    assert result.exit_code == 2
