"""The bundled MTA end to end on loopback: smtplib injects, aiosmtpd servers play the remote MXes,
a dnslib server answers MX lookups, a FakeClock replaces waiting for retries."""
from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from mta_testing import acct_records, DnsServer, FakeMx, SilentServer, free_port, mta_config, mxes, route, send, wait_for  # noqa: F401

from bounceproc.domain.mta.queue_state import QueueMode
from bounceproc.mta.clock import FakeClock
from bounceproc.mta.service import MtaService


class Harness:
    def __init__(self, tmp_path: Path, body: str, clock=None, hooks=None):
        self.dir = tmp_path
        self.port = free_port()
        self.conf = Path(mta_config(tmp_path, self.port, body, acct="d,b,t,tq,r", source=(
            "  process-x-virtual-mta yes\n  process-x-job yes\n  max-message-size 64k\n  max-rcpt-per-message 5\n")))
        self.clock = clock
        self.svc = MtaService(str(self.conf), clock=clock, hooks=hooks).start()

    @property
    def mta(self):
        return self.svc.mta

    def advance(self, seconds: float) -> None:
        self.svc.call(self.clock.advance, seconds)

    def records(self, rtype: str | None = None) -> list[dict]:
        return acct_records(self.dir / "acct", rtype)

    def wait_records(self, rtype: str, n: int, timeout: float = 30.0) -> list[dict]:
        return wait_for(lambda: (lambda r: r if len(r) >= n else None)(self.records(rtype)), timeout,
                        f"{n} {rtype!r} records")

    def queue(self, domain: str, vmta: str = ""):
        return self.svc.call(self.mta.queue, domain, vmta)

    def stop(self):
        self.svc.stop()


@pytest.fixture
def harness(tmp_path):
    made = []

    def make(body: str = "", clock=None, hooks=None) -> Harness:
        h = Harness(tmp_path, body, clock, hooks)
        made.append(h)
        return h
    yield make
    for h in made:
        h.stop()


def test_delivers_and_writes_acct_then_the_spool_is_empty(harness, mxes):
    mx = mxes()
    h = harness(route("example.net", mx.port, "  max-rcpt-per-transaction 2\n"))
    send(h.port, "app@sender.test", ["u1@example.net", "u2@example.net", "u3@example.net"])
    wait_for(lambda: sorted(mx.rcpts()) == ["u1@example.net", "u2@example.net", "u3@example.net"], what="delivery")
    assert max(len(m.rcpts) for m in mx.received) == 2          # max-rcpt-per-transaction
    d = h.wait_records("d", 3)
    assert {r["rcpt"] for r in d} == {"u1@example.net", "u2@example.net", "u3@example.net"}
    assert d[0]["dsnAction"] == "relayed" and d[0]["dsnStatus"].startswith("2.0.0")
    assert d[0]["queue"] == "example.net/{default}" and d[0]["orig"] == "app@sender.test"
    assert len(h.records("r")) == 3
    h.stop()
    assert not list((h.dir / "spool").glob("seg-*"))            # finished messages are removed


def test_relaying_refused_to_an_unlisted_source(harness, mxes):
    mx = mxes()
    h = harness(route("example.net", mx.port))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(h.port, "app@sender.test", ["u1@example.net"], source="127.0.0.2")
    code, text = e.value.recipients["u1@example.net"]
    assert code == 550 and text.startswith(b"5.7.1")


def test_size_and_recipient_limits(harness, mxes):
    mx = mxes()
    h = harness(route("example.net", mx.port))
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as e:
        send(h.port, "app@sender.test", ["u1@example.net"], b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 1000)
    assert e.value.smtp_code == 552 and e.value.smtp_error.startswith(b"5.3.4")     # at MAIL (SIZE=)
    with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as s:                         # or at DATA
        s.ehlo()
        assert s.mail("app@sender.test")[0] == 250
        s.rcpt("u1@example.net")
        code, text = s.data(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 1000)
    assert code == 552 and text.startswith(b"5.3.4")
    with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as s:
        s.ehlo()
        s.mail("app@sender.test")
        codes = [s.rcpt(f"u{i}@example.net")[0] for i in range(6)]
    assert codes == [250] * 5 + [452]


