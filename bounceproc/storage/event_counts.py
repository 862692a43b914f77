"""Per-minute event and complaint counts: written with every stored batch, summed for the status
windows and the complaint rates.

Adapter layer (SQLAlchemy Core). `add_counts` appends, for a batch's new events, one
`event_counts` row per (minute, type, category) and one `complaint_counts` row per (minute,
sending domain, source IP, job) of its deliveries and complaints: plain inserts, so two workers
storing batches of the same minute never wait for each other. Events that `bounceproc reprocess`
replaces are uncounted by rows with negative numbers (`remove_counts`); events deleted by the
retention prune stay counted (the counts say what happened, for as long as they are kept). `window_counts` and
`complaint_totals` sum a window's rows; a day is at most a few rows per batch, however many
events it held.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, func, literal, select

from bounceproc.storage.bulk import bulk_insert
from bounceproc.storage.tables import complaint_counts, event_counts
from bounceproc.domain.providers import provider_of
from bounceproc.storage.traffic_counts import (add_traffic, count_rule, kind_of, lock_counts, minute_of,
                                               prune_traffic, traffic_key, write_traffic)
from bounceproc.domain.events import Event


def sending_domain(sender: str) -> str:
    """The envelope sender's domain, lowercased ("" without one)."""
    parts = sender.split("@")
    return parts[1].lower() if len(parts) > 1 else ""


def add_counts(conn, evs: Sequence[Event]) -> None:
    """Count `evs` (events just stored, none of them stored before) per minute: event_counts and
    complaint_counts, and the operations view's traffic_counts and rule_counts."""
    if not evs:
        return
    # Most of a batch (deliveries) differs only in what no count keeps (recipient, message):
    # keyed by time, type, category, sender, IP, job, vmta and provider, a batch's thousands of
    # events make a few hundred keys (counted by Counter's C loop), and both count tables are
    # worked out per key. Bounces also count per rule, with an example diagnostic, one by one.
    providers: dict[str, str] = {}
    known = providers.get

    def unseen(domain: str) -> str:
        p = providers[domain] = provider_of(domain)
        return p

    exact = Counter((e.occurred_at, e.type, e.category, e.sender, e.source_ip, e.job_id, e.vmta,
                     known(d := e.recipient[e.recipient.rfind("@") + 1:]) or unseen(d),   # recipient_domain
                     e.type == "bounced" and bool(e.hard)) for e in evs)
    minutes: dict[datetime, datetime] = {}
    rules: Counter = Counter()
    examples: dict[tuple, str] = {}
    for e in evs:
        if e.type == "bounced":
            count_rule(rules, examples, 1, minute_of(minutes, e.occurred_at), e.reason, e.rule, e.diagnostic)
    counts: Counter = Counter()
    traffic: Counter = Counter()
    senders: dict[str, str] = {}      # a batch has a few senders: each domain worked out once
    for (at, type_, category, sender, ip, job, vmta, provider, hard), n in exact.items():
        counts[(at, type_, category, sender, ip, job)] += n
        kind = kind_of(type_, hard)
        if kind is not None:
            sdomain = senders.get(sender)
            if sdomain is None:
                sdomain = senders[sender] = sending_domain(sender)
            traffic[traffic_key(minute_of(minutes, at), kind, provider, sdomain, vmta, ip, job)] += n
    _append(conn, counts)
    write_traffic(conn, traffic, rules, examples)


def remove_counts(conn, rows: Iterable[Mapping]) -> None:
    """Uncount stored events about to be deleted and replaced (`bounceproc reprocess`): rows of
    the events table, counted with negative numbers."""
    exact: Counter = Counter()
    for r in rows:
        exact[(r["occurred_at"], r["type"], r["category"], r["sender"], r["source_ip"], r["job_id"])] -= 1
    if exact:
        _append(conn, exact)
        add_traffic(conn, ((-1, r["occurred_at"], r["type"], r.get("hard"), r.get("recipient_domain", ""),
                            sending_domain(r["sender"]), r.get("vmta", ""), r["source_ip"], r["job_id"],
                            r.get("reason", ""), r.get("rule", ""), "") for r in rows))


def _append(conn, exact: Counter) -> None:
    by_type: Counter = Counter()
    mailing: dict[tuple, list[int]] = {}
    for (at, type_, category, sender, ip, job), n in exact.items():
        minute = at.replace(second=0, microsecond=0)
        by_type[(minute, type_, category)] += n
        if type_ in ("delivered", "complained"):
            pair = mailing.setdefault((minute, sending_domain(sender)[:255], ip, job), [0, 0])
            pair[type_ == "complained"] += n
    bulk_insert(conn, event_counts, [{"minute": m, "type": t, "category": c, "n": n}
                                     for (m, t, c), n in sorted(by_type.items())])
    if mailing:
        bulk_insert(conn, complaint_counts, [
            {"minute": m, "sending_domain": d, "source_ip": ip, "job_id": job, "delivered": dl,
             "complained": cp} for (m, d, ip, job), (dl, cp) in sorted(mailing.items())])


def window_counts(conn, since: datetime, by: str, types: Sequence[str] = ()) -> dict[str, int]:
    """Events since the minute that holds `since`, summed by `type` or `category` (optionally only
    events of `types`)."""
    col = event_counts.c[by]
    stmt = (select(col, func.sum(event_counts.c.n))
            .where(event_counts.c.minute >= since.replace(second=0, microsecond=0)).group_by(col))
    if types:
        stmt = stmt.where(event_counts.c.type.in_(list(types)))
    return {k: int(n) for k, n in conn.execute(stmt).all() if n}   # 0: uncounted by a reprocess


def complaint_totals(conn, since: datetime, until: datetime | None, by: str) -> list[tuple[str, int, int]]:
    """(key, delivered, complained) per `by` ("sending_domain", "source_ip", "job_id", or "" for
    one overall row), for the minutes from the one that holds `since` to the one before `until`."""
    key = complaint_counts.c[by] if by else literal("")
    stmt = (select(key, func.sum(complaint_counts.c.delivered), func.sum(complaint_counts.c.complained))
            .where(complaint_counts.c.minute >= since.replace(second=0, microsecond=0)).group_by(key))
    if until is not None:
        stmt = stmt.where(complaint_counts.c.minute < until)
    return [(k or "", int(d or 0), int(c or 0)) for k, d, c in conn.execute(stmt).all()]


def prune_counts(conn, before: datetime) -> int:
    lock_counts(conn)
    n = conn.execute(delete(event_counts).where(event_counts.c.minute < before)).rowcount or 0
    n += conn.execute(delete(complaint_counts).where(complaint_counts.c.minute < before)).rowcount or 0
    return n + prune_traffic(conn, before)
