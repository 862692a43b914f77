"""Part 2 of the sending core end to end on loopback: suppressions skipped before delivery,
VERP + List-Unsubscribe + DKIM on the delivered message, backoff from classified block replies,
smtp-pattern-list actions. smtplib injects, aiosmtpd plays the MX, a dnslib server publishes the
DKIM key, FakeClock replaces waiting for retries."""
from __future__ import annotations

import base64
import glob
import json
from datetime import datetime, timezone
from pathlib import Path

import dkim
import nacl.signing
import pytest
from mta_testing import acct_records, DnsServer, FakeMx, free_port, mta_config, mxes, route, send, wait_for  # noqa: F401
from sqlalchemy import create_engine, select

from bounceproc.domain.mta.queue_state import QueueMode
from bounceproc.domain.parse.verp import decode_verp, for_settings
from bounceproc.domain.unsubscribe_token import read_token
from bounceproc.mta.clock import FakeClock
from bounceproc.mta.closing_loop import build_hooks
from bounceproc.mta.management import Management
from bounceproc.mta.service import MtaService
from bounceproc.storage.suppression_store import insert_suppressions
from bounceproc.storage.api_tables import webhook_endpoints
from bounceproc.storage.tables import outbox

NOW = datetime.now(timezone.utc)


class Loop:
    """An MTA with part 2's hooks, its acct records, and bounceproc's database behind it."""

    def __init__(self, tmp_path: Path, settings, body: str, clock=None):
        self.dir, self.settings, self.clock = tmp_path, settings, clock
        self.port = free_port()
        conf = Path(mta_config(tmp_path, self.port, body, acct="d,b,t,tq"))
        self.svc = MtaService(str(conf), clock=clock)
        self.parts = build_hooks(settings, lambda: self.svc.mta)
        self.svc.hooks = self.parts.hooks
        self.svc.management = self.mgmt = Management(self.svc, self.parts.activity, self.parts.counters)
        self.conf = conf
        self.svc.start()
        self.engine = create_engine(settings.db_url)

    def records(self, rtype: str) -> list[dict]:
        return acct_records(self.dir / "acct", rtype)

    def wait_records(self, rtype: str, n: int) -> list[dict]:
        return wait_for(lambda: (lambda r: r if len(r) >= n else None)(self.records(rtype)), 30, f"{n} {rtype}")

    def advance(self, seconds: float) -> None:
        self.svc.call(self.clock.advance, seconds)

    def queue(self, domain: str):
        return self.svc.call(self.svc.mta.queue, domain, "")

    def suppress(self, address: str, scope: str = "global", reason: str = "hard_bounce") -> None:
        row = {"address": address, "scope": scope, "reason": reason, "origin": "system", "category": "",
               "bounce_reason": "", "rule": "", "source": "test", "event_key": "", "status": "",
               "diagnostic": "", "note": "", "created_at": NOW, "updated_at": NOW, "expires_at": None}
        with self.engine.begin() as conn:
            insert_suppressions(conn, [row])

    def stop(self):
        self.svc.stop()
        self.engine.dispose()


@pytest.fixture
def loop(tmp_path, make_settings, sqlite_url):
    made = []

    def make(body: str, clock=None, **settings) -> Loop:
        settings.setdefault("public_url", "https://bp.example.net")
        lp = Loop(tmp_path, make_settings(database_url=sqlite_url, **settings), body, clock)
        made.append(lp)
        return lp
    yield make
    for lp in made:
        lp.stop()


NEWS = (b"From: News <news@example.net>\r\nTo: subscribers@example.net\r\nSubject: weekly\r\n"
        b"List-Id: Example News <news.example.net>\r\nMessage-ID: <w1@example.net>\r\n\r\nHello\r\n")


