"""CLI conventions: --version, --help on every command, one-line errors, python -m."""

from __future__ import annotations

import pytest
from conftest import run_cli

from nb2prod import __version__
from nb2prod.cli import build_parser

COMMANDS = [
    name
    for action in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    for name in action.choices
]


def test_version() -> None:
    result = run_cli("--version")
    assert (result.code, result.stdout.strip()) == (0, f"nb2prod {__version__}")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.code == 0
    assert result.stdout.startswith(f"usage: nb2prod {command}")


def test_no_command_shows_help_and_exits_2() -> None:
    result = run_cli()
    assert result.code == 2 and "usage: nb2prod" in result.stderr