def test_x_virtual_mta_and_x_job_are_honoured_and_removed(harness, mxes):
    mx = mxes()
    h = harness("<virtual-mta v1>\n  smtp-source-host 127.0.0.1 out1.mta.test\n</virtual-mta>\n"
                + route("example.net", mx.port))
    send(h.port, "app@sender.test", ["u1@example.net"],
         b"X-Virtual-MTA: v1\r\nX-Job: job42\r\nSubject: hi\r\n\r\nhello\r\n")
    wait_for(lambda: mx.received, what="delivery")
    assert b"X-Virtual-MTA" not in mx.received[0].data and b"X-Job" not in mx.received[0].data
    d = h.wait_records("d", 1)[0]
    assert d["vmta"] == "v1" and d["jobId"] == "job42" and d["queue"] == "example.net/v1"
    assert d["dlvSourceIp"] == "127.0.0.1" and mx.received[0].helo == "out1.mta.test"


def test_5xx_bounces_at_once_with_a_dsn_to_the_sender_never_for_a_null_sender(harness, mxes):
    bad, inbox = mxes("reject"), mxes()
    h = harness(route("example.net", bad.port) + route("sender.test", inbox.port))
    send(h.port, "app@sender.test", ["gone@example.net"])
    b = h.wait_records("b", 1)[0]
    assert b["rcpt"] == "gone@example.net" and b["dsnStatus"].startswith("5.1.1")
    assert b["bounceCat"] == "bad-mailbox" and b["dsnDiag"].startswith("smtp;550 5.1.1")
    dsn = wait_for(lambda: inbox.received, what="DSN")[0]
    assert dsn.mail_from == "" and dsn.rcpts == ["app@sender.test"]
    assert b"Status: 5.1.1" in dsn.data and b"Final-Recipient: rfc822; gone@example.net" in dsn.data
    send(h.port, "<>", ["gone2@example.net"])
    h.wait_records("b", 2)
    assert h.svc.call(lambda: len(h.mta.spool._live) <= 1)
    assert len(inbox.received) == 1


def test_4xx_is_retried_on_the_retry_after_schedule(harness, mxes):
    mx = mxes("tempfail-once")
    clock = FakeClock()
    h = harness(route("example.net", mx.port, "  retry-after 10m,1h\n"), clock=clock)
    send(h.port, "app@sender.test", ["grey@example.net"])
    t = h.wait_records("t", 1)[0]
    assert t["dsnAction"] == "delayed" and t["dsnStatus"].startswith("4.7.1")
    q = h.queue("example.net")
    wait_for(lambda: h.svc.call(lambda: q.waiting == 1), what="the recipient waits for its retry")
    h.advance(9 * 60)
    assert h.svc.call(lambda: q.waiting) == 1 and not mx.received      # not due yet
    h.advance(60)
    wait_for(lambda: mx.received, what="the retry at 10m")
    assert h.wait_records("d", 1)[0]["rcpt"] == "grey@example.net"


def test_expiry_at_bounce_after_bounces_with_4_4_7_and_a_dsn(harness, mxes):
    mx, inbox = mxes("tempfail"), mxes()
    clock = FakeClock()
    h = harness(route("example.net", mx.port, "  retry-after 10m\n  bounce-after 25m\n")
                + route("sender.test", inbox.port), clock=clock)
    send(h.port, "app@sender.test", ["slow@example.net"])
    h.wait_records("t", 1)
    for n in (2, 3):                       # attempts at 10m and 20m fail too
        h.advance(10 * 60)
        h.wait_records("t", n)
    h.advance(5 * 60)                      # the last try is pulled in to bounce-after (25m)
    b = h.wait_records("b", 1)[0]
    assert b["dsnStatus"].startswith("4.4.7") and b["bounceCat"] == "message-expired"
    dsn = wait_for(lambda: inbox.received, what="DSN")[0]
    assert b"Status: 4.4.7" in dsn.data and dsn.mail_from == ""


def test_connection_refused_and_greeting_timeout_are_queue_failures_retried(harness):
    silent = SilentServer()
    try:
        clock = FakeClock()
        closed = free_port()
        h = harness(route("refused.test", closed) + route("silent.test", silent.port, "  smtp-greeting-timeout 1s\n"),
                    clock=clock)
        send(h.port, "<>", ["a@refused.test", "b@silent.test"])
        tq = h.wait_records("tq", 2)
        diags = {r["queue"]: r["dsnDiag"] for r in tq}
        assert "cannot connect" in diags["refused.test/{default}"]
        assert "silent.test/{default}" in diags
        q = h.queue("refused.test")
        assert h.svc.call(lambda: (q.state.failures, len(q.ready))) == (1, 1)
        h.advance(600)
        h.wait_records("tq", 3)            # retried on the schedule
    finally:
        silent.stop()


