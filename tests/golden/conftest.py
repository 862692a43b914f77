"""Golden-file options: `pytest tests/golden --update-golden` rewrites the expected .json files.

The option is registered here (not in the top-level conftest). pytest only reads pytest_addoption
from conftest files it loads at start-up, which includes this one when tests/golden is named on
the command line; BOUNCEPROC_UPDATE_GOLDEN=1 does the same from any invocation.
"""
from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the expected .json next to each fixture message")


@pytest.fixture
def update_golden(request) -> bool:
    try:
        flag = bool(request.config.getoption("--update-golden"))
    except ValueError:
        flag = False
    return flag or os.environ.get("BOUNCEPROC_UPDATE_GOLDEN") == "1"
