"""What a `pipe` or `import` run did, for its last line: records stored, duplicates skipped,
quarantined by reason, batches still waiting for a worker.

Application layer. Read from the intake rows of the run (`records`, `stored`, `state`) and their
quarantine entries (indexed by intake id), never from the events table.
"""
from __future__ import annotations

import re
from collections import Counter

from sqlalchemy import func, select

from bounceproc.storage.tables import intake, quarantine

_REASON_HEAD = re.compile(r"^[^:(]*")


def reason_kind(reason: str) -> str:
    """The reason without its particulars: "too few columns (5 of 23)" -> "too few columns"."""
    return (_REASON_HEAD.match(reason or "").group(0).strip() or reason or "unknown")[:80]


def summarise(conn, intake_ids: list[int]) -> dict:
    out = {"batches": len(intake_ids), "pending": 0, "records": 0, "stored": 0, "duplicates": 0,
           "quarantined": 0, "quarantined_by_reason": {}}
    reasons: Counter[str] = Counter()
    for i in range(0, len(intake_ids), 1000):
        chunk = intake_ids[i:i + 1000]
        row = conn.execute(select(func.count().filter(intake.c.state == "pending"),
                                  func.coalesce(func.sum(intake.c.records).filter(intake.c.state == "done"), 0),
                                  func.coalesce(func.sum(intake.c.stored).filter(intake.c.state == "done"), 0))
                           .where(intake.c.id.in_(chunk))).one()
        out["pending"] += int(row[0])
        out["records"] += int(row[1])
        out["stored"] += int(row[2])
        for reason, n in conn.execute(select(quarantine.c.reason, func.count()).where(
                quarantine.c.intake_id.in_(chunk)).group_by(quarantine.c.reason)):
            reasons[reason_kind(reason)] += n
    out["quarantined"] = sum(reasons.values())
    out["quarantined_by_reason"] = dict(reasons.most_common())
    out["duplicates"] = max(0, out["records"] - out["stored"] - out["quarantined"])
    return out


def summary_line(s: dict) -> str:
    line = (f"{s['records']} records: {s['stored']} stored, {s['duplicates']} duplicates skipped, "
            f"{s['quarantined']} quarantined")
    if s["quarantined_by_reason"]:
        line += " (" + ", ".join(f"{k}: {n}" for k, n in s["quarantined_by_reason"].items()) + ")"
    if s["pending"]:
        line += f"; {s['pending']} of {s['batches']} batches wait for a worker"
    return line
