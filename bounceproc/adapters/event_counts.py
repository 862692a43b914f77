"""Per-minute event counts: written with every stored batch, summed for the status windows.

Adapter layer (SQLAlchemy Core). `add_counts` appends one row per (minute, type, category) of a
batch's new events: plain inserts, so two workers storing batches of the same minute never wait
for each other. `window_counts` sums the rows of a window, grouped by type or by category;
a day is at most a few rows per batch, however many events it held.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from bounceproc.adapters.bulk import bulk_insert
from bounceproc.adapters.tables import event_counts
from bounceproc.domain.events import Event


def add_counts(conn, evs: Sequence[Event]) -> None:
    """Count `evs` (events just stored, none of them stored before) by minute, type and category."""
    if not evs:
        return
    exact = Counter((e.occurred_at, e.type, e.category) for e in evs)   # a batch shares few times
    per_minute: Counter = Counter()
    for (at, type_, category), n in exact.items():
        per_minute[(at.replace(second=0, microsecond=0), type_, category)] += n
    bulk_insert(conn, event_counts, [{"minute": m, "type": t, "category": c, "n": n}
                                     for (m, t, c), n in sorted(per_minute.items())])


def window_counts(conn, since: datetime, by: str, types: Sequence[str] = ()) -> dict[str, int]:
    """Events since the minute that holds `since`, summed by `type` or `category` (optionally only
    events of `types`)."""
    col = event_counts.c[by]
    stmt = (select(col, func.sum(event_counts.c.n))
            .where(event_counts.c.minute >= since.replace(second=0, microsecond=0)).group_by(col))
    if types:
        stmt = stmt.where(event_counts.c.type.in_(list(types)))
    return {k: int(n) for k, n in conn.execute(stmt).all()}


def prune_counts(conn, before: datetime) -> int:
    return conn.execute(delete(event_counts).where(event_counts.c.minute < before)).rowcount or 0
