"""Set-up as an operator meets it (issue 14, items 1-3): the per-user data dir, read commands that
refuse a database that does not exist, `bounceproc db create`, one-line connection errors, the
schema line of `serve`, and `serve`'s sink accepting mail with no flag on loopback.

Every command runs as a subprocess of the installed CLI, with HOME in the test's directory and no
BOUNCEPROC_* variables from the calling environment."""
from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from bp_testing import start_serve, stop_process
from test_api_support import free_port

from bounceproc.config import SERVICE_DATA_DIR, default_data_dir

CLI = [sys.executable, "-m", "bounceproc"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOUNCEPROC_", "XDG_", "STATE_DIRECTORY"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", **extra)
    return env


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


def test_default_data_dir_is_per_user_or_the_service_dir():
    assert default_data_dir({"HOME": "/home/ann"}, uid=1000) == "/home/ann/.local/share/bounceproc"
    assert default_data_dir({"HOME": "/home/ann", "XDG_DATA_HOME": "/data/ann"}, uid=1000) == "/data/ann/bounceproc"
    assert default_data_dir({"HOME": "/home/ann", "XDG_DATA_HOME": "relative"}, uid=1000) == \
        "/home/ann/.local/share/bounceproc"
    assert default_data_dir({"HOME": "/root"}, uid=0) == "/root/.local/share/bounceproc"
    assert default_data_dir({"HOME": "/var/lib/pmta"}, uid=998) == SERVICE_DATA_DIR
    assert default_data_dir({"HOME": "/nonexistent"}, uid=65534) == SERVICE_DATA_DIR
    assert default_data_dir({}, uid=1000) == SERVICE_DATA_DIR
    assert default_data_dir({"STATE_DIRECTORY": "/var/lib/bp:/var/lib/other", "HOME": "/x"}, uid=1000) == "/var/lib/bp"


@pytest.mark.parametrize("command", [("show", "status"), ("show", "top"), ("show", "queues"),
                                     ("suppressions", "export"), ("complaints",), ("apikey", "list"),
                                     ("reprocess", "--since", "1d")])
def test_read_commands_refuse_a_missing_database_and_create_nothing(tmp_path, command):
    r = _run(tmp_path, *command)
    assert r.returncode == 1, r
    assert r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "no database at" in line and str(tmp_path / "home") in line
    assert not (tmp_path / "home" / ".local" / "share" / "bounceproc" / "bounceproc.db").exists()
    assert not (tmp_path / "bounceproc-data").exists()


def test_db_create_then_status_shows_the_database_and_data_dir_from_any_directory(tmp_path):
    r = _run(tmp_path, "db", "create")
    assert r.returncode == 0 and r.stderr.startswith("created: sqlite:///"), r
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = subprocess.run([*CLI, "show", "status"], env=_env(tmp_path), capture_output=True, text=True,
                            timeout=120, cwd=elsewhere)
    data_dir = tmp_path / "home" / ".local" / "share" / "bounceproc"
    assert status.returncode == 0, status
    assert f"data dir {data_dir}" in status.stdout and f"sqlite:///{data_dir}/bounceproc.db" in status.stdout
    assert _run(tmp_path, "db", "create").stderr.startswith("already there:")


def test_postgres_db_create_upgrade_and_one_line_errors(tmp_path, pg_template):
    _conn, _tmpl, created = pg_template
    name = f"bp_{uuid.uuid4().hex[:8]}_created"
    created.append(name)                               # dropped at the end of the session
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    r = _run(tmp_path, "db", "upgrade", BOUNCEPROC_DATABASE_URL=url)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"bounceproc: database {name!r} does not exist on the server ({url}): "
                                "create it with `bounceproc db create`")
    r = _run(tmp_path, "show", "status", BOUNCEPROC_DATABASE_URL=url)
    assert r.returncode == 1 and "db create" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _run(tmp_path, "db", "create", BOUNCEPROC_DATABASE_URL=url)
    assert r.returncode == 0 and r.stderr.startswith(f"created: {url} (schema at "), r
    r = _run(tmp_path, "db", "current", BOUNCEPROC_DATABASE_URL=url)
    assert r.returncode == 0 and r.stdout.strip() and not r.stderr, r
    port = free_port()                                  # nothing listens there
    r = _run(tmp_path, "show", "status", BOUNCEPROC_DATABASE_URL=f"postgresql://postgres:pw@127.0.0.1:{port}/x")
    assert r.returncode == 1
    line = r.stderr.strip()
    assert line.startswith(f"bounceproc: cannot connect to postgresql://postgres:***@127.0.0.1:{port}/x")
    assert "\n" not in line and "Traceback" not in line and ":pw@" not in line


def _start_serve(tmp_path: Path, *args: str, **extra: str) -> tuple[subprocess.Popen, str]:
    log_path = tmp_path / f"serve-{uuid.uuid4().hex[:6]}.log"
    proc = start_serve(["serve", *args], _env(tmp_path, **extra), tmp_path, log_path)
    return proc, log_path.read_text()


def test_serve_with_no_flags_accepts_mail_on_loopback_and_says_where_its_data_is(tmp_path):
    smtp_port = free_port()
    proc, out = _start_serve(tmp_path, BOUNCEPROC_API_LISTEN=f"127.0.0.1:{free_port()}",
                             BOUNCEPROC_SINK_LISTEN=f"127.0.0.1:{smtp_port}")
    try:
        data_dir = tmp_path / "home" / ".local" / "share" / "bounceproc"
        assert f"database sqlite:///{data_dir}/bounceproc.db, data dir {data_dir}" in out, out
        assert "schema up to date (revision " in out
        assert "accepting any recipient, as it listens on loopback only" in out
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            refused = s.sendmail("", ["bounces+someone=example.com@bounces.anything.example"],
                                 (Path(__file__).parents[2] / "fixtures/sink/dsn-verp-garbled.eml").read_bytes())
            assert refused == {}
            s.mail("")
            code, _ = s.rcpt("user%other@relay.example")          # relay tricks are still refused
            assert code == 550
    finally:
        stop_process(proc)


def test_serve_on_a_public_address_with_nothing_to_accept_says_how_to_set_it(tmp_path):
    proc, out = _start_serve(tmp_path, BOUNCEPROC_API_LISTEN=f"127.0.0.1:{free_port()}",
                             BOUNCEPROC_SINK_LISTEN=f"0.0.0.0:{free_port()}")
    try:
        assert "accepting nothing (set --accept or BOUNCEPROC_SINK_ACCEPT" in out, out
    finally:
        stop_process(proc)


def test_serve_on_postgres_at_head_does_not_say_not_migrated(tmp_path, fresh_pg_url):
    proc, out = _start_serve(tmp_path, BOUNCEPROC_API_LISTEN=f"127.0.0.1:{free_port()}",
                             BOUNCEPROC_SINK_LISTEN=f"127.0.0.1:{free_port()}", BOUNCEPROC_DATABASE_URL=fresh_pg_url)
    try:
        assert "schema up to date (revision " in out and "not migrated" not in out, out
    finally:
        stop_process(proc)
