"""The PowerMTA accounting pipe and file import: raw acct CSV -> durable intake, in batches.

Adapter layer (stdlib + bounceproc.bootstrap/SQLAlchemy). Records are not parsed here: each
batch of raw lines is committed to the `intake` table with the header line in effect and the
line number of its first line, and one task carrying the intake id is enqueued (or processed
in-process in the embedded default). Parsing happens in the worker (app.intake.process_intake).

`bounceproc pipe` (run_pipe): PowerMTA writes records to our stdin as they happen and blocks when
we stop reading, and it drops records if the pipe dies. So:
- a reader thread only reads stdin, cuts batches (N lines or T seconds, whichever first, always at
  a record boundary: quoted fields may hold newlines) and appends each batch to a local journal
  (one file per batch in the data dir, written to a temporary name, fsynced, renamed);
- a submitter thread moves journal batches into the intake, oldest first, with retries and
  backoff while the database is down, and deletes a journal file only after its intake commit;
- on start the journal is replayed first; on EOF (or SIGTERM) the last batch is journalled and
  the journal drained for a bounded time; what is left is sent by the next start.
A crash between an intake commit and the journal delete sends that batch again on the next start:
the journal names each batch (a random key stored with its intake row), so it is not stored twice.

`bounceproc import FILE...` (run_import): the same batching over files, without a journal (the
file is the durable copy). Each batch's intake row and the file's checkpoint (byte offset, line
number, header) are committed in ONE transaction, so an import killed at any point resumes
exactly after the last committed batch, and importing a file again changes nothing.

Header lines (`type,...`) are not put into payloads: a header line ends the current batch and
becomes the header of the next one.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path

from bounceproc.domain.parse.acct import KNOWN_TYPES, is_header_line, looks_like_record, starts_record
from bounceproc.domain.storable import escape_unstorable
from bounceproc.entrypoints.dispatch import process_now
from bounceproc.entrypoints.progress_bar import progress_bar

log = logging.getLogger("bounceproc.pipe")

READ_CHUNK = 1 << 20
MAX_RECORD_LINES = 200          # a quoted field never spans more; beyond it the quote was stray
MAX_LINE_BYTES = 1 << 20        # a "line" longer than this is cut (PowerMTA never writes one)
MAX_BATCH_BYTES = 16 << 20
# a line with an odd number of double quotes opens (or closes) a quoted field spanning lines
_COUNT_QUOTES = methodcaller("count", b'"')
_ONE = 1
# First bytes of a line that may start a record or a header line (t: also `type,`; the BOM).
_RECORD_START = {t[:1].encode() for t in KNOWN_TYPES} | {b"\xef"}


@dataclass(frozen=True)
class Batch:
    header: str          # header line in effect for the payload ("" if none seen yet)
    first_line: int      # line number of the payload's first line
    payload: bytes       # complete records, raw
    lines: int           # physical lines in the payload
    end_offset: int      # stream offset just after the payload (or the header lines that followed)
    next_line: int       # line number of the line after the payload
    next_header: str     # header in effect after the payload


class Batcher:
    """Cuts a byte stream into batches of complete records and tracks the header in effect.

    feed(data) returns the batches completed by a size limit or a header line; cut() ends the
    current batch (time limit, EOF). Line numbers are physical (LF-terminated) lines.
    """

    def __init__(self, header: str = "", line_no: int = 1, offset: int = 0, max_lines: int = 5000,
                 max_bytes: int = MAX_BATCH_BYTES):
        self.header = header
        self.line_no = line_no          # number of the next physical line
        self.offset = offset            # stream offset of the next byte to be split into lines
        self.max_lines = max(1, int(max_lines))
        self.max_bytes = max_bytes
        self._carry = b""               # partial line
        self._record: list[bytes] = []  # lines of a record whose quote is still open
        self._in_quote = False
        self._lines: list[bytes] = []   # complete records of the current batch
        self._nlines = 0
        self._nbytes = 0
        self._first = line_no
        self._committed_offset = offset  # offset after the last complete record or header
        self.started: float | None = None   # monotonic time of the batch's first record
        # Whether any line so far looks like an accounting record (asked line by line only
        # until one does): a stream with none is not PowerMTA's (a binary, another CSV).
        self.seen_record = False

    def feed(self, data: bytes) -> list[Batch]:
        out: list[Batch] = []
        if self._carry:
            data = self._carry + data
            self._carry = b""
        end = data.rfind(b"\n") + 1
        if not end:
            if len(data) > MAX_LINE_BYTES:     # no newline for a megabyte: cut it as a line
                self._line(data, out)
            else:
                self._carry = data
            return out
        self._carry = data[end:]
        if len(self._carry) > MAX_LINE_BYTES:
            self._line(self._carry, out)
            self._carry = b""
        block = data[:end]
        lines = block.split(b"\n")
        lines.pop()                            # the empty string after the last newline
        if (not self._in_quote and b"type," not in block and not block.startswith(b"\xef")
                and not any(map(_ONE.__and__, map(_COUNT_QUOTES, lines)))):
            # Fast path (nearly every chunk): only complete one-line records, no header line.
            self._bulk(lines, len(block), out)
        else:
            for line in lines:
                self._line(line + b"\n", out)
        return out

    def _bulk(self, lines: list[bytes], nbytes: int, out: list[Batch]) -> None:
        """Whole one-line records, in order: fill batches without looking at each line."""
        i, n = 0, len(lines)
        for _ in range(n + 1):
            if i >= n:
                break
            if self._nlines == 0:
                self.started = time.monotonic()
                self._first = self.line_no
            take = min(n - i, self.max_lines - self._nlines)
            part = lines[i:i + take]
            if not self.seen_record:
                self.seen_record = any(looks_like_record(x, self.header) for x in part)
            size = sum(map(len, part)) + take
            self._lines.append(b"\n".join(part) + b"\n")
            self._nlines += take
            self._nbytes += size
            self.line_no += take
            self.offset += size
            self._committed_offset = self.offset
            i += take
            if self._nlines >= self.max_lines or self._nbytes >= self.max_bytes:
                out.append(self.cut())

    def finish(self, partial_line: bool = True) -> list[Batch]:
        """EOF: a last line without newline counts and an open quote is closed by force, unless
        partial_line is False (a file that is still being written): then both are left, and
        `offset` / `line_no` point at their start, for the next run to read them whole."""
        out: list[Batch] = []
        if self._carry and partial_line:
            line, self._carry = self._carry, b""
            self._line(line, out)
        if self._record:
            if partial_line:
                self._end_record(out)
            else:                      # a multi-line record whose end is not written yet
                self.offset -= sum(map(len, self._record))
                self._record = []
                self._in_quote = False
        b = self.cut()
        if b:
            out.append(b)
        return out

    def _line(self, line: bytes, out: list[Batch]) -> None:
        n = len(line)
        if self._in_quote and line[:1] in _RECORD_START and starts_record(line, self.header):
            # A header line or a new record inside an "open quote": the quote was stray (a broken
            # record); what follows must not be swallowed, nor a real multi-line record after
            # it be cut in two by the quote parity. The parser isolates the broken line.
            self._in_quote = False
            self._end_record(out)
        if self._in_quote:
            self._record.append(line)
            self.offset += n
            if line.count(b'"') & 1 or len(self._record) >= MAX_RECORD_LINES:
                self._in_quote = False
                self._end_record(out)
            return
        self.offset += n
        if line[:1] in (b"t", b"\xef") and is_header_line(line):
            b = self.cut()
            if b:
                out.append(b)
            self.header = escape_unstorable(line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n"))
            if b"\x00" in line:       # not storable: the line also goes to the parser, which
                self._add([line], out)  # quarantines it (escaped); the escaped header stays in effect
                return
            self.line_no += 1
            self._first = self.line_no
            self._committed_offset = self.offset
            return
        if line.count(b'"') & 1:
            self._in_quote = True
            self._record.append(line)
            return
        self._add([line], out)

    def _end_record(self, out: list[Batch]) -> None:
        rec, self._record = self._record, []
        self._add(rec, out)

    def _add(self, rec: list[bytes], out: list[Batch]) -> None:
        if not self.seen_record:
            self.seen_record = looks_like_record(rec[0], self.header)
        if self._nlines == 0:
            self.started = time.monotonic()
            self._first = self.line_no
        self._lines.extend(rec)
        k = len(rec)
        self._nlines += k
        self.line_no += k
        self._nbytes += sum(map(len, rec)) if k > 1 else len(rec[0])
        self._committed_offset = self.offset
        if self._nlines >= self.max_lines or self._nbytes >= self.max_bytes:
            out.append(self.cut())

    def cut(self) -> Batch | None:
        """End the current batch at the last complete record (None when it is empty)."""
        if not self._nlines:
            return None
        b = Batch(self.header, self._first, b"".join(self._lines), self._nlines,
                  self._committed_offset, self.line_no, self.header)
        self._lines = []
        self._nlines = self._nbytes = 0
        self.started = None
        self._first = self.line_no
        return b


# ---------------------------------------------------------------------------------------------
# the local journal

class Journal:
    """One file per batch under `dir`: `<seq>.batch` = one JSON line (header, first_line, lines,
    key) + the raw payload. Written to `<seq>.tmp`, fsynced, renamed, directory fsynced. `key`
    names the batch for good (a random id): the intake stores it, so a batch sent again after a
    crash between its intake commit and its journal delete is not stored twice."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        # Several pipes may share a data dir (several <acct-file> blocks): each locks its own slot.
        self._lock_fh = None
        for slot in range(64):
            d = root / ("default" if slot == 0 else f"slot-{slot}")
            d.mkdir(parents=True, exist_ok=True)
            fh = open(d / ".lock", "a+b")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                fh.close()
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self._lock_fh, self.dir = fh, d
            break
        else:
            raise RuntimeError(f"no free journal slot under {root}")
        for tmp in self.dir.glob("*.tmp"):     # a write cut short by a crash was never journalled
            tmp.unlink(missing_ok=True)
        seqs = [int(p.stem) for p in self.dir.glob("*.batch") if p.stem.isdigit()]
        self._seq = max(seqs, default=0)
        self._dir_fd = os.open(self.dir, os.O_RDONLY)

    def append(self, b: Batch) -> Path:
        self._seq += 1
        name = f"{self._seq:012d}"
        tmp = self.dir / f"{name}.tmp"
        meta = json.dumps({"header": b.header, "first_line": b.first_line, "lines": b.lines,
                           "key": "pipe:" + uuid.uuid4().hex}, ensure_ascii=True).encode() + b"\n"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(meta + b.payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.dir / f"{name}.batch"
        os.rename(tmp, final)
        os.fsync(self._dir_fd)
        return final

    def entries(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("*.batch") if p.stem.isdigit())

    @staticmethod
    def read(path: Path) -> tuple[dict, bytes]:
        data = path.read_bytes()
        meta, _, payload = data.partition(b"\n")
        return json.loads(meta), payload

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._dir_fd)
        if self._lock_fh:
            self._lock_fh.close()


