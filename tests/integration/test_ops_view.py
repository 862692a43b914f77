"""The operations view over HTTP against a real uvicorn server and PostgreSQL: /metrics label sets
and their bounds (scraped and parsed), the deploy/ files naming only metrics that exist, the
sending core's registration hook, dashboard filters, and alerts that fire once and clear once."""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select, update
from test_api_support import admin_key, client, serve_api

from bounceproc import bootstrap
from bounceproc.app import alerts, ops_hooks, service
from bounceproc.domain.events import Event, event_key
from bounceproc.entrypoints.http.metrics import MAX_SERIES
from bounceproc.storage.api_tables import webhook_endpoints
from bounceproc.storage.tables import intake, outbox, quarantine
from bp_testing import ROOT, subscribe_webhooks

# family -> its label names (docs/operations.md lists the same)
LABELS = {
    "bounceproc_complaint_rate_by_provider": {"provider"},
    "bounceproc_complaints_by_provider": {"provider"},
    "bounceproc_complaint_rate_by_sending_domain": {"sending_domain"},
    "bounceproc_complaints_by_sending_domain": {"sending_domain"},
    "bounceproc_complaint_rate": set(),
    "bounceproc_webhook_deliveries": {"endpoint"},
    "bounceproc_webhook_failures": {"endpoint"},
    "bounceproc_webhook_backlog": {"endpoint"},
    "bounceproc_webhook_oldest_pending_seconds": {"endpoint"},
    "bounceproc_quarantined": {"reason"},
    "bounceproc_classified": {"reason", "rule"},
    "bounceproc_traffic_last_hour": {"provider", "kind"},
    "bounceproc_worker_last_seen_seconds": {"worker", "kind"},
    "bounceproc_workers": {"state"},
}


def seed(settings, now: datetime, domains: int = 30, rules: int = 30) -> None:
    """Per sending domain one delivery and one complaint at Gmail; `rules` distinct bounce rules."""
    evs = []
    for i in range(domains):
        sender = f"bounce@s{i}.example.org"
        evs.append(Event(event_key("d", i), "delivered", f"r{i}@gmail.com", now, "acct", sender=sender,
                         vmta="vmta1", source_ip="192.0.2.7", job_id="job1"))
        evs.append(Event(event_key("c", i), "complained", f"r{i}@gmail.com", now, "arf", sender=sender,
                         reason="abuse", feedback_type="abuse"))
    for i in range(rules):
        evs.append(Event(event_key("b", i), "bounced", f"x{i}@provider{i}.example", now, "acct",
                         sender="bounce@s0.example.org", reason="blocked", category="spam-related",
                         rule=f"rule-{i:02d}", diagnostic=f"550 5.7.1 <x{i}@provider{i}.example> blocked",
                         vmta="vmta2", source_ip="192.0.2.8"))
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, evs, settings)
        conn.execute(quarantine.insert(), [{"origin": "pipe", "line_no": i, "reason": f"reason {i}: bad line",
                                            "raw": "", "created_at": now} for i in range(15)])


@pytest.fixture
def api(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url, alert_complaint_min_delivered=1, alert_block_count=1)
    subscribe_webhooks(settings)
    with serve_api(settings) as base:
        yield settings, base


