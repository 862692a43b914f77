"""Quarantine use cases: list, show, replay and purge what could not become an event.

Application layer. The quarantine holds accounting records the parser refused (line_no > 0, raw
record, reason, the CSV header in effect) and messages the sink accepted that gave no event
(line_no 0: unreadable, or not a bounce / an auto-reply). `replay` re-runs them with the current
code and rules, after a fix or a rules change: an accounting record's whole intake batch is read
again when it is still kept (so a header line inside the batch still applies), else the record
alone under its stored header; a message is re-classified from the intake while its raw bytes are
kept (`raw_retention_days`). Event keys make a replay idempotent: what was stored before is not
stored twice, and a record that now gives events leaves the quarantine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update

from bounceproc import bootstrap
from bounceproc.config import Settings
from bounceproc.storage.tables import intake, quarantine

COLUMNS = ("id", "created_at", "origin", "intake_id", "line_no", "reason")


@dataclass
class ReplayResult:
    replayed: int = 0          # quarantine rows looked at
    resolved: int = 0          # rows that now give events (left the quarantine)
    still_quarantined: int = 0
    events_stored: int = 0     # new events (a replay stores nothing twice)
    skipped: list[str] = field(default_factory=list)   # why some rows could not be replayed

    def as_dict(self) -> dict:
        return {"replayed": self.replayed, "resolved": self.resolved,
                "still_quarantined": self.still_quarantined, "events_stored": self.events_stored,
                "skipped": self.skipped}


def _filtered(q, since: datetime | None = None, ids: list[int] | None = None, reason: str = ""):
    if since is not None:
        q = q.where(quarantine.c.created_at >= since)
    if ids:
        q = q.where(quarantine.c.id.in_(ids))
    if reason:
        q = q.where(quarantine.c.reason.contains(reason))
    return q


def list_entries(conn, since: datetime | None = None, reason: str = "", limit: int = 100,
                 after_id: int = 0) -> list[dict]:
    q = _filtered(select(*(quarantine.c[c] for c in COLUMNS)), since, None, reason)
    q = q.where(quarantine.c.id > after_id).order_by(quarantine.c.id).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def show_entry(conn, entry_id: int) -> dict | None:
    """One entry with its raw record or message (the whole message while the intake keeps it)."""
    row = conn.execute(select(quarantine).where(quarantine.c.id == entry_id)).mappings().first()
    if row is None:
        return None
    entry = dict(row)
    entry["kind"] = "message" if not row["line_no"] else "acct"
    if entry["kind"] == "message" and row["intake_id"] is not None:
        payload = conn.execute(select(intake.c.payload).where(intake.c.id == row["intake_id"])).scalar()
        if payload is not None:
            entry["raw"] = bytes(payload).decode("utf-8", "replace")
    return entry


def purge(conn, since: datetime | None = None, ids: list[int] | None = None, before: datetime | None = None) -> int:
    q = _filtered(delete(quarantine), since, ids)
    if before is not None:
        q = q.where(quarantine.c.created_at < before)
    return conn.execute(q).rowcount or 0


def replay(settings: Settings, since: datetime | None = None, ids: list[int] | None = None) -> ReplayResult:
    """Re-run the selected entries (all with neither `since` nor `ids`), one intake row per
    transaction."""
    res = ReplayResult()
    with bootstrap.engine(settings).connect() as conn:
        rows = conn.execute(_filtered(select(quarantine), since, ids).order_by(quarantine.c.id)).mappings().all()
    by_intake: dict[object, list] = {}
    for r in rows:
        by_intake.setdefault(r["intake_id"] if r["intake_id"] is not None else ("row", r["id"]), []).append(r)
    for entries in by_intake.values():
        with bootstrap.engine(settings).begin() as conn:
            _replay_group(conn, settings, entries, res)
    return res


def _replay_group(conn, settings: Settings, entries: list, res: ReplayResult) -> None:
    from bounceproc.app import service
    res.replayed += len(entries)
    first = entries[0]
    source = None
    if first["intake_id"] is not None:
        source = conn.execute(select(intake).where(intake.c.id == first["intake_id"])).first()
    if not first["line_no"]:                                   # a message
        if source is None:
            res.skipped.append(f"quarantine {first['id']}: the raw message is no longer kept (raw_retention_days)")
            res.still_quarantined += len(entries)
            return
        evs = _message_events(conn, settings, source, [e["id"] for e in entries])
        left = conn.execute(select(quarantine.c.id).where(quarantine.c.intake_id == source.id,
                                                          quarantine.c.line_no == 0)).scalars().all()
    else:                                                      # accounting records
        evs = _acct_events(conn, settings, source, entries)
        left = conn.execute(select(quarantine.c.id).where(
            quarantine.c.id.in_([e["id"] for e in entries]))).scalars().all()
    stored = service.record_events(conn, evs, settings, intake_id=first["intake_id"]) if evs else None
    res.events_stored += stored.new_events if stored else 0
    res.still_quarantined += len(left)
    res.resolved += len(entries) - len(left)


def _message_events(conn, settings: Settings, source, entry_ids: list[int]) -> list:
    """Classify the message again; it goes back to the quarantine if it still gives nothing."""
    from bounceproc.app.message_intake import events_from_message
    conn.execute(delete(quarantine).where(quarantine.c.id.in_(entry_ids)))
    evs = events_from_message(conn, source, settings)
    if evs:
        conn.execute(delete(quarantine).where(quarantine.c.intake_id == source.id, quarantine.c.line_no == 0))
    return evs


def _acct_events(conn, settings: Settings, source, entries: list) -> list:
    """Parse the intake batch again (or the records alone under their header); update the reason
    of records still refused, drop the entries of records that now parse."""
    from bounceproc.app.service import classifier_for, verp_format
    from bounceproc.domain.parse.acct import parse_acct_batch
    classifier, verp = classifier_for(settings), verp_format(settings)
    if source is not None and source.kind == "acct":
        evs, bad = parse_acct_batch(source.header or "", bytes(source.payload), int(source.first_line or 1),
                                    classifier, verp)
    else:
        evs, bad = [], []
        for e in entries:
            got, refused = parse_acct_batch(e["header"] or "", e["raw"].encode("utf-8", "surrogateescape")
                                            + b"\n", int(e["line_no"]), classifier, verp)
            evs.extend(got)
            bad.extend(refused)
    still = {q.line_no: q.reason for q in bad}
    for e in entries:
        if e["line_no"] in still:
            conn.execute(update(quarantine).where(quarantine.c.id == e["id"]).values(reason=still[e["line_no"]][:2000]))
        else:
            conn.execute(delete(quarantine).where(quarantine.c.id == e["id"]))
    return evs