# ---------------------------------------------------------------------------------------------
# progress on stderr

class Progress:
    """Counts of a pipe or import run, written to stderr every few seconds; for `import` on a
    terminal, a bar (entrypoints/progress_bar.py) instead of those lines (not the last one)."""

    def __init__(self, label: str, every: float = 5.0, quiet: bool = False):
        self.label, self.every, self.quiet = label, every, quiet
        self.t0 = self.last = time.monotonic()
        self.lines = self.batches = self.submitted = 0
        self.bar = None             # progress_bar's update, when a bar is drawn
        self.bytes_before = 0       # import: bytes of the files before the current one
        self.path = ""              # import: the current file and the offset read up to
        self.offset = 0

    def tick(self, extra: str = "", force: bool = False) -> None:
        if self.bar is not None and not force:
            self.bar(self.bytes_before + self.offset, f"{Path(self.path).name}: {self.lines:,} lines")
            return
        now = time.monotonic()
        if self.quiet or (not force and now - self.last < self.every):
            return
        self.last = now
        rate = self.lines / max(now - self.t0, 1e-6)
        print(f"{self.label}: lines={self.lines} batches={self.batches} submitted={self.submitted} "
              f"rate={rate:,.0f}/s{extra}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# bounceproc pipe

class PipeRunner:
    def __init__(self, settings, stdin_fd: int = 0, batch_lines: int | None = None,
                 batch_seconds: float | None = None, drain_timeout: float = 60.0,
                 journal_dir: str | None = None, quiet: bool = False):
        self.settings = settings
        self.fd = stdin_fd
        self.batch_lines = int(batch_lines or settings.intake_batch_lines)
        self.batch_seconds = float(batch_seconds or settings.intake_batch_seconds)
        self.drain_timeout = drain_timeout
        self.journal = Journal(Path(journal_dir) if journal_dir else Path(settings.data_dir) / "pipe-journal")
        self.progress = Progress("bounceproc pipe", quiet=quiet)
        self.reading_done = threading.Event()
        self.stop_reading = threading.Event()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.schema_ready = False
        self.error_count = 0
        self.seen_record = True        # until the reader, at its end, says otherwise
        self.quiet = quiet
        self.intake_ids: list[int] = []

    # reader thread ---------------------------------------------------------------------------
    def read_loop(self) -> None:
        batcher = Batcher(max_lines=self.batch_lines)
        fd = self.fd
        try:
            for _ in iter(int, 1):             # until EOF or stop; bounded by the input
                if self.stop.is_set() or self.stop_reading.is_set():
                    break
                timeout = min(self.batch_seconds, 1.0)
                if batcher.started is not None:
                    timeout = max(0.0, min(timeout, batcher.started + self.batch_seconds - time.monotonic()))
                try:
                    ready, _, _ = select.select([fd], [], [], timeout)
                except (InterruptedError, ValueError):
                    ready = [fd]
                if ready:
                    try:
                        data = os.read(fd, READ_CHUNK)
                    except InterruptedError:
                        continue
                    except OSError as exc:
                        log.error("reading stdin failed: %s", exc)
                        data = b""
                    if not data:
                        break
                    for b in batcher.feed(data):
                        self._journal(b)
                if batcher.started is not None and time.monotonic() - batcher.started >= self.batch_seconds:
                    b = batcher.cut()
                    if b:
                        self._journal(b)
            for b in batcher.finish():
                self._journal(b)
            self.seen_record = batcher.seen_record
        except Exception:
            log.exception("pipe reader failed")
        finally:
            self.reading_done.set()
            self.wake.set()

    def _journal(self, b: Batch) -> None:
        for attempt in range(1_000_000):      # the disk must take it; PowerMTA has no replay
            try:
                self.journal.append(b)
                break
            except OSError as exc:
                log.error("journal write failed (%s); retrying", exc)
                time.sleep(min(5.0, 0.1 * (attempt + 1)))
        self.progress.lines += b.lines
        self.progress.batches += 1
        self.wake.set()

    # submitter thread ------------------------------------------------------------------------
    def submit_loop(self) -> None:
        from bounceproc import bootstrap
        backoff = 0.2
        for _ in iter(int, 1):                 # until the reader is done and the journal empty
            entries = self.journal.entries()
            if not entries:
                if self.reading_done.is_set() or self.stop.is_set():
                    return
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            for path in entries:
                if self.stop.is_set():
                    return
                try:
                    meta, payload = self.journal.read(path)
                except (OSError, ValueError) as exc:
                    log.error("unreadable journal entry %s (%s); moved aside", path.name, exc)
                    os.replace(path, path.with_suffix(".bad"))
                    continue
                try:
                    if not self.schema_ready:
                        bootstrap.ensure_schema(self.settings)
                        process_leftovers(self.settings)
                        self.schema_ready = True
                    self.intake_ids.append(bootstrap.submit_intake(
                        self.settings, "acct", payload, origin="pipe", inline=process_now(self.settings),
                        header=meta.get("header", ""), first_line=int(meta.get("first_line", 1)),
                        records=int(meta.get("lines", 0)), batch_key=meta.get("key") or None))
                except Exception as exc:  # database down or slow: keep the journal, retry
                    self.error_count += 1
                    log.warning("intake submit failed (%s: %s); retrying in %.1fs",
                                type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "", backoff)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    break
                backoff = 0.2
                self.journal.remove(path)
                self.progress.submitted += int(meta.get("lines", 0))
                self.progress.tick(f" journal={len(entries)}")

    def run(self) -> int:
        reader = threading.Thread(target=self.read_loop, name="acct-pipe-reader", daemon=True)
        submitter = threading.Thread(target=self.submit_loop, name="acct-pipe-submitter", daemon=True)
        backlog = len(self.journal.entries())
        if backlog:
            print(f"bounceproc pipe: replaying {backlog} journalled batches from {self.journal.dir}",
                  file=sys.stderr, flush=True)
        reader.start()
        submitter.start()
        while reader.is_alive():
            reader.join(timeout=0.5)
        deadline = time.monotonic() + self.drain_timeout
        while submitter.is_alive() and time.monotonic() < deadline:
            submitter.join(timeout=0.5)
            self.progress.tick(f" journal={len(self.journal.entries())} (draining)")
        left = len(self.journal.entries())
        self.stop.set()
        submitter.join(timeout=30)
        self.progress.tick(f" journal={left}", force=True)
        if left:
            print(f"bounceproc pipe: {left} batches stay in the journal {self.journal.dir}; "
                  f"the next `bounceproc pipe` sends them", file=sys.stderr, flush=True)
        if self.progress.lines and not self.seen_record:
            print(f"bounceproc pipe: {no_records_message(self.progress.lines)}", file=sys.stderr, flush=True)
        self.journal.close()
        if not self.quiet and self.intake_ids:
            print_summary("bounceproc pipe", self.settings, self.intake_ids)
        return 0


def print_summary(label: str, settings, intake_ids: list[int]) -> None:
    """The run's last line on stderr: stored, duplicates skipped, quarantined by reason."""
    from bounceproc import bootstrap
    from bounceproc.app.intake_summary import summarise, summary_line
    try:
        with bootstrap.engine(settings).connect() as conn:
            line = summary_line(summarise(conn, intake_ids))
    except Exception as exc:  # the data is committed; only the summary is missing
        line = f"no summary ({type(exc).__name__}: {exc})"
    print(f"{label}: {line}", file=sys.stderr, flush=True)


def run_pipe(settings, **kw) -> int:
    runner = PipeRunner(settings, **kw)

    def on_term(signum, frame):         # PowerMTA stop/reload: finish like at EOF
        runner.stop_reading.set()

    try:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
    except ValueError:                  # not the main thread (tests): no signal handling
        pass
    return runner.run()


# ---------------------------------------------------------------------------------------------
# bounceproc import

def file_key(path: Path) -> str:
    """Identity of an acct file that survives rotation by rename: device, inode, first line."""
    st = path.stat()
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    return f"{st.st_dev}:{st.st_ino}:{hashlib.blake2b(first, digest_size=8).hexdigest()}"


def _load_checkpoint(conn, key: str):
    from sqlalchemy import select
    from bounceproc.storage.tables import import_checkpoints as cp
    return conn.execute(select(cp.c.offset, cp.c.line_no, cp.c.header).where(cp.c.file_key == key)).first()


def _save_checkpoint(conn, key: str, path: str, offset: int, line_no: int, header: str) -> None:
    from datetime import datetime, timezone
    from bounceproc.storage.dialect import conflict_insert
    from bounceproc.storage.tables import import_checkpoints as cp
    values = {"file_key": key, "path": escape_unstorable(path), "offset": offset, "line_no": line_no,
              "header": escape_unstorable(header),
              "updated_at": datetime.now(timezone.utc)}
    stmt = conflict_insert(conn, cp).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["file_key"], set_={
        k: stmt.excluded[k] for k in ("path", "offset", "line_no", "header", "updated_at")}))


