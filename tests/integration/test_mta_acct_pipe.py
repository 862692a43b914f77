"""The MTA's accounting records flow into `<acct-file |bounceproc pipe>` unchanged, and the pipe
reads them with the same meaning: a 5.1.1 bounce suppresses, a delivery and an expiry do not."""
from __future__ import annotations

import shlex

from mta_testing import FakeMx, free_port, mta_config, route, send, wait_for
from sqlalchemy import select

from bounceproc import bootstrap
from bounceproc.mta.clock import FakeClock
from bounceproc.mta.service import MtaService
from bounceproc.storage.tables import events, suppressions
from bp_testing import bin_path, settings_env


def test_acct_records_read_back_by_bounceproc_pipe(make_settings, sqlite_url, tmp_path):
    s = make_settings(database_url=sqlite_url, broker_url="")
    env = settings_env(s)
    env_words = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith("BOUNCEPROC_"))
    pipe_cmd = f"env {env_words} {shlex.quote(bin_path('bounceproc'))} pipe -q --batch-seconds 0.2"
    good, bad, slow = FakeMx("accept").start(), FakeMx("reject").start(), FakeMx("tempfail").start()
    port = free_port()
    conf = mta_config(tmp_path, port, acct="d,b,t", body=(
        route("good.example.net", good.port) + route("bad.example.net", bad.port)
        + route("slow.example.net", slow.port, "  retry-after 10m\n  bounce-after 15m\n")
        + f'<acct-file "|{pipe_cmd}">\n  records d,b,t\n</acct-file>\n'))
    clock = FakeClock()
    svc = MtaService(conf, clock=clock).start()
    try:
        send(port, "<>", ["alice@good.example.net", "bob@bad.example.net", "carol@slow.example.net"])
        wait_for(lambda: good.received and svc.call(lambda: svc.mta.queue("bad.example.net").counters["bounced"]),
                 what="delivery and bounce")
        q = svc.mta.queue("slow.example.net")
        wait_for(lambda: svc.call(lambda: q.waiting == 1), what="carol deferred")
        svc.call(clock.advance, 600)
        wait_for(lambda: svc.call(lambda: q.counters["deferred"] == 2 and q.waiting == 1), what="second try")
        svc.call(clock.advance, 300)
        wait_for(lambda: svc.call(lambda: q.counters["bounced"] == 1), what="carol expired")
    finally:
        svc.stop()               # closes the pipe's stdin; `bounceproc pipe` drains and exits
        for mx in (good, bad, slow):
            mx.stop()
    engine = bootstrap.engine(s)

    def state():
        with engine.connect() as conn:
            return (conn.execute(select(events.c.recipient, events.c.type, events.c.status)).all(),
                    {r.address for r in conn.execute(select(suppressions.c.address))})
    evs, suppressed = wait_for(lambda: (lambda st: st if sum(1 for e in st[0] if e[1] == "bounced") >= 2
                                        else None)(state()), 60, "both bounces in the database")
    kinds = {(r, k, st) for r, k, st in evs}
    assert ("bob@bad.example.net", "bounced", "5.1.1") in kinds
    assert ("carol@slow.example.net", "bounced", "4.4.7") in kinds
    assert any(r == "alice@good.example.net" and k == "delivered" for r, k, _ in kinds), kinds
    assert suppressed == {"bob@bad.example.net"}          # the expiry is soft: not suppressed