def test_connection_closed_mid_data_defers(harness, mxes):
    mx = mxes("drop-data")
    h = harness(route("example.net", mx.port), clock=FakeClock())
    send(h.port, "<>", ["a@example.net"])
    t = h.wait_records("t", 1)[0]
    assert t["dsnStatus"].startswith("4.4.2") and "DATA" in t["dsnDiag"]


def test_mx_lookup_next_mx_on_failure_and_null_mx(harness, mxes):
    mx = mxes()
    dns = DnsServer({
        ("example.org", "MX"): [(10, "dead.example.org"), (20, "mx.example.org")],
        ("dead.example.org", "A"): ["127.0.0.2"],          # nothing listens on 127.0.0.2
        ("mx.example.org", "A"): ["127.0.0.1"],
        ("nomx.example.org", "A"): ["127.0.0.1"],           # no MX: A fallback
        ("nullmx.example.org", "MX"): [(0, ".")],
    })
    try:
        h = harness(f"dns-server 127.0.0.1:{dns.port}\n<domain *>\n  smtp-port {mx.port}\n</domain>\n")
        send(h.port, "<>", ["a@example.org", "b@nomx.example.org", "c@nullmx.example.org"])
        wait_for(lambda: sorted(mx.rcpts()) == ["a@example.org", "b@nomx.example.org"], what="MX deliveries")
        b = h.wait_records("b", 1)[0]
        assert b["rcpt"] == "c@nullmx.example.org" and b["dsnStatus"].startswith("5.1.10")
        d = {r["rcpt"]: r for r in h.wait_records("d", 2)}
        assert d["a@example.org"]["dsnMta"] == "mx.example.org (127.0.0.1)"
    finally:
        dns.stop()


