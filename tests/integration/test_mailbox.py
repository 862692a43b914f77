"""Bounce / FBL mailboxes over IMAP and POP3 against a real Dovecot on loopback: each message is
committed to the intake before it is moved, flagged or deleted; a crash (or kill -9) between the
two stores it once; IDLE, TLS, password changes and server restarts are survived."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bp_testing import HTTPRequest, LoopbackHTTP
from dovecot_server import Dovecot, available
from forwarding import wrap
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.entrypoints.mailbox import MailboxReader, intake_committer, parse_mailbox_url
from bounceproc.storage.tables import events, intake, suppressions

FIX = Path(__file__).resolve().parents[2] / "fixtures"
REQUIRE = os.environ.get("BOUNCEPROC_REQUIRE_SERVICES") == "1"


@pytest.fixture
def dovecot():
    if not available():
        if REQUIRE:
            pytest.fail("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    d = Dovecot().start()
    yield d
    d.stop()


@pytest.fixture
def settings(make_settings, sqlite_url):
    return make_settings(database_url=sqlite_url)


def _password_file(tmp_path, password: str) -> str:
    p = tmp_path / "password"
    p.write_text(password + "\n")
    return str(p)


def _intake_rows(settings) -> list:
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(intake.c.origin, intake.c.state, intake.c.batch_key)
                            .where(intake.c.kind == "message").order_by(intake.c.id)).all()


def _count(settings, table, *where) -> int:
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def _imap(d: Dovecot, tmp_path, scheme: str = "imap", **opts):
    port = d.imaps_port if scheme == "imaps" else d.imap_port
    return parse_mailbox_url(f"{scheme}://{d.user.replace('@', '%40')}@127.0.0.1:{port}/INBOX",
                             password_file=_password_file(tmp_path, d.password), ca_file=str(d.cert), **opts)


def _wait(cond, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_imap_move_to_commits_then_moves_and_processes(dovecot, settings, tmp_path):
    arf = (FIX / "arf" / "abuse-report.eml").read_bytes()
    dsn = (FIX / "dsn" / "exim-mailbox-full.eml").read_bytes()
    for raw in (arf, dsn, wrap((FIX / "arf" / "microsoft-jmrp.eml").read_bytes(), "gmail")):
        dovecot.deliver(raw)
    reader = MailboxReader(_imap(dovecot, tmp_path, move_to="Processed"), intake_committer(settings))
    assert reader.run(once=True) == 3
    rows = _intake_rows(settings)
    assert len(rows) == 3 and {r.state for r in rows} == {"done"}
    assert {r.origin for r in rows} == {"mailbox:fbl@example.net@127.0.0.1/INBOX"}
    assert dovecot.folder_count("") == 0 and dovecot.folder_count("Processed") == 3
    assert _count(settings, events, events.c.type == "complained") == 2        # the forwarded one too
    assert _count(settings, suppressions, suppressions.c.reason == "complaint") == 2
    again = MailboxReader(_imap(dovecot, tmp_path, move_to="Processed"), intake_committer(settings))
    assert again.run(once=True) == 0 and len(_intake_rows(settings)) == 3


def test_the_mailbox_command_logs_like_serve_json_lines_with_log_format_json(dovecot, settings, tmp_path):
    """Its logging is set up by bounceproc/logs.py like serve's and sink's: one JSON object per
    stderr line under --log-format json, the message's outcome at info level."""
    import json
    dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
    env = dict(os.environ, BOUNCEPROC_DATABASE_URL=settings.db_url, BOUNCEPROC_DATA_DIR=settings.data_dir,
               BOUNCEPROC_SECRET_KEY=settings.secret_key)
    url = f"imap://{dovecot.user.replace('@', '%40')}@127.0.0.1:{dovecot.imap_port}/INBOX"
    r = subprocess.run([sys.executable, "-m", "bounceproc", "--log-format", "json", "mailbox", "--once", "--imap", url,
                        "--password-file", _password_file(tmp_path, dovecot.password), "--ca-file", str(dovecot.cert)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "1 message(s) stored" in r.stdout, r
    records = [json.loads(line) for line in r.stderr.splitlines()]
    assert any(x["level"] == "info" and "arf henry@example.com" in x["message"] for x in records), records


def test_imap_without_move_flags_and_skips_on_the_next_round(dovecot, settings, tmp_path):
    dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
    spec = _imap(dovecot, tmp_path)
    assert MailboxReader(spec, intake_committer(settings)).run(once=True) == 1
    assert dovecot.folder_count("") == 1                                   # kept, flagged
    assert MailboxReader(spec, intake_committer(settings)).run(once=True) == 0
    assert len(_intake_rows(settings)) == 1


class Crash(Exception):
    pass


def test_crash_between_commit_and_move_stores_once_and_moves_after_restart(dovecot, settings, tmp_path):
    dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
    commit = intake_committer(settings)

    def commit_then_die(raw, key, origin):
        commit(raw, key, origin)
        raise Crash("the process died after the commit, before the move")

    spec = _imap(dovecot, tmp_path, move_to="Processed")
    with pytest.raises(Crash):
        MailboxReader(spec, commit_then_die).run(once=True)
    assert len(_intake_rows(settings)) == 1 and dovecot.folder_count("") == 1
    assert MailboxReader(spec, commit).run(once=True) == 1                 # fetched again ...
    assert len(_intake_rows(settings)) == 1                                # ... stored once
    assert dovecot.folder_count("") == 0 and dovecot.folder_count("Processed") == 1
    assert _count(settings, events, events.c.type == "complained") == 1


def test_kill9_of_the_mailbox_command_loses_nothing_and_stores_nothing_twice(dovecot, make_settings,
                                                                            fresh_pg_url, tmp_path):
    s = make_settings(database_url=fresh_pg_url)
    base = (FIX / "arf" / "abuse-report.eml").read_bytes()
    n = 60
    for i in range(n):
        dovecot.deliver(base.replace(b"Message-ID: <", f"Message-ID: <k{i}-".encode(), 1))
    env = dict(os.environ, BOUNCEPROC_DATABASE_URL=fresh_pg_url, BOUNCEPROC_DATA_DIR=s.data_dir,
               BOUNCEPROC_SECRET_KEY=s.secret_key)
    url = f"imap://{dovecot.user.replace('@', '%40')}@127.0.0.1:{dovecot.imap_port}/INBOX"
    cmd = [sys.executable, "-m", "bounceproc", "mailbox", "--imap", url, "--password-file",
           _password_file(tmp_path, dovecot.password), "--move-to", "Processed", "--poll", "1",
           "--ca-file", str(dovecot.cert)]
    log = tmp_path / "first.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err)
    try:
        assert _wait(lambda: len(_intake_rows(s)) >= random.Random(7).randint(5, 20), 60), log.read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: dovecot.folder_count("Processed") == n and dovecot.folder_count("") == 0, 90)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    keys = [r.batch_key for r in _intake_rows(s)]
    assert len(keys) == len(set(keys)) == n                                # each message stored once


def test_idle_wakes_on_new_mail_and_a_password_change_and_restart_are_survived(dovecot, settings, tmp_path):
    spec = _imap(dovecot, tmp_path, move_to="Processed", poll=600)        # only IDLE can wake it in time
    stop = threading.Event()
    reader = MailboxReader(spec, intake_committer(settings), stop)
    t = threading.Thread(target=reader.run, daemon=True)
    t.start()
    try:
        assert _wait(lambda: reader.rounds >= 1)
        dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
        assert _wait(lambda: reader.stored == 1), dovecot.log()
        dovecot.stop(remove=False)
        dovecot.set_password("rotated-2")
        Path(spec.password_file).write_text("rotated-2\n")
        dovecot.start()
        dovecot.deliver((FIX / "arf" / "microsoft-jmrp.eml").read_bytes())
        assert _wait(lambda: reader.stored == 2, 60), (reader.last_error, dovecot.log())
    finally:
        stop.set()
        t.join(30)
    assert dovecot.folder_count("Processed") == 2


def test_tls_imaps_and_pop3s_and_pop3_deletes_after_commit(dovecot, settings, tmp_path):
    dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
    assert MailboxReader(_imap(dovecot, tmp_path, "imaps", delete=True), intake_committer(settings)).run(once=True) == 1
    assert dovecot.folder_count("") == 0
    for raw in ((FIX / "arf" / "microsoft-jmrp.eml").read_bytes(), (FIX / "dsn" / "exim-mailbox-full.eml").read_bytes()):
        dovecot.deliver(raw)
    pw = _password_file(tmp_path, dovecot.password)
    for scheme, port in (("pop3s", dovecot.pop3s_port), ("pop3", dovecot.pop3_port)):
        spec = parse_mailbox_url(f"{scheme}://{dovecot.user.replace('@', '%40')}@127.0.0.1:{port}",
                                 password_file=pw, ca_file=str(dovecot.cert))
        MailboxReader(spec, intake_committer(settings)).run(once=True)
    assert dovecot.folder_count("") == 0
    assert len(_intake_rows(settings)) == 3
    assert {r.origin for r in _intake_rows(settings)} >= {"mailbox:fbl@example.net@127.0.0.1"}


def test_wrong_password_is_a_clear_error_and_stores_nothing(dovecot, settings, tmp_path):
    dovecot.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
    spec = parse_mailbox_url(f"imap://{dovecot.user.replace('@', '%40')}@127.0.0.1:{dovecot.imap_port}/INBOX",
                             password_file=_password_file(tmp_path, "wrong"), ca_file=str(dovecot.cert))
    import imaplib
    with pytest.raises(imaplib.IMAP4.error):
        MailboxReader(spec, intake_committer(settings)).run(once=True)
    assert _intake_rows(settings) == [] and dovecot.folder_count("") == 1


class Introspection:
    """An OAuth2 token introspection endpoint for Dovecot's oauth2 passdb: `tokens` are active."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens, self.asked = tokens, []
        self.http = LoopbackHTTP(self._answer)
        self.url = self.http.url("/introspect")

    def _answer(self, request: HTTPRequest) -> tuple[int, dict, bytes]:
        import json
        from urllib.parse import parse_qs
        token = parse_qs(request.body.decode()).get("token", [""])[0]
        self.asked.append(token)
        out = json.dumps({"active": token in self.tokens, "username": "fbl@example.net"}).encode()
        return 200, {"Content-Type": "application/json"}, out

    def close(self) -> None:
        self.http.close()


def test_oauth2_xoauth2_with_a_token_command_for_imap_and_pop3(settings, tmp_path):
    if not available():
        pytest.skip("dovecot is not installed")
    idp = Introspection({"token-1"})
    d = Dovecot(oauth2_introspection_url=idp.url).start()
    try:
        d.deliver((FIX / "arf" / "abuse-report.eml").read_bytes())
        token_file = tmp_path / "token"
        token_file.write_text("token-1\n")
        command = f"cat {token_file}"                                     # e.g. an MSAL / oauth2l call
        imap = parse_mailbox_url(f"imap://{d.user.replace('@', '%40')}@127.0.0.1:{d.imap_port}/INBOX",
                                 oauth2_token_command=command, ca_file=str(d.cert), move_to="Processed")
        assert MailboxReader(imap, intake_committer(settings)).run(once=True) == 1
        d.deliver((FIX / "arf" / "microsoft-jmrp.eml").read_bytes())
        idp.tokens = {"token-2"}                                          # the token was rotated
        token_file.write_text("token-2\n")
        pop3 = parse_mailbox_url(f"pop3://{d.user.replace('@', '%40')}@127.0.0.1:{d.pop3_port}",
                                 oauth2_token_command=command, ca_file=str(d.cert))
        assert MailboxReader(pop3, intake_committer(settings)).run(once=True) == 1
        assert idp.asked == ["token-1", "token-2"]
        assert len(_intake_rows(settings)) == 2
    finally:
        d.stop()
        idp.close()
