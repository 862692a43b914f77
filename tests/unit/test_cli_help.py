"""`bounceproc --help` describes the product, and every command has a description, help for each
argument, the BOUNCEPROC_* variables it reads and an example (issue 14, item 5); no `%%`
artefacts; `--version` prints the one version."""
from __future__ import annotations

import argparse
import contextlib
import io

import pytest

import bounceproc
from bounceproc.entrypoints.cli import help_text
from bounceproc.entrypoints.cli.main import build_parser, main

LEAVES = list(help_text.leaves(build_parser()))


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return out.getvalue()


def test_top_level_help_describes_the_product_and_version():
    text = _help(["--help"])
    assert "Bounce and feedback-loop processing" in text and "argument parsing" not in text
    assert "BOUNCEPROC_CONFIG" in text
    assert _help(["--version"]).strip() == f"bounceproc {bounceproc.__version__}"


def test_every_command_is_in_the_help_table():
    assert sorted(path for path, _ in LEAVES) == sorted(help_text.COMMANDS)


@pytest.mark.parametrize("path,parser", LEAVES, ids=[p for p, _ in LEAVES])
def test_every_command_has_description_argument_help_variables_and_example(path, parser):
    assert len(parser.description or "") > 20, path
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"{path}: {action.dest} has no help"
    text = _help(path.split() + ["--help"])
    assert "environment: " in text and "BOUNCEPROC_" in text.split("environment: ")[1]
    assert "example:" in text or "examples:" in text
    assert "%%" not in text and "%(" not in text