def test_max_smtp_out_is_observed_by_the_mx(harness, mxes):
    mx = mxes()
    h = harness(route("example.net", mx.port, "  max-smtp-out 2\n"))
    import threading
    threads = [threading.Thread(target=send, args=(h.port, "<>", [f"u{i}@example.net"])) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wait_for(lambda: len(mx.rcpts()) == 30, what="30 deliveries")
    assert 1 <= mx.peak <= 2


@pytest.mark.parametrize("limits", ["  max-msg-rate 1/h\n", "  max-connect-rate 1/h\n  max-msg-per-connection 1\n"])
def test_rate_limits_with_an_advanced_clock(harness, mxes, limits):
    mx = mxes()
    h = harness(route("example.net", mx.port, limits), clock=FakeClock())
    for i in range(3):
        send(h.port, "<>", [f"u{i}@example.net"])
    q = h.queue("example.net")
    for n in (1, 2, 3):
        wait_for(lambda: len(mx.received) == n, what=f"message {n}, an hour after the previous one")
        if n < 3:
            wait_for(lambda: h.svc.call(lambda: q.conns == 0 and q.kick_at is not None), what="the queue waits")
            assert len(mx.received) == n
            h.advance(3600)
    assert mx.connections == 3      # a wait longer than a few seconds does not hold a connection open


def test_opportunistic_starttls_and_require_starttls(harness, tmp_path):
    from mta_testing import self_signed_context
    ctx = self_signed_context(tmp_path)
    if ctx is None:
        pytest.skip("openssl is not installed: no certificate for the TLS MX")
    tls_mx, plain_mx = FakeMx(tls_context=ctx).start(), FakeMx().start()
    try:
        h = harness(route("tls.example", tls_mx.port)
                    + route("plain.example", plain_mx.port, "  require-starttls yes\n"))
        send(h.port, "<>", ["a@tls.example", "b@plain.example"])
        assert wait_for(lambda: tls_mx.received, what="delivery over TLS")[0].tls
        tq = h.wait_records("tq", 1)[0]
        assert tq["queue"] == "plain.example/{default}" and "STARTTLS" in tq["dsnDiag"]
        assert not plain_mx.received
    finally:
        tls_mx.stop()
        plain_mx.stop()


def test_paused_queue_holds_and_resumes(harness, mxes):
    mx = mxes()
    h = harness(route("example.net", mx.port))
    send(h.port, "<>", ["a@example.net"])
    wait_for(lambda: mx.received, what="delivery")
    q = h.queue("example.net")
    h.svc.call(q.set_mode, QueueMode.PAUSED)
    send(h.port, "<>", ["b@example.net"])
    wait_for(lambda: h.svc.call(lambda: len(q.ready) == 1 and q.conns == 0), what="held in the paused queue")
    h.svc.call(q.set_mode, QueueMode.NORMAL)
    wait_for(lambda: len(mx.received) == 2, what="delivery after resume")


def test_reload_gives_queues_new_settings(harness, mxes):
    mx = mxes("reject")
    h = harness(route("example.net", mx.port, "  max-smtp-out 3\n"))
    assert h.svc.call(lambda: h.mta.config.effective("example.net").max_smtp_out) == 3
    h.conf.write_text(h.conf.read_text().replace("max-smtp-out 3", "max-smtp-out 1"))
    h.svc.call(h.svc.reload)
    assert h.svc.call(lambda: h.mta.config.effective("example.net").max_smtp_out) == 1


def test_a_clean_restart_resumes_deferred_recipients_and_never_resends_finished_ones(harness, mxes):
    ok, grey = mxes(), mxes("tempfail")
    body = route("ok.example", ok.port) + route("grey.example", grey.port, "  retry-after 10m\n")
    h = harness(body, clock=FakeClock())
    send(h.port, "app@sender.test", ["a@ok.example", "b@grey.example"])
    wait_for(lambda: ok.received, what="delivery to ok.example")
    h.wait_records("t", 1)
    h.stop()
    assert list((h.dir / "spool").glob("seg-*.log"))                 # b@grey.example is still spooled
    grey.mode = "accept"
    h2 = harness(body, clock=FakeClock())
    q = h2.queue("grey.example")
    assert h2.svc.call(lambda: q.waiting) == 1                        # recovered, waiting for its retry
    assert h2.queue("ok.example") is None                             # a@ok.example is finished
    h2.advance(600)
    wait_for(lambda: grey.received, what="the retry after the restart")
    assert len(ok.received) == 1


def test_hooks_filter_prepare_and_observe(harness, mxes):
    from bounceproc.domain.mta.queue_state import with_mode
    from bounceproc.mta.hooks import Hooks, Refusal, Transaction

    class Suppressions:
        async def filter(self, queue, jobs):
            return {j: Refusal("5.7.1", "x-bounceproc;suppressed") for j in jobs if j.rcpt.startswith("nope@")}

    class Verp:
        async def prepare(self, tx):
            out = []
            for j in tx.jobs:
                local, _, dom = j.rcpt.partition("@")
                out.append(Transaction(tx.queue, tx.settings, f"bounces+{local}={dom}@sender.test", [j],
                                       b"X-Prepared: yes\r\n" + tx.data))
            return out

    class BackoffOn5xx:
        def on_reply(self, queue, reply, state, now):
            return with_mode(state, QueueMode.BACKOFF, now) if reply.code >= 500 else None

    good, bad = mxes(), mxes("reject")
    h = harness(route("example.net", good.port) + route("bad.example", bad.port),
                hooks=Hooks(filters=[Suppressions()], preparers=[Verp()], observers=[BackoffOn5xx()]))
    send(h.port, "<>", ["a@example.net", "nope@example.net", "b@example.net"])
    wait_for(lambda: len(good.received) == 2, what="two deliveries")
    assert sorted(m.mail_from for m in good.received) == ["bounces+a=example.net@sender.test",
                                                          "bounces+b=example.net@sender.test"]
    assert all(m.data.startswith(b"X-Prepared: yes\r\n") for m in good.received)
    b = h.wait_records("b", 1)[0]
    assert b["rcpt"] == "nope@example.net" and b["dsnDiag"] == "x-bounceproc;suppressed"
    send(h.port, "<>", ["x@bad.example"])
    q = wait_for(lambda: h.queue("bad.example"), what="the queue")
    wait_for(lambda: h.svc.call(lambda: q.state.mode) is QueueMode.BACKOFF, what="backoff after a 5xx")
