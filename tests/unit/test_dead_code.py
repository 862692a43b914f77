"""No dead code: vulture reads bounceproc/ and workers/ and reports nothing.

What vulture cannot see being used (framework hooks, names read with getattr, public domain API)
is listed, with the reason, in tests/vulture_whitelist.py. Code used only by tests is not kept
alive by them: the tests are not read.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_vulture_finds_no_dead_code():
    proc = subprocess.run([sys.executable, "-m", "vulture", "bounceproc", "workers",
                           "tests/vulture_whitelist.py", "--min-confidence", "60"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stderr == "" and proc.stdout == "", proc.stdout + proc.stderr
    assert proc.returncode == 0


def test_vulture_reports_an_unused_function(tmp_path):
    (tmp_path / "m.py").write_text("def used():\n    return 1\n\n\ndef unused():\n    return used()\n")
    proc = subprocess.run([sys.executable, "-m", "vulture", str(tmp_path / "m.py"), "--min-confidence", "60"],
                          capture_output=True, text=True, timeout=60)
    assert "unused function 'unused'" in proc.stdout