def scrape(base: str) -> dict:
    with client(base) as anon:
        r = anon.get("/metrics")
    assert r.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def test_metrics_have_the_documented_labels_and_bounded_series(api):
    settings, base = api
    seed(settings, datetime.now(timezone.utc))
    families = scrape(base)
    for name, labels in LABELS.items():
        assert name in families, name
        for sample in families[name].samples:
            assert set(sample.labels) == labels, (name, sample.labels)
    for name, labels in LABELS.items():       # the bound: per label, MAX_SERIES values and "other"
        for label in labels:
            assert len({s.labels[label] for s in families[name].samples}) <= MAX_SERIES + 1, (name, label)
    by_domain = {s.labels["sending_domain"]: s.value for s in families["bounceproc_complaint_rate_by_sending_domain"].samples}
    assert len(by_domain) == MAX_SERIES and all(v == 1.0 for v in by_domain.values())
    by_provider = {s.labels["provider"]: s.value for s in families["bounceproc_complaint_rate_by_provider"].samples}
    assert by_provider["Gmail"] == 1.0
    classified = {(s.labels["reason"], s.labels["rule"]): s.value for s in families["bounceproc_classified"].samples}
    assert len(classified) == MAX_SERIES + 1 and classified[("other", "other")] == 30 - MAX_SERIES
    quarantined = {s.labels["reason"]: s.value for s in families["bounceproc_quarantined"].samples}
    assert len(quarantined) == 11 and quarantined["other"] == 5
    webhook = [s for s in families["bounceproc_webhook_backlog"].samples]
    assert len(webhook) == 1 and webhook[0].labels["endpoint"].startswith("ep_test")
    traffic = {(s.labels["provider"], s.labels["kind"]): s.value for s in families["bounceproc_traffic_last_hour"].samples}
    assert traffic[("Gmail", "delivered")] == 30 and traffic[("Gmail", "complained")] == 30
    assert len({p for p, _ in traffic}) <= MAX_SERIES + 1 and ("other", "soft_bounce") in traffic
    body = " ".join(str(s.labels) for f in families.values() for s in f.samples)
    assert "@" not in body                                                  # no address in any label


