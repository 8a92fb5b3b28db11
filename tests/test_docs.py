"""Docs that cannot rot: every CLI command is documented in docs/cli.md."""

from __future__ import annotations

import argparse

import pytest

from articleqa.cli import build_parser
from conftest import ROOT

CLI_DOC = ROOT / "docs" / "cli.md"


def commands() -> list[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


def test_the_cli_has_commands():
    assert {"build", "search", "ask", "info", "serve", "eval"} <= set(commands())


@pytest.mark.parametrize("command", commands())
def test_command_is_documented(command):
    assert CLI_DOC.exists(), f"{CLI_DOC} is missing"
    text = CLI_DOC.read_text(encoding="utf-8")
    assert f"articleqa {command}" in text, f"docs/cli.md does not mention `articleqa {command}`"
