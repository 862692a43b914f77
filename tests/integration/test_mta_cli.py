"""`bounceproc mta` as an operator runs it: a subprocess that delivers, reloads its config on
SIGHUP, finishes and exits 0 on SIGTERM; and `bounceproc serve` starting the MTA when
`mta_config` is set."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from bp_testing import start_serve, stop_process
from mta_testing import FakeMx, free_port, mta_config, route, send, wait_for


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update({"BOUNCEPROC_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def test_mta_command_delivers_reloads_on_sighup_and_stops_on_sigterm(tmp_path):
    mx1, mx2 = FakeMx().start(), FakeMx().start()
    port = free_port()
    conf = mta_config(tmp_path, port, route("example.net", mx1.port))
    log = tmp_path / "mta.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "bounceproc", "mta", "--config", conf], stdout=fh,
                                stderr=subprocess.STDOUT, env=_env(tmp_path))
    try:
        wait_for(lambda: "MTA listening" in log.read_text() or proc.poll() is not None, 60, "the MTA to listen")
        send(port, "app@sender.test", ["a@example.net"])
        wait_for(lambda: mx1.received, what="delivery through mx1")
        assert "delivered 2.0.0" in wait_for(lambda: (lambda t: t if "delivered" in t else None)(log.read_text()),
                                             what="the delivery log line")
        mta_config(tmp_path, port, route("example.net", mx1.port) + route("other.example", mx2.port))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in log.read_text(), what="the reload")
        send(port, "app@sender.test", ["b@other.example"])     # a new queue, with the new settings
        wait_for(lambda: mx2.received, what="delivery through mx2 after the reload")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "MTA stopping" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        mx1.stop()
        mx2.stop()


def test_serve_starts_the_mta_when_configured(tmp_path):
    mx = FakeMx().start()
    port, api_port, smtp_port = free_port(), free_port(), free_port()
    conf = mta_config(tmp_path, port, route("example.net", mx.port))
    log = tmp_path / "serve.log"
    proc = None
    try:
        proc = start_serve(["serve", "--api", f"127.0.0.1:{api_port}", "--smtp", f"127.0.0.1:{smtp_port}"],
                           _env(tmp_path, BOUNCEPROC_MTA_CONFIG=conf), tmp_path, log)
        assert f"MTA listening on 127.0.0.1:{port}" in log.read_text()
        send(port, "app@sender.test", ["a@example.net"])
        wait_for(lambda: mx.received, what="delivery by the MTA inside serve")
    finally:
        if proc is not None:
            stop_process(proc, 30)
        mx.stop()


def test_mta_command_logs_json_lines_with_log_format_json(tmp_path):
    """Its logging is set up by bounceproc/logs.py like serve's, sink's and mailbox's: under
    --log-format json every stderr line is one JSON object, the delivery at info level."""
    import json
    mx = FakeMx().start()
    port = free_port()
    conf = mta_config(tmp_path, port, route("example.net", mx.port))
    err = tmp_path / "mta.err"
    with open(err, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "bounceproc", "--log-format", "json", "mta", "--config", conf],
                                stdout=subprocess.DEVNULL, stderr=fh, env=_env(tmp_path))
    try:
        wait_for(lambda: "MTA listening" in err.read_text() or proc.poll() is not None, 60, "the MTA to listen")
        send(port, "app@sender.test", ["a@example.net"])
        wait_for(lambda: "delivered 2.0.0" in err.read_text(), what="the delivery log line")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        mx.stop()
    records = [json.loads(line) for line in err.read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "info" and "delivered 2.0.0" in r["message"] for r in records), records
    assert any("MTA stopping" in r["message"] for r in records), records