def test_delivered_mail_has_verp_unsubscribe_headers_and_a_dkim_signature_over_them(loop, mxes, tmp_path):
    dns = DnsServer({})
    try:
        sk = nacl.signing.SigningKey.generate()
        (tmp_path / "ed.key").write_text(base64.b64encode(bytes(sk)).decode())
        dns.records[("s1._domainkey.example.net", "TXT")] = [
            "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode()]
        m = mxes()
        lp = loop(f"domain-key s1,*,{tmp_path}/ed.key\n"
                  + route("example.org", m.port, "  dkim-sign yes\n").replace(
                      "<source", "<source") + "<source 127.0.0.1>\n  verp-return-path bounces@bounce.example.net\n"
                  "  always-allow-relaying yes\n</source>\n")
        send(lp.port, "news@example.net", ["alice@example.org", "bob@example.org"], NEWS)
        got = wait_for(lambda: len(m.received) == 2 and m.received, what="two deliveries")
        fmt = for_settings(lp.settings.verp_separator, lp.settings.verp_prefix)
        for r in got:
            (rcpt,) = r.rcpts
            assert decode_verp(r.mail_from, fmt) == rcpt and r.mail_from.endswith("@bounce.example.net")
            head = r.data.split(b"\r\n\r\n", 1)[0].decode()
            assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
            url = head.split("List-Unsubscribe: <", 1)[1].split(">", 1)[0]
            claims = read_token(lp.settings.secret(), url.rsplit("/u/", 1)[1], datetime.now(timezone.utc))
            assert url.startswith("https://bp.example.net/u/")
            assert (claims.recipient, claims.scope) == (rcpt, "list:news.example.net")
            assert head.startswith("DKIM-Signature:") and "list-unsubscribe" in head.split("h=", 1)[1].split(";")[0]
            assert dkim.verify(r.data, dnsfunc=dns.dkim_dnsfunc)
        assert lp.parts.preparer.signed == 2
    finally:
        dns.stop()


def test_suppressed_recipients_are_skipped_with_a_b_record_and_counted(loop, mxes):
    m = mxes()
    lp = loop(route("example.org", m.port))
    lp.suppress("bob@example.org")                                          # global
    lp.suppress("carol@example.org", "list:news.example.net", "unsubscribe")  # this list
    lp.suppress("dave@example.org", "list:other", "unsubscribe")            # another list: still sent
    send(lp.port, "news@example.net", ["alice@example.org", "Bob@example.org", "carol@example.org",
                                       "dave@example.org"], NEWS)
    wait_for(lambda: sorted(m.rcpts()) == ["alice@example.org", "dave@example.org"], what="deliveries")
    skips = {r["rcpt"]: r for r in lp.wait_records("b", 2)}
    assert set(skips) == {"Bob@example.org", "carol@example.org"}
    assert skips["Bob@example.org"]["dsnDiag"] == "x-bounceproc;suppressed (global: hard_bounce)"
    assert skips["carol@example.org"]["dsnDiag"] == "x-bounceproc;suppressed (list:news.example.net: unsubscribe)"
    assert skips["carol@example.org"]["dsnStatus"].startswith("5.7.1")
    assert skips["carol@example.org"]["bounceCat"] == "policy-related"
    q = lp.queue("example.org")
    assert q.counters["skipped"] == 2 and q.counters["bounced"] == 0 and q.counters["delivered"] == 2
    assert {e["rcpt"] for e in lp.parts.activity.recent() if e["event"] == "skipped"} == {
        "Bob@example.org", "carol@example.org"}


def test_a_suppression_made_while_a_message_waits_is_honoured_at_its_next_attempt(loop, mxes):
    m = mxes("tempfail-once")
    clock = FakeClock()
    lp = loop(route("example.org", m.port, "  retry-after 10m\n"), clock=clock)
    send(lp.port, "news@example.net", ["erin@example.org", "frank@example.org"], NEWS)
    lp.wait_records("t", 2)
    lp.suppress("erin@example.org", "list:news.example.net", "unsubscribe")
    # the classifier reads greylisting as `speeding`: the queue is in backoff (backoff-retry-after 1h)
    assert lp.queue("example.org").state.mode is QueueMode.BACKOFF
    lp.advance(3601)
    wait_for(lambda: m.rcpts() == ["frank@example.org"], what="frank delivered on retry")
    b = lp.wait_records("b", 1)
    assert [r["rcpt"] for r in b] == ["erin@example.org"] and "suppressed" in b[0]["dsnDiag"]


class BlockingMx(FakeMx):
    """Answers RCPT with `self.answer` while it is set, then accepts; counts connections."""
    answer = "421 4.7.0 [TS01] Messages from 127.0.0.1 temporarily deferred due to user complaints - blocked"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.answer:
            return self.answer
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.mark.parametrize("answer", [
    "421 4.7.0 [TS01] Messages from 127.0.0.1 temporarily deferred due to user complaints - blocked",
    "550 5.7.1 Service unavailable; client host [127.0.0.1] listed at zen.spamhaus.org",
])
def test_a_block_puts_the_queue_in_backoff_is_retried_never_bounced_and_returns_to_normal(loop, mxes, answer):
    m = mxes(cls=BlockingMx)
    m.answer = answer
    clock = FakeClock()
    lp = loop(route("example.org", m.port, "  max-smtp-out 5\n  retry-after 1m\n  backoff-max-smtp-out 1\n"
                    "  backoff-retry-after 2m\n  backoff-to-normal-after 30m\n"), clock=clock)
    with lp.engine.begin() as conn:                 # a webhook endpoint that wants domain.blocked
        conn.execute(webhook_endpoints.insert().values(
            endpoint_id="ep_1", url="https://hooks.example.net/x", event_types=["domain.blocked"], secrets=["s"],
            created_at=NOW, updated_at=NOW))
    rcpts = [f"u{i}@example.org" for i in range(8)]
    for r in rcpts:
        send(lp.port, "news@example.net", [r], NEWS)
    wait_for(lambda: lp.queue("example.org").state.mode is QueueMode.BACKOFF, what="backoff")
    t = lp.wait_records("t", 1)
    assert t[0]["bounceCat"] == "spam-related" and lp.records("b") == []     # deferred, not bounced
    assert lp.queue("example.org").settings.max_smtp_out == 1
    notice = wait_for(lambda: blocked_notices(lp), what="domain.blocked webhook in the outbox")
    assert len(notice) == 1 and notice[0]["data"]["diagnostic"] == "smtp;" + answer
    assert notice[0]["data"]["recipient_domain"] == "example.org" and notice[0]["data"]["mode"] == "backoff"
    assert any(e["event"] == "backoff" for e in lp.parts.activity.recent())
    # the receiver relents: in backoff the queue uses one connection at a time
    # every connection closed on both sides, its deferral booked (a connection still opening when the
    # answer changes would otherwise be deferred past the clock's single step below)
    wait_for(lambda: m.active == 0 and lp.queue("example.org").conns == 0, what="connections closed")
    with m.lock:
        m.peak = 0
    m.answer = ""
    lp.advance(121)                                 # backoff-retry-after 2m, not retry-after 1m
    wait_for(lambda: sorted(m.rcpts()) == sorted(rcpts), 60, "all delivered after backoff")
    assert m.peak == 1 and lp.records("b") == []
    assert lp.queue("example.org").state.mode is QueueMode.BACKOFF
    lp.advance(1800)                                # backoff-to-normal-after 30m since the last block
    send(lp.port, "news@example.net", ["late@example.org"], NEWS)
    wait_for(lambda: "late@example.org" in m.rcpts(), what="late delivery")
    wait_for(lambda: lp.queue("example.org").state.mode is QueueMode.NORMAL, what="back to normal")


def blocked_notices(lp):
    with lp.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.type == "domain.blocked")).all()
    return [json.loads(r[0]) for r in rows]


