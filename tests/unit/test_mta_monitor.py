"""`bounceproc mta show ...` views for a known queue state: JSON data, PowerMTA's text columns, metrics."""
from __future__ import annotations

from bounceproc.domain.mta import monitor

T0 = 1_800_000_000.0


def q(queue, rcpt, mode="normal", conn=0, kbytes=10.0, last_error="", **counts):
    domain, _, vmta = queue.partition("/")
    return {"queue": queue, "domain": domain, "vmta": "" if vmta == "{default}" else vmta, "rcpt": rcpt,
            "kbytes": kbytes, "conn": conn, "mode": mode, "retry": 0.0, "last_error": last_error,
            "delivered": counts.get("delivered", 0), "bounced": 0, "deferred": counts.get("deferred", 0),
            "skipped": counts.get("skipped", 0), "connections": 0}


SNAP = {
    "time": T0 + 3725, "started": T0,
    "queues": [q("example.org/v1", 5, "backoff", 1, 20.0, "smtp;421 4.7.0 blocked", deferred=5),
               q("example.org/v2", 1), q("example.com/{default}", 2, "paused", skipped=3)],
    "traffic": {w: {"in": {"rcpt": 8, "msg": 4, "kbytes": 40.0}, "out": {"rcpt": 3, "msg": 3, "kbytes": 15.0}}
                for w in ("total", "last_hour", "last_min")},
    "outcomes_last_min": {"delivered": 3, "bounced": 0, "deferred": 5, "skipped": 3},
    "events": [{"time": T0 + 10, "event": "backoff", "queue": "example.org/v1", "rcpt": "", "detail": "blocked"}],
    "counters": {"dkim_signed": 3},
}


def test_status_view_and_text():
    s = monitor.status_view(SNAP)
    assert s["queue"]["smtp"] == {"rcp": 8, "dom": 2, "kb": 40.0}
    assert (s["queue"]["backoff"], s["queue"]["paused"], s["conn"]["smtpOut"]["cur"]) == (1, 1, 1)
    assert s["uptime"] == "01:02:05"
    text = monitor.render("status", s)
    assert "Last Hour" in text and "1 in backoff, 1 paused" in text and "dkim_signed 3" in text
    assert "backoff  example.org/v1" in text


def test_queues_domains_vmtas_top():
    qs = monitor.queues_view(SNAP, "example.org")
    assert [x["queue"] for x in qs] == ["example.org/v1", "example.org/v2"]
    assert monitor.queues_view(SNAP, "example.org/v2")[0]["rcpt"] == 1
    text = monitor.render("queues", monitor.queues_view(SNAP)).splitlines()
    assert text[0].split() == ["queue", "#rcpt", "kbytes", "conn", "mode", "retry", "last", "error"]
    assert text[2].split()[:5] == ["example.org/v1", "5", "20.0", "1", "backoff"] and '"smtp;421' in text[2]
    d = {x["domain"]: x for x in monitor.domains_view(SNAP)}
    assert (d["example.org"]["rcpt"], d["example.org"]["mode"], d["example.com"]["mode"]) == (6, "backoff", "paused")
    v = {x["name"]: x for x in monitor.vmtas_view(SNAP)}
    assert v["v1"]["pct_total"] == 62.5 and v["{default}"]["domains"] == 1
    assert monitor.render("vmtas", monitor.vmtas_view(SNAP)).splitlines()[0].split() == [
        "name", "domains", "#rcpt", "%", "total", "kbytes", "conn"]
    assert [x["queue"] for x in monitor.top_view(SNAP, 2)] == ["example.org/v1", "example.com/{default}"]


def test_metrics():
    m = monitor.metrics_text(SNAP)
    assert 'bounceproc_mta_queue_rcpts{domain="example.org"} 6' in m
    assert 'bounceproc_mta_last_minute{outcome="skipped"} 3' in m
    assert "bounceproc_mta_queues_in_backoff 1" in m and "bounceproc_mta_connections_out 1" in m
    assert 'bounceproc_mta_outcomes_total{outcome="deferred"} 5' in m