def import_file(settings, path: Path, batch_lines: int | None = None, restart: bool = False,
                progress: Progress | None = None) -> tuple[int, list[int], bool]:
    """Import one file from its checkpoint. Returns (lines submitted, intake ids, whether any
    of those lines looked like an accounting record)."""
    from bounceproc import bootstrap
    eng = bootstrap.engine(settings)
    key = file_key(path)
    header, line_no, offset = "", 1, 0
    if not restart:
        with eng.connect() as conn:
            row = _load_checkpoint(conn, key)
        if row is not None:
            offset, line_no, header = int(row.offset), int(row.line_no), row.header or ""
    size = path.stat().st_size
    if offset > size:           # truncated and rewritten in place: start again (keys dedupe)
        header, line_no, offset = "", 1, 0
    batcher = Batcher(header=header, line_no=line_no, offset=offset,
                      max_lines=int(batch_lines or settings.intake_batch_lines))
    ids: list[int] = []
    lines = 0
    origin = f"import:{path}"[:255]

    last_saved = [offset]

    def commit(b: Batch) -> None:
        nonlocal lines
        with eng.begin() as conn:
            intake_id = bootstrap.insert_intake(conn, "acct", b.payload, origin=origin, header=b.header,
                                                first_line=b.first_line, records=b.lines)
            _save_checkpoint(conn, key, str(path), b.end_offset, b.next_line, b.next_header)
        last_saved[0] = b.end_offset
        ids.append(intake_id)
        lines += b.lines
        if progress:
            progress.lines += b.lines
            progress.batches += 1
            progress.submitted += b.lines
            progress.path, progress.offset = str(path), b.end_offset
            progress.tick()
        try:
            bootstrap.enqueue_intake(settings, [intake_id], process_now(settings))
        except Exception as exc:  # broker down: the sweep re-enqueues the pending row
            log.warning("intake %s committed but not enqueued (%s); the sweep will pick it up", intake_id, exc)

    # The last line of a file still being written may be incomplete: leave it for the next run.
    settled = time.time() - path.stat().st_mtime > 60
    with open(path, "rb") as fh:
        fh.seek(offset)
        for _ in range(size // READ_CHUNK + 2):
            data = fh.read(min(READ_CHUNK, size - fh.tell()))
            if not data:
                break
            for b in batcher.feed(data):
                commit(b)
        for b in batcher.finish(partial_line=settled):
            commit(b)
    # Header or blank lines after the last batch: move the checkpoint so a re-run reads nothing.
    if batcher.offset > last_saved[0]:
        with eng.begin() as conn:
            _save_checkpoint(conn, key, str(path), batcher.offset, batcher.line_no, batcher.header)
    return lines, ids, batcher.seen_record


def process_leftovers(settings, limit: int = 100_000) -> int:
    """Embedded mode only: process acct intake rows a killed pipe/import committed but never
    processed (with a broker, the workers' periodic sweep does this). Returns how many."""
    if not settings.embedded:
        return 0
    from sqlalchemy import select
    from bounceproc import bootstrap
    from bounceproc.storage.tables import intake
    with bootstrap.engine(settings).connect() as conn:
        ids = list(conn.execute(select(intake.c.id).where(intake.c.state == "pending")
                                .where(intake.c.kind == "acct").order_by(intake.c.id).limit(limit)).scalars())
    for i in ids:
        try:
            bootstrap.enqueue_intake(settings, [i], process_now(settings))
        except Exception as exc:   # recorded on the row (attempts/error); the next run retries
            log.warning("left-over intake %s failed again: %s", i, exc)
    return len(ids)


def run_import(settings, paths: list[str], batch_lines: int | None = None, restart: bool = False,
               wait: float = 0.0, quiet: bool = False) -> int:
    from bounceproc import bootstrap
    bootstrap.ensure_schema(settings)
    left = process_leftovers(settings)
    if left and not quiet:
        print(f"bounceproc import: processed {left} batches left pending by an earlier run",
              file=sys.stderr, flush=True)
    progress = Progress("bounceproc import", quiet=quiet)
    all_ids: list[int] = []
    failed = no_records = 0
    sizes = [_size(Path(p)) for p in paths]
    with progress_bar("bounceproc import", sum(sizes), "bytes", quiet=quiet) as bar:
        progress.bar = bar
        for p, size in zip(paths, sizes):
            path = Path(p)
            try:
                n, ids, seen_record = import_file(settings, path, batch_lines, restart, progress)
            except OSError as exc:
                print(f"bounceproc import: {p}: {exc.strerror or exc}", file=sys.stderr)
                failed += 1
                continue
            finally:
                progress.bytes_before, progress.offset = progress.bytes_before + size, 0
            all_ids += ids
            if n and not seen_record:
                no_records += 1
                print(f"bounceproc import: {p}: {no_records_message(n)}", file=sys.stderr, flush=True)
            if not quiet:
                print(f"bounceproc import: {p}: {n} lines in {len(ids)} batches"
                      + ("" if n else " (nothing new since the checkpoint)"), file=sys.stderr, flush=True)
        if bar is not None:
            bar(progress.bytes_before)
    progress.tick(force=True)
    if wait and all_ids:
        left = wait_processed(settings, all_ids, wait)
        if left:
            print(f"bounceproc import: {left} batches not processed yet after {wait:.0f}s "
                  f"(workers running?)", file=sys.stderr)
    if all_ids and not quiet:
        print_summary("bounceproc import", settings, all_ids)
    return EXIT_UNREADABLE if failed else EXIT_NO_RECORDS if no_records else 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:             # reported when the file is read
        return 0


EXIT_UNREADABLE = 1     # a file could not be read (docs/powermta.md, "import exit codes")
EXIT_NO_RECORDS = 3     # a file had lines, none of them an accounting record


def no_records_message(lines: int) -> str:
    return (f"no valid accounting record in {lines} lines (no `type,...` header line, or no line of a "
            f"known record type with a readable time): not a PowerMTA acct file? Every line is "
            f"quarantined; see docs/powermta.md")


def wait_processed(settings, ids: list[int], timeout: float) -> int:
    """Poll until the intake rows are no longer pending; returns how many still are."""
    from sqlalchemy import func, select
    from bounceproc import bootstrap
    from bounceproc.storage.tables import intake
    deadline = time.monotonic() + timeout
    left = len(ids)
    for _ in range(int(timeout / 0.2) + 2):
        with bootstrap.engine(settings).connect() as conn:
            left = 0
            for i in range(0, len(ids), 1000):
                left += conn.execute(select(func.count()).select_from(intake).where(
                    intake.c.id.in_(ids[i:i + 1000])).where(intake.c.state == "pending")).scalar_one()
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return left
