"""Golden-file options: `pytest tests/golden --update-golden` rewrites the expected .json files.

The option is registered here (not in the top-level conftest). pytest only reads pytest_addoption
from conftest files it loads at start-up, which includes this one when tests/golden is named on
the command line; BOUNCEPROC_UPDATE_GOLDEN=1 does the same from any invocation. Neither works
where `CI` is set: there a golden is checked, never rewritten (the test fails instead).
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
    flag = flag or os.environ.get("BOUNCEPROC_UPDATE_GOLDEN") == "1"
    if flag and os.environ.get("CI"):
        pytest.fail("goldens are not rewritten in CI (CI is set): unset BOUNCEPROC_UPDATE_GOLDEN / "
                    "--update-golden, or update them on a workstation and commit them")
    return flag
