"""`bounceproc sink`, `bounceproc reprocess` and `bounceproc complaints` as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bp_testing import stop_process

from bounceproc import bootstrap
from bounceproc.app.intake import process_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sink"


def run(settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    # Embedded settings (SQLite, no broker) need only the database and the data dir.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(BOUNCEPROC_DATABASE_URL=settings.db_url, BOUNCEPROC_DATA_DIR=settings.data_dir)
    return subprocess.run([str(Path(sys.executable).with_name("bounceproc")), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_sink_refuses_to_start_with_nothing_to_accept(make_settings, sqlite_url):
    r = run(make_settings(database_url=sqlite_url), "sink", "--listen", "127.0.0.1:0")
    assert r.returncode == 2 and "nothing to accept" in r.stderr


def test_sink_rejects_a_bad_listen_address(make_settings, sqlite_url):
    r = run(make_settings(database_url=sqlite_url), "sink", "--listen", "localhost", "--accept", "example.net")
    assert r.returncode == 2 and "HOST:PORT" in r.stderr


def test_complaints_and_reprocess_commands(make_settings, sqlite_url):
    settings = make_settings(database_url=sqlite_url)
    with bootstrap.engine(settings).begin() as conn:
        ids = [bootstrap.insert_intake(conn, "message", (FIXTURES / name).read_bytes(), origin="sink:192.0.2.1",
                                       meta={"rcpt_tos": ["fbl@example.net"]})
               for name in ("arf-redacted-tracking-header.eml", "arf-redacted-unattributed.eml")]
    process_messages(settings, ids)

    r = run(settings, "complaints", "--since", "2026-11-24", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {"dimension": "ip", "key": "192.0.2.10"}.items() <= next(x for x in rows if x["key"] == "192.0.2.10").items()
    assert next(x for x in rows if x["dimension"] == "all")["complaints"] == 2

    r = run(settings, "complaints", "--unattributed", "--since", "2026-11-24")
    assert r.returncode == 0 and "1 unattributed complaints" in r.stdout

    r = run(settings, "reprocess", "--since", "1h", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["messages"] == 2 and json.loads(r.stdout)["changed"] == 0

    r = run(settings, "reprocess", "--since", "last tuesday")
    assert r.returncode == 2 and "--since" in r.stderr


def _sink_accepts(settings, accept_args: list[str], rcpts: list[str]) -> list[int]:
    """Start `bounceproc sink` with these --accept arguments; the RCPT TO reply code of each rcpt."""
    import smtplib
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(BOUNCEPROC_DATABASE_URL=settings.db_url, BOUNCEPROC_DATA_DIR=settings.data_dir, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("bounceproc")), "sink", "--listen", "127.0.0.1:0",
                             *accept_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()          # the ready line; the process exits (EOF) if it fails
        assert "listening on 127.0.0.1:" in line, line + proc.stdout.read()
        port = int(line.split("127.0.0.1:", 1)[1].split(",", 1)[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("test.example.org")
            smtp.mail("")
            return [smtp.rcpt(r)[0] for r in rcpts]
    finally:
        stop_process(proc)


def test_sink_accept_is_repeatable_and_multi_valued(make_settings, sqlite_url):
    """Issue 13, item 8: `--accept A --accept B` and `--accept A B` both accept A and B."""
    settings = make_settings(database_url=sqlite_url)
    rcpts = ["x@bounces.example.test", "fbl@example.test", "other@example.test"]
    for accept in (["--accept", "bounces.example.test", "--accept", "fbl@example.test"],
                   ["--accept", "bounces.example.test", "fbl@example.test"]):
        codes = _sink_accepts(settings, accept, rcpts)
        assert codes[:2] == [250, 250] and codes[2] >= 500, (accept, codes)


def test_serve_and_sink_parse_both_accept_forms():
    from bounceproc.entrypoints.cli.main import build_parser
    parser = build_parser()
    for command in ("sink", "serve"):
        for argv in (["--accept", "a.example", "--accept", "b@example.net"], ["--accept", "a.example", "b@example.net"],
                     ["--accept", "a.example", "--accept", "b@example.net", "c.example"]):
            want = [a for a in argv if a != "--accept"]
            assert parser.parse_args([command, *argv]).accept == want
    assert parser.parse_args(["serve"]).accept is None
