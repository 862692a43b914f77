"""The SMTP sink over real SMTP: a real aiosmtpd server on a loopback port (port 0), real
smtplib clients, the durable intake in a SQLite file (embedded mode: processed in-process).

Refusals (relay, unknown recipients, oversize, malformed commands, too many recipients or
connections, a client vanishing mid-DATA) must be clear, store nothing, and never stop the
server from serving the next client.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import threading

import pytest
from bp_testing import wait_for
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.entrypoints import smtp_sink
from bounceproc.storage.tables import events, intake

ACCEPT = ("bounces.example.net", "fbl@example.org")
MSG = b"From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@bounces.example.net\r\nSubject: test\r\n\r\nhello\r\n"


@pytest.fixture
def sink(make_settings, sqlite_url):
    handles = []

    def start(**overrides):
        overrides.setdefault("sink_accept", ACCEPT)
        overrides.setdefault("database_url", sqlite_url)
        settings = make_settings(**overrides)
        h = smtp_sink.start_sink(settings, "127.0.0.1:0")
        handles.append(h)
        return h
    yield start
    for h in handles:
        h.stop()


def intake_count(settings) -> int:
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(func.count()).select_from(intake)).scalar()


def client(h) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", h.port, timeout=10)
    c.ehlo("client.example.com")
    return c


def up_to_data(s: socket.socket, f) -> bytes:
    """Raw-socket dialogue up to DATA; the reply to DATA."""
    reply = b""
    for line in (b"EHLO mta.example.com", b"MAIL FROM:<>", b"RCPT TO:<fbl@example.org>", b"DATA"):
        s.sendall(line + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
    return reply


def still_serves(h) -> None:
    c = client(h)
    c.mail("<>")
    assert c.rcpt("bounces+x=example.com@bounces.example.net")[0] == 250
    code, text = c.data(MSG)
    assert code == 250 and text.startswith(b"2.0.0")
    c.quit()


def test_relay_attempt_is_refused_at_rcpt_and_nothing_is_stored(sink):
    h = sink()
    c = client(h)
    c.mail("<spammer@example.com>")
    code, text = c.rcpt("victim@example.com")
    assert (code, text[:5]) == (550, b"5.7.1")
    assert b"Relaying denied" in text
    assert c.docmd("DATA")[0] == 503          # no accepted recipient: no DATA at all
    c.quit()
    assert intake_count(h.settings) == 0
    still_serves(h)


@pytest.mark.parametrize("address", [
    "victim%example.com@bounces.example.net",     # percent hack
    "example.com!victim@bounces.example.net",     # bang path
    "someone@sub.bounces.example.net",            # a subdomain is not the domain
    "other@example.org",                          # only fbl@ is accepted at example.org
    "fbl@example.org.evil.example",
])
def test_relay_tricks_and_unknown_recipients_are_refused(sink, address):
    h = sink()
    c = client(h)
    c.mail("<>")
    assert c.rcpt(address)[0] == 550
    c.quit()


def test_accepted_addresses_are_case_insensitive_in_domain_and_verp_local_parts_pass(sink):
    h = sink()
    c = client(h)
    c.mail("<>")
    assert c.rcpt("FBL@Example.ORG")[0] == 250
    assert c.rcpt("bounces+alice=example.com@BOUNCES.example.net")[0] == 250
    c.quit()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_mixed_recipients_store_only_the_accepted_ones(sink, db, request):
    # Both go through bootstrap.insert_intakes (PostgreSQL: one unnest statement over arrays;
    # SQLite: executemany); both must store the bytes exactly.
    h = sink() if db == "sqlite" else sink(database_url=request.getfixturevalue("pg_url"))
    c = client(h)
    c.mail("<>")
    assert c.rcpt("victim@example.com")[0] == 550
    assert c.rcpt("bounces+bob=example.com@bounces.example.net")[0] == 250
    code, text = c.data(MSG)
    c.quit()
    assert code == 250
    intake_id = int(text.rsplit(b" ", 1)[1])
    with bootstrap.engine(h.settings).connect() as conn:
        row = conn.execute(select(intake).where(intake.c.id == intake_id)).one()
    assert row.kind == "message"
    assert row.meta["rcpt_tos"] == ["bounces+bob=example.com@bounces.example.net"]
    assert row.meta["mail_from"] == ""
    assert bytes(row.payload) == MSG          # byte-exact, CRLF kept


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_group_commit_returns_each_message_its_own_id_in_order(db, make_settings, sqlite_url, request):
    # The writer answers session i with ids[i]: the ids must line up with the batch's messages.
    url = sqlite_url if db == "sqlite" else request.getfixturevalue("pg_url")
    settings = make_settings(database_url=url)
    batch = [smtp_sink._Item(MSG.replace(b"hello", b"hello %d" % i), f"sink:192.0.2.{i}",
                             {"mail_from": "", "rcpt_tos": [f"b+{i}@bounces.example.net"], "n": i}, None)
             for i in range(7)]
    ids = smtp_sink.commit_messages(settings, batch)
    assert len(set(ids)) == 7
    with bootstrap.engine(settings).connect() as conn:
        rows = {r.id: r for r in conn.execute(select(intake).where(intake.c.id.in_(ids)))}
    for i, intake_id in enumerate(ids):
        row = rows[intake_id]
        assert (bytes(row.payload), row.origin, row.meta["n"]) == (batch[i].payload, f"sink:192.0.2.{i}", i)
        assert (row.kind, row.state, row.attempts, row.batch_key) == ("message", "pending", 0, None)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_helo_and_mail_from_that_are_not_utf8_are_stored_not_refused(sink, db, request):
    # aiosmtpd decodes commands with surrogateescape (SMTPUTF8 on): the envelope keeps the bytes
    # as lone surrogates, which the intake's JSON meta must still store (as \u escapes).
    h = sink() if db == "sqlite" else sink(database_url=request.getfixturevalue("pg_url"))
    with socket.create_connection(("127.0.0.1", h.port), 10) as s, s.makefile("rb") as f:
        f.readline()
        for line in (b"EHLO mta\xe9.example.com", b"MAIL FROM:<caf\xe9@example.com>",
                     b"RCPT TO:<fbl@example.org>", b"DATA"):
            s.sendall(line + b"\r\n")
            reply = f.readline()
            while reply[3:4] == b"-":
                reply = f.readline()
        assert reply.startswith(b"354")
        s.sendall(MSG + b".\r\n")
        reply = f.readline()
    assert reply.startswith(b"250 2.0.0"), reply
    with bootstrap.engine(h.settings).connect() as conn:
        meta = conn.execute(select(intake.c.meta).where(intake.c.id == int(reply.split()[-1]))).scalar_one()
    assert (meta["helo"], meta["mail_from"]) == ("mta\udce9.example.com", "caf\udce9@example.com")


def test_dot_stuffed_lines_are_unstuffed_and_a_dot_ending_a_line_is_not_the_end(sink):
    h = sink()
    body = b"Subject: dots\r\n\r\n.leading dot\r\nends with a dot.\r\n..\r\n.\r\nlast\r\n"
    c = client(h)
    c.mail("<>")
    c.rcpt("fbl@example.org")
    code, text = c.data(body)                 # smtplib dot-stuffs; the sink must undo it
    c.quit()
    assert code == 250
    with bootstrap.engine(h.settings).connect() as conn:
        row = conn.execute(select(intake).where(intake.c.id == int(text.rsplit(b" ", 1)[1]))).one()
    assert bytes(row.payload) == body


def test_oversize_message_gets_552_5_3_4_declared_or_not(sink):
    h = sink(sink_max_message_size=2000)
    big = MSG + (b"x" * 70 + b"\r\n") * 50
    c = client(h)
    code, text = c.docmd("MAIL FROM:<> SIZE=5000")
    assert (code, text[:5]) == (552, b"5.3.4")
    c.rset()
    # Not declared: refused after the data, and the session goes on.
    c.docmd("MAIL FROM:<>")
    assert c.rcpt("fbl@example.org")[0] == 250
    code, text = c.data(big)
    assert (code, text[:5]) == (552, b"5.3.4")
    c.quit()
    assert intake_count(h.settings) == 0
    still_serves(h)


def test_too_many_recipients_get_452(sink):
    h = sink(sink_max_recipients=3)
    c = client(h)
    c.mail("<>")
    codes = [c.rcpt(f"b+u{i}=example.com@bounces.example.net")[0] for i in range(5)]
    assert codes == [250, 250, 250, 452, 452]
    assert c.data(MSG)[0] == 250
    c.quit()


def test_malformed_and_unknown_commands_are_refused_and_the_server_goes_on(sink):
    h = sink()
    c = client(h)
    assert c.docmd("MAIL FROM:not an address <<")[0] in (501, 553)
    c.docmd("MAIL FROM:<>")
    assert c.docmd("RCPT TO:<@>")[0] in (501, 553)
    assert c.docmd("RCPT", "TO:")[0] == 501
    for _ in range(4):
        assert c.docmd("XYZZY")[0] == 500
    assert c.docmd("XYZZY")[0] == 502        # five unknown commands: goodbye
    c.close()
    assert intake_count(h.settings) == 0
    still_serves(h)


def test_client_that_disconnects_mid_data_stores_nothing(sink):
    h = sink()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    assert up_to_data(s, f).startswith(b"354")
    s.sendall(b"Subject: half\r\n\r\nonly part of the body")
    f.close()                                     # the file holds the socket open otherwise
    s.close()
    wait_for(lambda: not h.sink.handler.connections, 10, "the sink to see the client go")
    assert intake_count(h.settings) == 0
    still_serves(h)
    assert intake_count(h.settings) == 1          # the complete message only


def test_too_many_connections_from_one_address_get_421(sink):
    h = sink(sink_max_connections_per_ip=2)
    held = [client(h), client(h)]
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    assert s.makefile("rb").readline().startswith(b"421 4.7.0")
    s.close()
    for c in held:
        c.quit()
    wait_for(lambda: not h.sink.handler.connections, 10, "the sink to close the held connections")
    still_serves(h)


def test_database_failure_answers_451_4_3_0_and_acknowledges_nothing(make_settings):
    # Nothing listens on port 1: the commit fails, the sender must keep the message and retry.
    settings = make_settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                             sink_accept=ACCEPT)
    h = smtp_sink.start_sink(settings, "127.0.0.1:0")
    try:
        c = client(h)
        c.mail("<>")
        c.rcpt("fbl@example.org")
        code, text = c.data(MSG)
        assert (code, text[:5]) == (451, b"4.3.0")
        c.quit()
    finally:
        h.stop()


def test_concurrent_sessions_share_commits_and_each_gets_its_own_id(sink):
    h = sink()
    ids, errors = [], []

    def send(n: int) -> None:
        try:
            c = client(h)
            for i in range(5):
                c.mail("<>")
                c.rcpt(f"b+u{n}-{i}=example.com@bounces.example.net")
                code, text = c.data(MSG.replace(b"hello", f"hello {n} {i}".encode()))
                assert code == 250, text
                ids.append(int(text.rsplit(b" ", 1)[1]))
            c.quit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(ids) == len(set(ids)) == 80
    assert intake_count(h.settings) == 80
    stats = h.sink.writer.stats
    assert stats.committed == 80 and stats.batches <= 80


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=sink.example.net", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl is needed to make a test certificate ({exc})")
    return str(cert), str(key)


def test_starttls_is_offered_and_works_when_a_certificate_is_configured(sink, tls_files):
    cert, key = tls_files
    h = sink(sink_tls_cert=cert, sink_tls_key=key)
    c = client(h)
    assert c.has_extn("starttls")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    assert c.starttls(context=ctx)[0] == 220
    c.ehlo("client.example.com")
    c.mail("<>")
    assert c.rcpt("fbl@example.org")[0] == 250
    code, text = c.data(MSG)
    assert code == 250
    c.quit()
    with bootstrap.engine(h.settings).connect() as conn:
        row = conn.execute(select(intake).where(intake.c.id == int(text.rsplit(b" ", 1)[1]))).one()
    assert row.meta["tls"] is True


def test_no_starttls_without_a_certificate(sink):
    h = sink()
    c = client(h)
    assert not c.has_extn("starttls")
    c.quit()


def test_embedded_sink_processes_what_it_accepted(sink):
    """No broker: the sink's enqueuer processes committed ids in-process."""
    h = sink()
    c = client(h)
    c.mail("<>")
    c.rcpt("bounces+bob=example.com@bounces.example.net")
    dsn = (b"From: MAILER-DAEMON@mx.example.com\r\nTo: bounces+bob=example.com@bounces.example.net\r\n"
           b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <embedded-1@mx.example.com>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Reporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; bob@example.com\r\n"
           b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b--\r\n")
    assert c.data(dsn)[0] == 250
    c.quit()

    def dsn_events():
        with bootstrap.engine(h.settings).connect() as conn:
            return conn.execute(select(events.c.type, events.c.recipient, events.c.status)
                                .where(events.c.source == "dsn")).all()
    rows = wait_for(dsn_events, 10, "the DSN's events")
    assert [tuple(r) for r in rows] == [("bounced", "bob@example.com", "5.1.1")]


def test_overlong_lines_that_real_mtas_send_are_accepted(sink):
    # Amazon SES DSNs carry 1,030-character lines; refusing them would lose the bounce.
    h = sink()
    c = client(h)
    c.mail("<>")
    c.rcpt("fbl@example.org")
    assert c.data(MSG + b"X-Long: " + b"y" * 1500 + b"\r\n")[0] == 250
    c.quit()


def test_proxy_protocol_records_the_real_client_address(sink):
    h = sink(sink_proxy_protocol=True)
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    f = s.makefile("rb")
    s.sendall(b"PROXY TCP4 192.0.2.55 192.0.2.1 40000 25\r\n")
    assert f.readline().startswith(b"220")
    assert up_to_data(s, f).startswith(b"354")
    s.sendall(MSG + b".\r\n")
    reply = f.readline()
    assert reply.startswith(b"250"), reply
    s.sendall(b"QUIT\r\n")
    s.close()
    with bootstrap.engine(h.settings).connect() as conn:
        row = conn.execute(select(intake).where(intake.c.id == int(reply.split()[-1]))).one()
    assert row.meta["peer"] == "192.0.2.55" and row.origin == "sink:192.0.2.55"


def test_without_proxy_header_when_one_is_expected_the_connection_is_dropped(sink):
    h = sink(sink_proxy_protocol=True)
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    s.sendall(b"EHLO mta.example.com\r\n")
    assert s.makefile("rb").readline() == b""      # closed, no greeting
    s.close()


def test_too_many_commands_on_one_connection_end_it_with_421(sink):
    h = sink(sink_max_commands=3)
    c = client(h)                              # commands outside a message: HELP, VRFY, ...
    assert [c.docmd("HELP")[0] for _ in range(3)] == [250, 250, 250]
    code, text = c.docmd("HELP")
    assert code == 421 and text.startswith(b"4.7.0")
    c.close()
    still_serves(h)


def test_messages_and_commands_are_counted_apart(sink):
    # issue 13, item 15: 5,000 MAIL commands used to end a busy MTA's connection with
    # "421 4.7.0 MAIL sent too many times"; messages have their own limit and a clear reply
    h = sink(sink_max_commands=3, sink_max_messages=5)
    c = client(h)
    for i in range(5):                          # more MAIL/RCPT/DATA/RSET/NOOP than max_commands
        c.mail("<>")
        assert c.rcpt(f"bounces+u{i}=example.com@bounces.example.net")[0] == 250
        assert c.data(MSG)[0] == 250
        assert c.rset()[0] == 250 and c.noop()[0] == 250
    code, text = c.mail("<>")
    assert (code, text) == (421, b"4.7.0 Too many messages on this connection, reconnect")
    c.close()
    assert intake_count(h.settings) == 5
    still_serves(h)


def test_the_default_message_limit_is_out_of_reach_of_a_busy_host():
    from bounceproc.config import load_settings
    assert load_settings().sink_max_messages >= 1_000_000
    assert smtp_sink.DEFAULT_MAX_MESSAGES >= 1_000_000
