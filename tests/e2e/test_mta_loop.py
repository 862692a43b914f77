"""The loop closed, end to end over real parts on loopback: `bounceproc serve` runs the API, the
SMTP sink, the inline worker and the bundled MTA. A message sent through the MTA (envelope sender
bounces@bounce.example.net, `verp-default yes`) is refused by a fake MX with 550 5.1.1; the MTA's
DSN goes to the envelope sender, whose domain routes to the sink; the sink's DSN suppresses the
recipient; a second message to it is skipped by the MTA (a `b` record
`x-bounceproc;suppressed`). A one-click POST to the List-Unsubscribe URL of a delivered message
suppresses that recipient for the list, and the next list message to it is skipped too. A late
remote bounce naming nobody, sent to the VERP return path of a delivered copy, is attributed by
the sink from the envelope and suppresses that recipient."""
from __future__ import annotations

import urllib.request

from bp_testing import start_serve, stop_process
from mta_testing import acct_records, FakeMx, free_port, mta_config, route, send, wait_for
from sqlalchemy import create_engine, select

from bounceproc.domain.parse.verp import decode_verp
from bounceproc.storage.tables import suppressions

NEWS = (b"From: News <news@example.net>\r\nTo: x@example.org\r\nSubject: weekly\r\n"
        b"List-Id: <news.example.net>\r\nMessage-ID: <%s@example.net>\r\n\r\nHello\r\n")


class RejectSomeMx(FakeMx):
    """Refuses `gone@` with 550 5.1.1, accepts everyone else."""

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("gone@"):
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"


def test_bounce_dsn_sink_suppression_skip_and_one_click(tmp_path):
    mx = RejectSomeMx().start()
    mta_port, api_port, sink_port, mgmt_port = free_port(), free_port(), free_port(), free_port()
    conf = mta_config(tmp_path, mta_port, route("example.org", mx.port) + route("bounce.example.net", sink_port),
                      head=f"http-mgmt-port {mgmt_port}\nhttp-access 127.0.0.1 admin\nsuppression-cache-ttl 0\n",
                      source="  verp-default yes\n", acct="d,b,t", host_name="mta.example.net")
    db = f"sqlite:///{tmp_path}/bp.db"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(BOUNCEPROC_DATABASE_URL=db, BOUNCEPROC_DATA_DIR=str(tmp_path / "data"), BOUNCEPROC_SECRET_KEY="loop-secret",
               BOUNCEPROC_MTA_CONFIG=str(conf), BOUNCEPROC_PUBLIC_URL=f"http://127.0.0.1:{api_port}",
               PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    engine = proc = None
    try:
        proc = start_serve(["serve", "--api", f"127.0.0.1:{api_port}", "--smtp", f"127.0.0.1:{sink_port}",
                            "--accept", "bounce.example.net"], env, tmp_path, log)
        assert proc.poll() is None, log.read_text()
        engine = create_engine(db)

        def suppressed(address, scope):
            with engine.connect() as conn:
                return conn.execute(select(suppressions.c.reason).where(
                    suppressions.c.address == address, suppressions.c.scope == scope)).scalar()

        def b_records():
            return acct_records(tmp_path / "acct", "b")

        # 1. bounce -> DSN to the VERP return path -> sink -> suppression
        send(mta_port, "bounces@bounce.example.net", ["gone@example.org", "bob@example.org"], NEWS % b"m1")
        wait_for(lambda: any(r["rcpt"] == "gone@example.org" for r in b_records()), what="the 550 bounce")
        wait_for(lambda: suppressed("gone@example.org", "global"), 60, "suppression from the DSN")
        assert suppressed("gone@example.org", "global") == "hard_bounce"
        delivered = wait_for(lambda: [m for m in mx.received if m.rcpts == ["bob@example.org"]], what="bob's copy")
        assert delivered[0].mail_from == "bounces+bob=example.org@bounce.example.net"
        assert decode_verp(delivered[0].mail_from) == "bob@example.org"
        # 2. the next message to the suppressed recipient is skipped
        send(mta_port, "bounces@bounce.example.net", ["gone@example.org"], NEWS % b"m2")
        skip = wait_for(lambda: [r for r in b_records() if "suppressed" in r["dsnDiag"]], what="the skip")
        assert skip[0]["rcpt"] == "gone@example.org"
        assert skip[0]["dsnDiag"] == "x-bounceproc;suppressed (global: hard_bounce)"
        # 3. one-click from the delivered message suppresses bob for the list; the next list mail skips him
        head = delivered[0].data.split(b"\r\n\r\n", 1)[0].decode()
        url = head.split("List-Unsubscribe: <", 1)[1].split(">", 1)[0]
        req = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status in (200, 202, 204)
        wait_for(lambda: suppressed("bob@example.org", "list:news.example.net"), 60, "one-click suppression")
        send(mta_port, "bounces@bounce.example.net", ["bob@example.org"], NEWS % b"m3")
        wait_for(lambda: [r for r in b_records() if r["rcpt"] == "bob@example.org"], 60, "bob skipped")
        assert [m.rcpts for m in mx.received].count(["bob@example.org"]) == 1
        # 4. a remote MTA's late bounce that names nobody, sent to the VERP return path: the sink
        #    decodes the recipient from the envelope and suppresses it
        send(mta_port, "bounces@bounce.example.net", ["carol@example.org"], NEWS % b"m4")
        carol = wait_for(lambda: [m for m in mx.received if m.rcpts == ["carol@example.org"]], what="carol's copy")
        late = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: " + carol[0].mail_from.encode() +
                b"\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: text/plain\r\n\r\n"
                b"This is the mail system at host mx.example.org.\r\n\r\nI'm sorry to have to inform you that "
                b"your message could not be delivered.\r\n\r\n    550 5.1.1 mailbox unavailable: user unknown\r\n")
        send(sink_port, "", [carol[0].mail_from], late)
        wait_for(lambda: suppressed("carol@example.org", "global"), 60, "suppression decoded from VERP")
        # the MTA's counters are in the API's /metrics too
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=30) as resp:
            metrics = resp.read().decode()
        assert 'bounceproc_mta_outcomes_total{outcome="skipped"} 2' in metrics
        assert "bounceproc_mta_queues_in_backoff 0" in metrics
    finally:
        if proc is not None:
            stop_process(proc, 30)
        mx.stop()
        if engine is not None:
            engine.dispose()