def test_pattern_list_actions(loop, mxes):
    m = mxes(cls=BlockingMx)
    m.answer = "452 4.2.2 user over quota"
    clock = FakeClock()
    lp = loop("<smtp-pattern-list quota>\n  reply /over quota/ bounce-rcpt\n  reply /hold on/ mode=backoff defer-queue\n"
              "</smtp-pattern-list>\n"
              + route("example.org", m.port, "  smtp-pattern-list quota\n"), clock=clock)
    send(lp.port, "<>", ["q1@example.org"], NEWS)
    b = lp.wait_records("b", 1)[0]
    assert b["rcpt"] == "q1@example.org" and b["dsnDiag"].startswith("smtp;452")       # a 4xx bounced
    m.answer = "451 4.3.0 hold on please"
    send(lp.port, "<>", ["q2@example.org"], NEWS)
    lp.wait_records("t", 1)
    q = wait_for(lambda: (lambda q: q if q.state.mode is QueueMode.BACKOFF else None)(lp.queue("example.org")),
                 what="backoff by pattern")
    assert q.state.retry_at > clock.now()                                       # defer-queue holds the queue


def http(port: int, method: str, path: str, key: str = "") -> tuple[int, bytes]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{path}", method=method,
                                 data=b"" if method == "POST" else None, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_operating_the_mta_show_pause_mode_delete_rotate_metrics_and_access_control(loop, mxes, tmp_path):
    import subprocess
    import sys
    m = mxes(cls=BlockingMx)
    m.answer = "451 4.3.0 mailbox temporarily unavailable"
    clock = FakeClock()
    port = free_port()
    lp = loop(f"http-mgmt-port {port}\nhttp-access 127.0.0.1 monitor\nhttp-api-key k-123\n"
              + route("example.org", m.port, "  retry-after 1h\n"), clock=clock)
    for i in range(3):
        send(lp.port, "news@example.net", [f"w{i}@example.org"], NEWS)
    lp.wait_records("t", 3)

    def settled():
        # The deferral records are written before the sessions that produced them close: the
        # connection count falls a moment later on a busy machine.
        code, body = http(port, "GET", "queues?format=json")
        assert code == 200
        (queue,) = json.loads(body)["data"]
        return queue if queue["conn"] <= 1 else None
    q = wait_for(settled, 30, "the deferred sessions to close")
    assert (q["queue"], q["rcpt"], q["mode"]) == ("example.org/{default}", 3, "normal")
    assert q["last_error"] == "" or "4.3.0" in q["last_error"]
    code, text = http(port, "GET", "queues")
    assert text.decode().splitlines()[0].split() == ["queue", "#rcpt", "kbytes", "conn", "mode", "retry", "last", "error"]
    status = json.loads(http(port, "GET", "status?format=json")[1])["data"]
    assert status["queue"]["smtp"]["rcp"] == 3 and status["traffic"]["total"]["in"]["rcpt"] == 3
    assert status["traffic"]["last_min"]["in"]["msg"] == 3
    # monitor may read, not act; the API key may do everything
    assert http(port, "POST", "pause?queue=example.org")[0] == 403
    assert http(port, "POST", "pause?queue=example.org", key="wrong")[0] == 403
    assert http(port, "POST", "pause?queue=example.org", key="k-123")[0] == 200
    assert lp.queue("example.org").state.mode is QueueMode.PAUSED
    cli = [sys.executable, "-m", "bounceproc", "mta", "--config", str(lp.conf)]
    out = subprocess.run(cli + ["show", "domains", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["mode"] == "paused"
    out = subprocess.run(cli + ["set", "queue", "--mode=backoff", "example.org"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert lp.queue("example.org").state.mode is QueueMode.BACKOFF
    metrics = http(port, "GET", "metrics")[1].decode()
    assert 'bounceproc_mta_queue_rcpts{domain="example.org"} 3' in metrics
    assert "bounceproc_mta_queues_in_backoff 1" in metrics and 'outcome="deferred"} 3' in metrics
    assert http(port, "POST", "resume?queue=example.org/{default}", key="k-123")[0] == 200
    assert http(port, "POST", "delete?queue=example.org", key="k-123")[0] == 200
    b = wait_for(lambda: (lambda b: b if len(b) == 3 else None)(
        [r for r in lp.records("b") if r["rcpt"].endswith("@example.org")]), what="three deleted")
    assert {r["rcpt"] for r in b} == {"w0@example.org", "w1@example.org", "w2@example.org"}
    assert b[0]["dsnDiag"] == "x-bounceproc;deleted by the operator"
    before = len(glob.glob(str(tmp_path / "acct" / "acct-*.csv")))
    out = subprocess.run(cli + ["rotate", "acct"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(glob.glob(str(tmp_path / "acct" / "acct-*.csv"))) > before, what="a new acct file")
    vm = json.loads(http(port, "GET", "vmtas?format=json")[1])["data"]
    assert vm[0]["name"] == "{default}" and vm[0]["rcpt"] == 0
    assert http(port, "GET", "nothing")[0] == 404


def test_management_access_is_denied_without_a_matching_cidr_or_key(loop):
    port = free_port()
    lp = loop(f"http-mgmt-port {port}\nhttp-access 127.0.0.1 none\nhttp-api-key k-9\n")
    assert http(port, "GET", "status")[0] == 403
    assert http(port, "GET", "status", key="k-9")[0] == 200
