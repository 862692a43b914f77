"""service.record_events on PostgreSQL and SQLite: idempotent, suppresses per policy, keeps history."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from bp_testing import subscribe_webhooks
from sqlalchemy import func, select

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.storage.event_counts import complaint_totals, window_counts
from bounceproc.storage.tables import (
    block_counters, events, outbox, soft_state, suppression_counts, suppression_history, suppressions,
)
from bounceproc.domain.events import Event, event_key

T0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def ev(type_, rcpt, reason="", hard=False, at=T0, **kw):
    return Event(event_key=event_key(type_, rcpt, reason, at), type=type_, recipient=rcpt, occurred_at=at,
                 source="acct", reason=reason, hard=hard, **kw)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, make_settings, tmp_path):
    if request.param == "sqlite":
        return make_settings(database_url=request.getfixturevalue("sqlite_url"))
    return make_settings(database_url=request.getfixturevalue("fresh_pg_url"))


def count(conn, table, *where):
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_batch_decides_and_replay_changes_nothing(settings):
    batch = [
        ev("delivered", "ok@example.com"),
        ev("bounced", "gone@example.com", "userunknown", True, status="5.1.1", category="bad-mailbox", rule="r1"),
        ev("bounced", "full@example.com", "mailboxfull", False, status="4.2.2", category="quota-issues"),
        ev("bounced", "blocked@example.net", "blocked", False, status="5.7.1", category="spam-related", vmta="v1"),
        ev("complained", "angry@example.com", "feedback", feedback_type="abuse"),
    ]
    subscribe_webhooks(settings)
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        res = service.record_events(conn, batch, settings)
    assert (res.new_events, res.suppressed, res.soft_counted, res.blocks) == (5, 2, 1, 1)
    with eng.begin() as conn:
        again = service.record_events(conn, batch, settings)
    assert again.new_events == 0
    with eng.connect() as conn:
        assert count(conn, events) == 5
        assert window_counts(conn, T0, "type") == {"delivered": 1, "bounced": 3, "complained": 1}  # counted once
        sup = {r.address: r for r in conn.execute(select(suppressions))}
        assert set(sup) == {"gone@example.com", "angry@example.com"}
        assert sup["gone@example.com"].reason == "hard_bounce" and sup["gone@example.com"].rule == "r1"
        assert sup["angry@example.com"].reason == "complaint"
        assert count(conn, suppression_history) == 2
        assert count(conn, soft_state) == 1
        assert conn.execute(select(block_counters.c.count)).scalar_one() == 1
        types = sorted(conn.execute(select(outbox.c.type)).scalars())
        assert types.count("recipient.suppressed") == 2 and "domain.blocked" in types


def test_soft_threshold_and_reset_by_delivery(settings):
    eng = bootstrap.engine(settings)
    a = "slow@example.com"
    with eng.begin() as conn:
        service.record_events(conn, [ev("bounced", a, "mailboxfull", at=T0)], settings)
        service.record_events(conn, [ev("delivered", a, at=T0 + timedelta(days=1))], settings)
        assert count(conn, soft_state) == 0
        for day in (2, 3, 4):
            service.record_events(conn, [ev("bounced", a, "mailboxfull", at=T0 + timedelta(days=day))], settings)
        row = conn.execute(select(suppressions)).one()
        assert row.reason == "soft_bounce_threshold"
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
        # The third bouncing day (T0 + 4 days) plus soft_suppression_days.
        assert expires == T0 + timedelta(days=4 + settings.soft_suppression_days)


def test_manual_suppress_and_lift_keep_history(settings):
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        assert service.suppress(conn, "x@example.com", "list:news", "manual", "operator", "cli", "asked")
        assert not service.suppress(conn, "x@example.com", "list:news", "manual", "operator", "cli", "again")
        assert service.lift(conn, "x@example.com", "list:news", "re-opted in", "cli")
        assert not service.lift(conn, "x@example.com", "list:news", "nothing", "cli")
        actions = [r.action for r in conn.execute(select(suppression_history).order_by(suppression_history.c.id))]
        assert actions == ["created", "updated", "deleted"]


def test_manual_put_changes_a_manual_reason_but_not_a_policy_one(settings):
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        service.suppress(conn, "m@example.com", "global", "manual", "api", "key1", "by hand")
        service.suppress(conn, "m@example.com", "global", "import", "api", "key1", "from a file")
        service.record_events(conn, [ev("bounced", "h@example.com", "userunknown", True, status="5.1.1")], settings)
        service.suppress(conn, "h@example.com", "global", "manual", "api", "key1", "note only")
        rows = {r.address: r for r in conn.execute(select(suppressions))}
    assert rows["m@example.com"].reason == "import"
    assert rows["h@example.com"].reason == "hard_bounce" and rows["h@example.com"].note == "note only"


def test_concurrent_batches_on_the_same_recipients_do_not_deadlock(make_settings, fresh_pg_url):
    """Two workers recording overlapping batches (one in reverse order) wait for each other."""
    import threading
    settings = make_settings(database_url=fresh_pg_url)
    eng = bootstrap.engine(settings)
    rcpts = [f"r{i}@example.com" for i in range(300)]
    errors: list[BaseException] = []

    def work(tag, order, barrier):
        batch = [ev("bounced", r, "userunknown", True, at=T0 + timedelta(seconds=i), status=tag)
                 for i, r in enumerate(order)]
        barrier.wait(timeout=30)
        try:
            with eng.begin() as conn:
                service.record_events(conn, batch, settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for round_ in range(3):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=work, args=(f"5.1.{round_}a", rcpts, barrier)),
                   threading.Thread(target=work, args=(f"5.1.{round_}b", rcpts[::-1], barrier))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    with eng.connect() as conn:
        assert count(conn, suppressions) == 300 and count(conn, events) == 600   # replays add nothing


def test_awkward_values_survive_the_copy_path_and_a_partial_replay(settings):
    """COPY text is built by hand on PostgreSQL: tabs, backslashes, line breaks, quotes, non-ASCII
    and JSON attrs must come back exactly; a batch that is partly known takes the fallback path."""
    diag = 'smtp;550 5.1.1 <a\\b@x> tab\there\nnext line\r\nend "quoted" \\N \u00fcml\u00e4ut \U0001f4e7'
    odd = [
        ev("bounced", "odd@example.com", "userunknown", True, diagnostic=diag, status="5.1.1",
           attrs={"k": "v\\w\t\"x\"", "n": 1}),
        ev("delivered", "plain@example.com", intake_id=7),
        ev("deferred", "tab@example.com", "mailboxfull", diagnostic="\t\\\t", attrs={}),
    ]
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        assert service.record_events(conn, odd[:1], settings).new_events == 1
    with eng.begin() as conn:   # one known key, two new: all three offered, two inserted
        assert service.record_events(conn, odd, settings).new_events == 2
    with eng.connect() as conn:
        rows = {r.recipient: r for r in conn.execute(select(events))}
    assert len(rows) == 3
    assert rows["odd@example.com"].diagnostic == diag
    assert rows["odd@example.com"].attrs == {"k": "v\\w\t\"x\"", "n": 1}
    assert rows["plain@example.com"].intake_id == 7 and rows["plain@example.com"].attrs is None
    assert rows["tab@example.com"].diagnostic == "\t\\\t"


def test_outbox_rows_only_for_subscribed_types(settings):
    """No endpoint: no outbox row (the fan-out would send it to nobody); an endpoint for one type:
    rows of that type only. The suppressions and history are the same either way."""
    hard = [ev("bounced", "gone@example.com", "userunknown", True, status="5.1.1", category="bad-mailbox")]
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        res = service.record_events(conn, hard, settings)
    assert (res.suppressed, res.outbox) == (1, 0)
    subscribe_webhooks(settings, ("recipient.suppressed",))
    with eng.begin() as conn:
        res = service.record_events(conn, [ev("bounced", "gone2@example.com", "userunknown", True),
                                           ev("complained", "angry@example.com", "feedback",
                                              feedback_type="abuse")], settings)
    assert res.suppressed == 2
    with eng.connect() as conn:
        assert sorted(conn.execute(select(outbox.c.type)).scalars()) == ["recipient.suppressed"] * 2
        assert count(conn, suppression_history) == 3


def test_prune_drops_counts_past_35_days(settings):
    from bounceproc.app import maintenance
    now = datetime.now(timezone.utc)
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        service.record_events(conn, [ev("delivered", "old@example.com", at=now - timedelta(days=36)),
                                     ev("delivered", "new@example.com", at=now - timedelta(days=1))], settings)
        assert window_counts(conn, now - timedelta(days=40), "type") == {"delivered": 2}
        assert complaint_totals(conn, now - timedelta(days=40), None, "") == [("", 2, 0)]
        maintenance.prune(conn, settings, now)
        assert window_counts(conn, now - timedelta(days=40), "type") == {"delivered": 1}
        assert complaint_totals(conn, now - timedelta(days=40), None, "") == [("", 1, 0)]
        assert count(conn, events) == 2           # the events themselves are not touched


def test_prune_events_past_their_retention_in_chunks(settings, make_settings):
    from bounceproc.app import maintenance
    now = datetime.now(timezone.utc)
    old = [ev("delivered", f"old{i}@example.com", at=now - timedelta(days=40 + i)) for i in range(5)]
    recent = [ev("bounced", "gone@example.com", "userunknown", True, status="5.1.1", at=now - timedelta(days=2))]
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, old + recent, settings)
    assert maintenance.prune_events(settings, now) == 0                  # default: kept forever
    keep30 = make_settings(database_url=settings.database_url, event_retention_days=30)
    assert maintenance.prune_events(keep30, now, chunk=2) == 5           # three chunks: 2, 2, 1
    with bootstrap.engine(settings).connect() as conn:
        assert [r.recipient for r in conn.execute(select(events.c.recipient))] == ["gone@example.com"]
        assert count(conn, suppressions) == 1                            # suppressions untouched
    assert maintenance.prune_events(keep30, now) == 0


def test_suppression_counts_follow_every_change(settings):
    """Suppressions per reason (status, /metrics) come from recorded changes; after every kind of
    change they equal a count of the list itself, and folding them changes nothing."""
    from bounceproc.app import maintenance
    from bounceproc.storage.suppression_store import fold_suppression_counts, suppression_totals
    now = datetime.now(timezone.utc)

    def truth(conn):
        return {r: n for r, n in conn.execute(select(suppressions.c.reason, func.count())
                                              .group_by(suppressions.c.reason))}
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, [ev("bounced", f"h{i}@example.com", "userunknown", True, status="5.1.1")
                                     for i in range(3)], settings)
        service.suppress(conn, "m@example.com", "global", "manual", "api", "k", "by hand")
        service.suppress(conn, "m@example.com", "global", "import", "api", "k", "from a file")  # reason moves
        service.suppress(conn, "h0@example.com", "global", "manual", "api", "k", "note only")    # policy's: kept
        service.suppress(conn, "t@example.com", "global", "manual", "api", "k", "", expires_at=now - timedelta(minutes=1))
        assert suppression_totals(conn) == truth(conn) == {"hard_bounce": 3, "import": 1, "manual": 1}
        service.lift(conn, "h1@example.com", "global", "re-opted in", "cli")
        assert not service.lift(conn, "h1@example.com", "global", "again", "cli")
        maintenance.prune(conn, settings, now)                                                 # expires t@, folds
        assert suppression_totals(conn) == truth(conn) == {"hard_bounce": 2, "import": 1}
        fold_suppression_counts(conn)
        assert suppression_totals(conn) == {"hard_bounce": 2, "import": 1}
        assert count(conn, suppression_counts) == 2