def test_deploy_files_name_only_metrics_that_exist(api):
    _, base = api
    families = scrape(base)
    # prometheus_client's parser strips _total from counters; our families are gauges, names as written
    exposed = set(families)
    grafana = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    exprs = [t["expr"] for p in grafana["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    named = {m for e in exprs for m in re.findall(r"\bbounceproc_[a-z_]+", e)}
    assert named and named <= exposed, named - exposed


def test_the_sending_core_registers_its_metrics_and_queues(api):
    settings, base = api

    def collect(conn):
        fam = GaugeMetricFamily("bounceproc_mta_queue_messages", "Messages queued per queue", labels=["queue"])
        fam.add_metric(["gmail.com/vmta1"], 42)
        return [fam]

    def queues(conn):
        return [{"queue": "gmail.com/vmta1", "provider": "Gmail", "source_ip": "192.0.2.7", "state": "backoff",
                 "since": "2026-12-03T08:00:00Z", "reply": "421 4.7.0 try later", "size": 42},
                {"queue": "yahoo.com/vmta1", "state": "active"}]
    ops_hooks.register_metrics("mta-test", collect)
    ops_hooks.register_queues("mta-test", queues)
    try:
        families = scrape(base)
        assert families["bounceproc_mta_queue_messages"].samples[0].value == 42
        with client(base, admin_key(settings)) as c:
            page = c.get("/dashboard").text
        assert "Queues in backoff" in page and "gmail.com/vmta1" in page and "yahoo.com/vmta1" not in page
    finally:
        ops_hooks.unregister("mta-test")
    with client(base, admin_key(settings)) as c:
        assert "the sending core is not running" in c.get("/dashboard").text


def test_dashboard_filters_restrict_the_traffic_panel(api):
    settings, base = api
    seed(settings, datetime.now(timezone.utc), domains=3, rules=2)
    with client(base, admin_key(settings, ("dashboard:read",))) as c:
        everything = c.get("/dashboard/data").json()["charts"]["traffic"]["totals"]
        one = c.get("/dashboard/data", params={"sending_domain": "s1.example.org", "range": "day"}).json()
        vmta2 = c.get("/dashboard/data", params={"vmta": "vmta2"}).json()["charts"]["traffic"]["totals"]
        rule = c.get("/dashboard/rule/text-user-unknown")
        assert c.get("/dashboard/rule/no-such-rule").status_code == 404
    assert everything["delivered"] == 3 and everything["complained"] == 3 and everything["soft_bounce"] == 2
    assert one["charts"]["traffic"]["totals"] == {"delivered": 1, "hard_bounce": 0, "soft_bounce": 0,
                                                  "deferred": 0, "complained": 1}
    assert one["charts"]["traffic"]["step"] == 600
    assert vmta2 == {"delivered": 0, "hard_bounce": 0, "soft_bounce": 2, "deferred": 0, "complained": 0}
    assert rule.status_code == 200 and "userunknown" in rule.text


def test_alerts_fire_once_and_clear_once(api, caplog):
    settings, base = api
    now = datetime.now(timezone.utc)
    seed(settings, now, domains=2, rules=1)
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        conn.execute(intake.insert().values(kind="acct", payload=b"", state="pending", created_at=now - timedelta(hours=1)))
        conn.execute(update(webhook_endpoints).values(failing_since=now - timedelta(hours=2)))
    caplog.set_level(logging.INFO, logger="bounceproc.alerts")
    with eng.begin() as conn:
        fired = alerts.evaluate(conn, settings, now)
    kinds = sorted({(a["alert"], a["state"]) for a in fired})
    assert kinds == [("backlog", "firing"), ("block", "firing"), ("complaint_rate", "firing"),
                     ("webhook_failing", "firing")]
    assert {a["subject"] for a in fired if a["alert"] == "complaint_rate"} == {
        "provider:Gmail", "sending_domain:s0.example.org", "sending_domain:s1.example.org"}
    with eng.begin() as conn:
        assert alerts.evaluate(conn, settings, now + timedelta(minutes=1)) == []      # once per condition
        types = [t for (t,) in conn.execute(select(outbox.c.type))]
        assert types.count("alert.complaint_rate") == 3 and types.count("alert.backlog") == 1
        assert types.count("alert.block") == 1 and types.count("alert.webhook_failing") == 1
        page_alerts = alerts.firing(conn)
    assert len(page_alerts) == len(fired)
    assert sum("alert complaint_rate firing" in r.getMessage() for r in caplog.records) == 3
    with eng.begin() as conn:
        conn.execute(intake.update().values(state="done"))
        conn.execute(update(webhook_endpoints).values(failing_since=None))
        cleared = alerts.evaluate(conn, settings, now + timedelta(days=3))      # the day's counts are past
    assert sorted({(a["alert"], a["state"]) for a in cleared}) == [
        ("backlog", "cleared"), ("block", "cleared"), ("complaint_rate", "cleared"), ("webhook_failing", "cleared")]
    assert len(cleared) == len(fired)
    with eng.begin() as conn:
        assert alerts.evaluate(conn, settings, now + timedelta(days=3, minutes=1)) == []
        payload = json.loads(conn.execute(select(outbox.c.payload).where(outbox.c.type == "alert.backlog")
                                          .order_by(outbox.c.id.desc())).first()[0])
    assert payload["data"]["state"] == "cleared" and payload["data"]["subject"] == "intake"


def test_folding_old_count_rows_keeps_every_total(fresh_pg_url, make_settings):
    from sqlalchemy import func

    from bounceproc.app import ops_view
    from bounceproc.storage.ops_tables import rule_counts, traffic_counts
    from bounceproc.storage.traffic_counts import fold_counts
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    eng = bootstrap.engine(settings)
    for k, age in enumerate((timedelta(days=3, minutes=7), timedelta(days=3, minutes=31), timedelta(hours=3, minutes=2),
                             timedelta(hours=3, minutes=44), timedelta(minutes=5))):
        seed_at = now - age
        evs = [Event(event_key("f", k, i), t, f"f{k}{i}@gmail.com", seed_at + timedelta(seconds=i), "acct",
                     sender="b@s.example.org", reason="userunknown" if t == "bounced" else "", hard=t == "bounced",
                     rule="r1" if t == "bounced" else "", diagnostic="550 5.1.1 unknown")
               for i, t in enumerate(("delivered", "delivered", "bounced", "complained"))]
        with eng.begin() as conn:
            service.record_events(conn, evs, settings)

    def snapshot():
        with eng.connect() as conn:
            return ({r: ops_view.traffic(conn, now, r)["totals"] for r in ops_view.RANGES},
                    ops_view.top_reasons(conn, now), ops_view.complaint_rates(conn, now)["provider"],
                    conn.execute(select(func.sum(traffic_counts.c.n))).scalar(),
                    conn.execute(select(func.sum(rule_counts.c.n))).scalar())
    before = snapshot()
    with eng.begin() as conn:
        assert fold_counts(conn, now) > 0
        rows = conn.execute(select(traffic_counts.c.bucket, func.count()).group_by(traffic_counts.c.bucket)).all()
    assert {b for b, _ in rows} == {60, 600, 86400}
    assert snapshot() == before
    with eng.begin() as conn:
        assert fold_counts(conn, now) == 0          # nothing left to fold
    assert before[0]["month"] == {"delivered": 10, "hard_bounce": 5, "soft_bounce": 0, "deferred": 0, "complained": 5}


def test_merging_per_batch_rows_keeps_every_total(fresh_pg_url, make_settings):
    from sqlalchemy import func

    from bounceproc.app import maintenance, ops_view, status_report
    from bounceproc.storage.ops_tables import rule_counts, traffic_counts
    from bounceproc.storage.tables import complaint_counts, event_counts
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    minute = (now - timedelta(minutes=6)).replace(second=0, microsecond=0)
    eng = bootstrap.engine(settings)
    for b in range(4):                       # four batches of the same minute, one row each per key
        evs = [Event(event_key("m", b, i), t, f"m{b}{i}@gmail.com", minute + timedelta(seconds=b * 10 + i), "acct",
                     sender="b@s.example.org", source_ip="192.0.2.1", reason="userunknown" if t == "bounced" else "",
                     hard=t == "bounced", rule="r1" if t == "bounced" else "", diagnostic="550 5.1.1 unknown")
               for i, t in enumerate(("delivered", "delivered", "bounced", "complained"))]
        with eng.begin() as conn:
            service.record_events(conn, evs, settings)
    tables = (event_counts, complaint_counts, traffic_counts, rule_counts)

    def snapshot():
        with eng.connect() as conn:
            report = status_report.status(conn, now)
            return (report["events"], report["categories"], report["complaints"],
                    {r: ops_view.traffic(conn, now, r)["totals"] for r in ops_view.RANGES},
                    ops_view.top_reasons(conn, now), ops_view.complaint_rates(conn, now))

    def rows():
        with eng.connect() as conn:
            return [conn.execute(select(func.count()).select_from(t)).scalar() for t in tables]
    before, counted = snapshot(), rows()
    assert maintenance.compact_counts(settings, now) == sum(counted)
    assert rows() == [n // 4 for n in counted]          # one row per minute and key
    assert snapshot() == before
    assert maintenance.compact_counts(settings, now) == sum(counted) // 4     # merging again changes nothing
    assert snapshot() == before and rows() == [n // 4 for n in counted]
    assert before[0]["last_hour"] == {"delivered": 8, "bounced": 4, "complained": 4}


def test_suppression_growth_comes_from_the_counts_by_day(fresh_pg_url, make_settings):
    from bounceproc.app import ops_view
    from bounceproc.storage import suppression_store as store
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    today, yesterday = now.date().isoformat(), (now - timedelta(days=1)).date().isoformat()
    old = (now - timedelta(days=store.GROWTH_DAYS + 3)).date().isoformat()
    with bootstrap.engine(settings).begin() as conn:
        store.count_suppressions(conn, {"hard_bounce": 5, "complaint": 1}, yesterday)
        store.count_suppressions(conn, {"hard_bounce": 2}, yesterday)
        store.count_suppressions(conn, {"hard_bounce": -1, "complaint": 2})          # today
        store.count_suppressions(conn, {"hard_bounce": 40}, old)
    with bootstrap.engine(settings).connect() as conn:
        before = ops_view.suppression_panel(conn, now)
    days = before["growth"]["days"]
    assert before["by_reason"] == {"hard_bounce": 46, "complaint": 3}
    assert before["growth"]["by_reason"]["hard_bounce"][days.index(yesterday)] == 7
    assert before["growth"]["by_reason"]["hard_bounce"][days.index(today)] == -1
    with bootstrap.engine(settings).begin() as conn:
        store.fold_suppression_counts(conn, now)
        rows = conn.execute(select(store.suppression_counts.c.day).order_by(store.suppression_counts.c.day)).scalars().all()
    assert sorted(set(rows)) == ["", yesterday, today] and len(rows) == 5      # one row per day and reason
    with bootstrap.engine(settings).connect() as conn:
        assert ops_view.suppression_panel(conn, now) == before


def test_dashboard_numbers_agree_with_show_status(api):
    from bounceproc.app import ops_view, status_report
    settings, base = api
    now = datetime.now(timezone.utc)
    seed(settings, now, domains=5, rules=4)
    with bootstrap.engine(settings).connect() as conn:
        status = status_report.status(conn, now)
        totals = ops_view.traffic(conn, now, "hour")["totals"]
        rates = ops_view.complaint_rates(conn, now)
    hour = status["events"]["last_hour"]
    assert totals["delivered"] == hour["delivered"] == 5 and totals["complained"] == hour["complained"] == 5
    assert totals["hard_bounce"] + totals["soft_bounce"] == hour["bounced"] == 4
    overall = [r for r in status["complaints"] if r["dimension"] == "all"][0]
    assert sum(r["complaints"] for r in rates["provider"]) == overall["complaints"]
    assert sum(r["delivered"] for r in rates["sending_domain"]) == overall["delivered"]


def test_count_maintenance_takes_turns(fresh_pg_url, make_settings):
    """The sweep's merge waits for an hourly prune's merge / fold in progress instead of taking row
    locks in another order (they deadlocked): both hold one advisory lock until they commit."""
    import threading

    from bounceproc.app import maintenance
    from bounceproc.storage.traffic_counts import fold_counts
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    eng = bootstrap.engine(settings)
    done = threading.Event()
    with eng.begin() as conn:
        fold_counts(conn, now)                      # the prune holds the lock until its commit
        t = threading.Thread(target=lambda: (maintenance.compact_counts(settings, now), done.set()), daemon=True)
        t.start()
        assert not done.wait(1.0), "the sweep's merge ran beside the prune's fold"
    assert done.wait(30), "the sweep's merge never ran after the prune committed"
    t.join(5)


def test_a_batch_is_counted_as_its_events_one_by_one(sqlite_url, make_settings):
    """add_counts counts a batch per key (time, type, sender, IP, job, vmta, provider); the rows
    must be those of counting each event on its own, the way `remove_counts` uncounts them."""
    import random
    from collections import Counter

    from sqlalchemy import delete

    from bounceproc.storage import event_counts as ec, traffic_counts as tc
    from bounceproc.storage.ops_tables import rule_counts, traffic_counts
    from bounceproc.storage.tables import complaint_counts, event_counts
    rnd = random.Random(12)
    t0 = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    types = ("delivered", "bounced", "deferred", "complained", "unsubscribed", "queue_deferred")
    domains = ("gmail.com", "Outlook.COM", "yahoo.com", "example.org", "")
    evs = [Event(event_key("c", i), rnd.choice(types), f"u{i}@{rnd.choice(domains)}" if rnd.random() < .9 else "",
                 t0 + timedelta(seconds=rnd.randrange(300)), "acct", sender=rnd.choice(("b@S.example.org", "", "x")),
                 source_ip=rnd.choice(("", "192.0.2.1")), job_id=rnd.choice(("", "j1")), vmta=rnd.choice(("", "v1")),
                 hard=rnd.random() < .5, reason=rnd.choice(("", "userunknown", "x" * 40)),
                 rule=rnd.choice(("", "r1", "y" * 80)), category=rnd.choice(("", "bad-mailbox")),
                 diagnostic=rnd.choice(("", "550 5.1.1 unknown", "z" * 600)))
           for i in range(3000)]
    tables = (event_counts, complaint_counts, traffic_counts, rule_counts)
    eng = bootstrap.engine(make_settings(database_url=sqlite_url))

    def rows():
        with eng.connect() as conn:
            return [sorted(tuple(r) for r in conn.execute(select(*(c for c in t.c if c.name != "id"))).all())
                    for t in tables]

    with eng.begin() as conn:
        ec.add_counts(conn, evs)
    batched = rows()
    with eng.begin() as conn:
        for t in tables:
            conn.execute(delete(t))
        ec._append(conn, Counter((e.occurred_at, e.type, e.category, e.sender, e.source_ip, e.job_id) for e in evs))
        tc.add_traffic(conn, ((1, e.occurred_at, e.type, e.hard, e.recipient_domain, ec.sending_domain(e.sender),
                               e.vmta, e.source_ip, e.job_id, e.reason, e.rule, e.diagnostic) for e in evs))
    assert rows() == batched and all(batched)
