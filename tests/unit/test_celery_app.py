"""workers/celery_app.py reads no settings when imported, and a worker without a broker refuses
to start instead of falling back to a guessed Redis URL."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import workers.celery_app as m
print("config-loaded" if "workers.celery_config" in sys.modules else "config-not-loaded")
try:
    print("broker", m.app.conf.broker_url, m.app.conf.task_default_queue)
except RuntimeError as exc:
    print("refused", exc)
"""


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=base | env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_reads_no_settings_and_no_broker_is_refused():
    out = _probe()
    assert out.splitlines()[0] == "config-not-loaded"
    assert "refused no broker configured: set BOUNCEPROC_BROKER_URL" in out


def test_the_broker_and_queue_come_from_the_settings():
    out = _probe(BOUNCEPROC_BROKER_URL="redis://127.0.0.1:6379/7", BOUNCEPROC_QUEUE="q-probe")
    assert out.splitlines()[1] == "broker redis://127.0.0.1:6379/7 q-probe"
