"""Logs an operator can follow (issue 14, item 7): `bounceproc --log-format json serve` writes JSON
lines only, one info line per processed message saying what happened to whom, and none of
aiosmtpd's per-session lines or its AUTH notice. A real serve subprocess and smtplib client."""
from __future__ import annotations

import json
import os
import smtplib
import time
from pathlib import Path

from bp_testing import start_serve, stop_process
from test_api_support import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_json_logs_one_line_per_message_and_no_library_noise(tmp_path):
    api, smtp = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(HOME=str(tmp_path), BOUNCEPROC_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = start_serve(["--log-format", "json", "serve", "--api", f"127.0.0.1:{api}", "--smtp", f"127.0.0.1:{smtp}",
                        "--accept", "bounces.example.net"], env, tmp_path, tmp_path / "out.log", tmp_path / "err.log")
    try:
        assert proc.poll() is None, (tmp_path / "err.log").read_text()
        with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as s:
            s.sendmail("", ["bounces+dave=example.com@bounces.example.net"],
                       (ROOT / "fixtures/sink/dsn-verp-garbled.eml").read_bytes())
        wanted = "dsn dave@example.com userunknown → suppressed (rule text-user-unknown)"
        deadline = time.monotonic() + 60
        while wanted not in (tmp_path / "err.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_process(proc)
    lines = (tmp_path / "err.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]           # every stderr line is a JSON object
    messages = [r["message"] for r in records]
    assert any(m.startswith("intake ") and m.endswith(wanted) for m in messages), messages
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert not [r for r in records if r["logger"].startswith(("mail.log", "aiosmtpd")) and r["level"] == "info"]
    assert not [m for m in messages if "AUTH" in m], messages
