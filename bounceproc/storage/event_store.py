"""Append-only event log: bulk insert of events, skipping ones already stored (same event_key).

Adapter layer (psycopg 3 COPY on PostgreSQL, the sqlite3 connection on SQLite, both inside the
caller's SQLAlchemy transaction). `insert_events` costs a fixed number of statements per batch,
however large, and returns the keys that were new, so replays never create visible duplicates.

On PostgreSQL a batch is COPYed straight into `events` (text built by hand, see copy_text); only
if that hits a known key (a replayed batch) is the savepoint rolled back and the batch COPYed
into a per-connection temporary staging table and moved with one
`INSERT ... SELECT ... ORDER BY event_key ON CONFLICT (event_key) DO NOTHING RETURNING event_key`.
On SQLite it is one executemany of INSERT OR IGNORE (see _insert_sqlite).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import psycopg

from bounceproc.storage import json_text
from bounceproc.storage.bulk import pg_cursor
from bounceproc.storage.event_counts import add_counts
from bounceproc.domain.events import Event

# Columns written, in COPY order (everything but the serial id).
COLUMNS = ("event_key", "type", "occurred_at", "recipient", "recipient_domain", "sender", "source",
           "status", "reply_code", "diagnostic", "remote_mta", "reason", "category", "hard", "rule",
           "feedback_type", "vmta", "source_ip", "job_id", "list_id", "message_id", "intake_id",
           "attrs", "recorded_at")
_STAGE = "_bp_events_stage"
_STAGE_DDL = (f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
              + ", ".join(f"{c} {'timestamptz' if c in ('occurred_at', 'recorded_at') else 'boolean' if c == 'hard' else 'bigint' if c == 'intake_id' else 'text'}"
                          for c in COLUMNS)
              + ") ON COMMIT DELETE ROWS")
_COPY = f"COPY {_STAGE} ({', '.join(COLUMNS)}) FROM STDIN"
_COPY_DIRECT = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
_MOVE = (f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT "
         + ", ".join("attrs::json" if c == "attrs" else c for c in COLUMNS)
         + f" FROM {_STAGE} ORDER BY event_key ON CONFLICT (event_key) DO NOTHING RETURNING event_key")
# ORDER BY: concurrent batches take unique-index locks in the same order, so a replay racing the
# original waits instead of deadlocking.


def _unique(evs: Sequence[Event]) -> list[Event]:
    """Duplicates inside one batch: keep the first."""
    seen: dict[str, Event] = {}
    for e in evs:
        seen.setdefault(e.event_key, e)
    return list(seen.values()) if len(seen) != len(evs) else list(evs)


def insert_events(conn, evs: Sequence[Event], intake_id: int | None = None) -> set[str]:
    """Insert events (tagged with the intake they came from) and count the new ones per minute
    (event_counts); return the event_keys that were new."""
    if not evs:
        return set()
    now = datetime.now(timezone.utc)
    evs = _unique(evs)
    if conn.dialect.name == "postgresql":
        new = _insert_pg(conn, evs, intake_id, now)
    else:
        new = _insert_sqlite(conn, evs, intake_id, now)
    add_counts(conn, evs if len(new) == len(evs) else [e for e in evs if e.event_key in new])
    return new


_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_TAB_COUNT = len(COLUMNS) - 1
_NULL = "\\N"


def _rows(evs: Sequence[Event], intake_id: int | None, recorded: str, time_text, true, false, null,
          int_value):
    """Each event's values in COLUMNS order, in one back end's forms: `time_text(datetime)`, the
    values of true, false and NULL, `int_value(int)`. Timestamps are formatted once per distinct
    time (a batch shares a few); `intake_id`, when given, tags every row."""
    dumps = json_text.dumps
    default_iid = null if intake_id is None else int_value(intake_id)
    times: dict[datetime, str] = {}
    for e in evs:
        at = e.occurred_at
        ts = times.get(at)
        if ts is None:
            ts = times[at] = time_text(at)
        a = e.attrs
        iid = default_iid if intake_id is not None or e.intake_id is None else int_value(e.intake_id)
        yield (e.event_key, e.type, ts, e.recipient, e.recipient.rpartition("@")[2], e.sender,
               e.source, e.status, e.reply_code, e.diagnostic, e.remote_mta, e.reason, e.category,
               true if e.hard else false, e.rule, e.feedback_type, e.vmta, e.source_ip, e.job_id,
               e.list_id, e.message_id, iid, dumps(a) if a else null, recorded)


_I_IID, _I_ATTRS = COLUMNS.index("intake_id"), COLUMNS.index("attrs")


def copy_text(evs: Sequence[Event], intake_id: int | None, now: datetime) -> str:
    """The rows of `evs` in COPY text format (COLUMNS order), one line each.

    Built by hand rather than with psycopg's write_row: a joined line is checked once for the
    characters COPY text must escape (rare: tabs or backslashes in a diagnostic) and only such a
    line is escaped field by field. About a third of write_row's cost per row.
    """
    out: list[str] = []
    append = out.append
    for fields in _rows(evs, intake_id, now.isoformat(), datetime.isoformat, "t", "f", _NULL, str):
        line = "\t".join(fields)
        # The only backslashes in a clean line are those of its \N (NULL) fields.
        if (line.count("\t") != _TAB_COUNT
                or line.count("\\") != (fields[_I_IID] is _NULL) + (fields[_I_ATTRS] is _NULL)
                or "\n" in line or "\r" in line):
            line = "\t".join(f if f is _NULL else f.translate(_ESCAPE) for f in fields)
        append(line)
    out.append("")
    return "\n".join(out)


def _copy_rows(cur, sql: str, evs: list[Event], intake_id: int | None, now: datetime) -> None:
    data = copy_text(evs, intake_id, now).encode("utf-8", "surrogatepass")
    with cur.copy(sql) as copy:
        for i in range(0, len(data), 1 << 20):
            copy.write(data[i:i + (1 << 20)])


def _insert_pg(conn, evs: list[Event], intake_id: int | None, now: datetime) -> set[str]:
    cur = pg_cursor(conn)
    try:
        # Optimistic: a batch seen for the first time (nearly always) goes straight into events.
        # A replayed or racing batch hits the unique index (or, racing, a deadlock); its savepoint
        # is rolled back and the batch goes the staging way below, which skips known keys.
        cur.execute("SAVEPOINT bp_events")
        try:
            _copy_rows(cur, _COPY_DIRECT, evs, intake_id, now)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            cur.execute("ROLLBACK TO SAVEPOINT bp_events")
        else:
            cur.execute("RELEASE SAVEPOINT bp_events")
            return {e.event_key for e in evs}
        # Not cached per connection: a rolled-back transaction also rolls back the CREATE.
        cur.execute(_STAGE_DDL)
        _copy_rows(cur, _COPY, evs, intake_id, now)
        cur.execute(_MOVE)
        new = {k for (k,) in cur.fetchall()}
        cur.execute(f"TRUNCATE {_STAGE}")   # several batches in one transaction stay separate
        return new
    finally:
        cur.close()


# SQLite (the embedded default): one executemany of INSERT OR IGNORE on the sqlite3 connection,
# in the caller's transaction, with values in the forms SQLAlchemy stores (UTCDateTime as naive
# UTC text, booleans as 0/1, JSON as text); several times faster than a Core insert with
# RETURNING. Which rows were new: all of them when the change count says so (nearly always);
# else those that carry this call's recorded_at, a timestamp no earlier row can have.
_SQLITE_INSERT = (f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")


def _sqlite_time(dt: datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sqlite(conn, evs: list[Event], intake_id: int | None, now: datetime) -> set[str]:
    recorded = _sqlite_time(now)
    rows = list(_rows(evs, intake_id, recorded, _sqlite_time, 1, 0, None, int))
    dbapi = conn.connection.driver_connection
    cur = dbapi.cursor()
    try:
        before = dbapi.total_changes
        cur.executemany(_SQLITE_INSERT, rows)
        if dbapi.total_changes - before == len(rows):
            return {e.event_key for e in evs}
        keys = [e.event_key for e in evs]
        new: set[str] = set()
        for i in range(0, len(keys), 900):
            part = keys[i:i + 900]
            new.update(k for (k,) in cur.execute(
                f"SELECT event_key FROM events WHERE recorded_at = ? AND event_key IN ({', '.join('?' * len(part))})",
                [recorded, *part]))
        return new
    finally:
        cur.close()
