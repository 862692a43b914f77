"""Per-minute traffic and bounce-rule counts of the operations view: written with every stored
batch (by event_counts.add_counts), summed by the dashboard and /metrics.

Adapter layer (SQLAlchemy Core). `write_traffic` appends one `traffic_counts` row per (minute,
kind, provider, sending domain, vmta, source IP, job) of a batch, and one `rule_counts` row per
(minute, reason, rule) of its bounces with one example diagnostic (`count_rule`); add_counts
works the keys out per batch, `add_traffic` event by event (`sign` -1 uncounts events that
`bounceproc reprocess` replaces; a test checks that both give the same rows). The read side
(`traffic_series`, `traffic_totals`, `rule_totals`) sums a window's rows, never the events. `merge_minutes` (the 30-second sweep, and the hourly
prune) merges the per-batch rows of each settled minute into one row per minute and key, in these
two tables and in event_counts / complaint_counts; `fold_counts` (hourly prune) makes old rows
coarser.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from bounceproc.domain.providers import provider_of
from bounceproc.storage.bulk import bulk_insert
from bounceproc.storage.ops_tables import rule_counts, traffic_counts
from bounceproc.storage.tables import complaint_counts, event_counts

KINDS = ("delivered", "hard_bounce", "soft_bounce", "deferred", "complained")
FILTERS = ("sending_domain", "vmta", "source_ip", "job_id")


def kind_of(type_: str, hard: bool) -> str | None:
    """The traffic kind of an event (None: not traffic, e.g. an unsubscribe)."""
    if type_ == "bounced":
        return "hard_bounce" if hard else "soft_bounce"
    return type_ if type_ in ("delivered", "deferred", "complained") else None


def add_traffic(conn, items: Iterable[tuple]) -> None:
    """Count items (sign, occurred_at, type, hard, recipient_domain, sending_domain, vmta,
    source_ip, job_id, reason, rule, diagnostic); sign is +1, or -1 to uncount."""
    traffic: Counter = Counter()
    rules: Counter = Counter()
    examples: dict[tuple, str] = {}
    # A batch shares a few times and a few thousand domains: each minute and provider is worked
    # out once per batch, not once per event.
    minutes: dict[datetime, datetime] = {}
    providers: dict[str, str] = {}
    for sign, at, type_, hard, rdomain, sdomain, vmta, ip, job, reason, rule, diag in items:
        kind = kind_of(type_, bool(hard))
        if kind is None:
            continue
        minute = minute_of(minutes, at)
        provider = providers.get(rdomain)
        if provider is None:
            provider = providers[rdomain] = provider_of(rdomain or "")
        traffic[traffic_key(minute, kind, provider, sdomain, vmta, ip, job)] += sign
        if type_ == "bounced":
            count_rule(rules, examples, sign, minute, reason, rule, diag)
    write_traffic(conn, traffic, rules, examples)


def minute_of(minutes: dict[datetime, datetime], at: datetime) -> datetime:
    """The minute of `at`, worked out once per distinct time (`minutes`: the batch's memo)."""
    minute = minutes.get(at)
    if minute is None:
        minute = minutes[at] = at.replace(second=0, microsecond=0)
    return minute


def traffic_key(minute: datetime, kind: str, provider: str, sdomain: str, vmta: str, ip: str, job: str) -> tuple:
    """A traffic_counts key, its values cut to the columns' widths ("" for a missing one)."""
    return (minute, kind, provider, (sdomain or "")[:255], vmta or "", ip or "", job or "")


def count_rule(rules: Counter, examples: dict, n: int, minute: datetime, reason: str, rule: str, diag: str) -> None:
    """Count `n` bounces of (minute, reason, rule), keeping the first diagnostic as its example."""
    key = (minute, (reason or "")[:32], (rule or "")[:64])
    rules[key] += n
    if n > 0 and diag and key not in examples:
        examples[key] = diag[:500]


def write_traffic(conn, traffic: Counter, rules: Counter, examples: dict) -> None:
    """Append the rows of `traffic` ((minute, kind, provider, sending domain, vmta, source IP,
    job) -> n) and of `rules` ((minute, reason, rule) -> n, with `examples`)."""
    bulk_insert(conn, traffic_counts, [
        {"minute": m, "kind": k, "provider": p, "sending_domain": d, "vmta": v, "source_ip": ip,
         "job_id": j, "n": n} for (m, k, p, d, v, ip, j), n in sorted(traffic.items()) if n])
    bulk_insert(conn, rule_counts, [
        {"minute": m, "reason": r, "rule": rl, "n": n, "example": examples.get((m, r, rl), "")}
        for (m, r, rl), n in sorted(rules.items()) if n])


def _filtered(stmt, filters: dict[str, str]):
    for col, value in filters.items():
        if col in FILTERS and value:
            stmt = stmt.where(traffic_counts.c[col] == value)
    return stmt


def traffic_series(conn, since: datetime, bucket_seconds: int, filters: dict[str, str]) -> list[tuple]:
    """(bucket start epoch seconds, kind, provider, n) for the minutes from the one holding `since`."""
    rows = conn.execute(_filtered(
        select(traffic_counts.c.minute, traffic_counts.c.kind, traffic_counts.c.provider,
               func.sum(traffic_counts.c.n))
        .where(traffic_counts.c.minute >= since.replace(second=0, microsecond=0))
        .group_by(traffic_counts.c.minute, traffic_counts.c.kind, traffic_counts.c.provider), filters)).all()
    out: Counter = Counter()
    for minute, kind, provider, n in rows:
        t = int(minute.timestamp())
        out[(t - t % bucket_seconds, kind, provider)] += int(n or 0)
    return [(t, k, p, n) for (t, k, p), n in sorted(out.items()) if n]


def traffic_totals(conn, since: datetime, by: Sequence[str], filters: dict[str, str] | None = None) -> list[tuple]:
    """(*values of `by`, kind, n) summed since the minute holding `since`."""
    cols = [traffic_counts.c[b] for b in by] + [traffic_counts.c.kind]
    stmt = (select(*cols, func.sum(traffic_counts.c.n))
            .where(traffic_counts.c.minute >= since.replace(second=0, microsecond=0)).group_by(*cols))
    return [(*r[:-1], int(r[-1] or 0)) for r in conn.execute(_filtered(stmt, filters or {})).all()]


def top_values(conn, since: datetime, col: str, limit: int) -> list[str]:
    """The `limit` values of column `col` (a filter) with the most traffic since `since` ("" left out)."""
    c, n = traffic_counts.c[col], func.sum(traffic_counts.c.n)
    rows = conn.execute(select(c).where(traffic_counts.c.minute >= since.replace(second=0, microsecond=0), c != "")
                        .group_by(c).order_by(n.desc(), c).limit(limit)).scalars()
    return list(rows)


def rule_totals(conn, since: datetime, until: datetime | None = None) -> list[tuple[str, str, int, str]]:
    """(reason, rule, bounces, an example diagnostic) from the minute holding `since` to `until`."""
    stmt = (select(rule_counts.c.reason, rule_counts.c.rule, func.sum(rule_counts.c.n),
                   func.max(rule_counts.c.example))
            .where(rule_counts.c.minute >= since.replace(second=0, microsecond=0))
            .group_by(rule_counts.c.reason, rule_counts.c.rule))
    if until is not None:
        stmt = stmt.where(rule_counts.c.minute < until)
    return [(r, rl, int(n or 0), ex or "") for r, rl, n, ex in conn.execute(stmt).all()]


# (rows of this many seconds, folded into rows of that many, once older than this)
FOLDS = ((60, 600, timedelta(hours=2)), (600, 86400, timedelta(days=2)))
# table -> (key columns, summed columns, kept columns: the first non-empty value wins)
_SHAPES = {"traffic_counts": (("kind", "provider", "sending_domain", "vmta", "source_ip", "job_id"), ("n",), ()),
           "rule_counts": (("reason", "rule"), ("n",), ("example",)),
           "event_counts": (("type", "category"), ("n",), ()),
           "complaint_counts": (("sending_domain", "source_ip", "job_id"), ("delivered", "complained"), ())}
# Per-batch rows of a minute are merged into one row per minute and key once the minute is this old
# (workers still store batches of the minute before), by the sweep (every 30 s) over the last
# MERGE_LOOKBACK and by the hourly prune over the last MERGE_LOOKBACK_HOURLY.
MERGE_SETTLE = timedelta(minutes=2)
MERGE_LOOKBACK = timedelta(minutes=15)
MERGE_LOOKBACK_HOURLY = timedelta(hours=3)
# Merges, folds and prunes of the count tables delete and rewrite rows in ranges that overlap (the
# sweep's last 15 minutes lie inside the hourly prune's last 3 hours); two of them at once on
# PostgreSQL took row locks in different orders and deadlocked. One transaction-level advisory lock
# makes them take turns; workers only insert count rows and never wait for it.
COUNTS_LOCK = 0x62705F636F756E74      # 'bp_count'


def lock_counts(conn) -> None:
    """Wait for the count tables' maintenance lock until the transaction ends (PostgreSQL; SQLite
    has one writer at a time anyway)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({COUNTS_LOCK})")


def _fold(conn, table, fine: int, coarse: int, until: datetime, since: datetime | None = None) -> int:
    """Replace the rows of `table` covering `fine` seconds with minute in [since, until) by one row
    per `coarse` bucket and key; returns how many rows were read. The rows folded are exactly those
    this call deleted, so rows written meanwhile are neither lost nor doubled."""
    keys, sums, kept = _SHAPES[table.name]
    bucketed = "bucket" in table.c
    cond = [table.c.minute < until] + ([table.c.minute >= since] if since is not None else [])
    if bucketed:
        cond.append(table.c.bucket == fine)
    totals: dict[tuple, list[int]] = {}
    first: dict[tuple, str] = {}
    folded = 0
    cols = [table.c.minute, *(table.c[k] for k in keys), *(table.c[s] for s in sums), *(table.c[e] for e in kept)]
    for row in conn.execute(table.delete().where(*cond).returning(*cols)):
        t = int(row[0].timestamp())
        key = (datetime.fromtimestamp(t - t % coarse, timezone.utc), *row[1:1 + len(keys)])
        acc = totals.setdefault(key, [0] * len(sums))
        for i in range(len(sums)):
            acc[i] += row[1 + len(keys) + i]
        if kept and row[-1]:
            first.setdefault(key, row[-1])
        folded += 1
    bulk_insert(conn, table, [{"minute": k[0], **dict(zip(keys, k[1:])), **dict(zip(sums, v)),
                               **({"bucket": coarse} if bucketed else {}),
                               **({kept[0]: first.get(k, "")} if kept else {})}
                              for k, v in sorted(totals.items()) if any(v)])
    return folded


def merge_minutes(conn, now: datetime, lookback: timedelta = MERGE_LOOKBACK) -> int:
    """Merge the per-batch rows of each settled minute of the last `lookback` into one row per
    minute and key, in the four count tables; returns how many rows were read. A window then
    reads at most (minutes x keys) rows, however many batches stored its events."""
    until = now.replace(second=0, microsecond=0) - MERGE_SETTLE
    lock_counts(conn)
    return sum(_fold(conn, t, 60, 60, until, until - lookback)
               for t in (event_counts, complaint_counts, traffic_counts, rule_counts))


def fold_counts(conn, now: datetime) -> int:
    """Fold old traffic and rule rows into coarser ones (FOLDS); returns how many rows were folded."""
    lock_counts(conn)
    folded = 0
    for table in (traffic_counts, rule_counts):
        for fine, coarse, age in FOLDS:
            cutoff = int((now - age).timestamp())
            folded += _fold(conn, table, fine, coarse, datetime.fromtimestamp(cutoff - cutoff % coarse, timezone.utc))
    return folded


def prune_traffic(conn, before: datetime) -> int:
    lock_counts(conn)
    n = conn.execute(delete(traffic_counts).where(traffic_counts.c.minute < before)).rowcount or 0
    return n + (conn.execute(delete(rule_counts).where(rule_counts.c.minute < before)).rowcount or 0)
