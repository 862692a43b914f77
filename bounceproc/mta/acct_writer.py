"""Write accounting records to each `<acct-file>`: rotating CSV files and `|command` pipes.

Adapter layer (files, subprocesses, one writer thread). In: Outcomes from the engine and the
listener. Out: PowerMTA-format CSV (bounceproc.domain.mta.acct) — each file and each (re)start
of a pipe begins with the header line, as PowerMTA does, so `<acct-file |bounceproc pipe>` works.

Files: `acct.csv` is written as `acct-YYYY-MM-DD-NNNN.csv`, rotated at `max-size` or after
`move-interval`, moved to `move-to` if set; rotated files older than `delete-after` are deleted.
Pipes: a failed pipe is restarted after `retry-interval`; records meanwhile are dropped (as
PowerMTA does; keep a file acct-file next to it for replay with `bounceproc import`).
"""
from __future__ import annotations

import glob
import logging
import os
import queue
import shutil
import subprocess
import threading
import time

from bounceproc.domain.mta.acct import Outcome, columns, csv_line, to_record, union_header
from bounceproc.domain.mta.config import AcctFile

log = logging.getLogger("bounceproc.mta.acct")


class _Target:
    def __init__(self, spec: AcctFile) -> None:
        self.spec = spec
        self.header = union_header(spec.records, spec.record_fields)
        self.cols = {t: columns(t, spec.record_fields.get(t, "*")) for t in spec.records}
        self.header_line = ",".join(self.header) + "\r\n"

    def write(self, rtype: str, record: dict) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _FileTarget(_Target):
    def __init__(self, spec: AcctFile) -> None:
        super().__init__(spec)
        base, ext = os.path.splitext(spec.target)
        self.base, self.ext = base, ext or ".csv"
        self.fh = None
        self.opened = 0.0
        self.size = 0
        os.makedirs(os.path.dirname(os.path.abspath(spec.target)), exist_ok=True)

    def _open(self) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        seq = 0
        while os.path.exists(path := f"{self.base}-{day}-{seq:04d}{self.ext}"):
            seq += 1
        self.path = path
        self.fh = open(path, "a", encoding="utf-8", newline="")
        if self.spec.world_readable:
            os.chmod(path, 0o644)
        self.fh.write(self.header_line)
        self.opened, self.size = time.time(), len(self.header_line)

    def _rotate_due(self) -> bool:
        return self.size >= max(self.spec.max_size, 1) or time.time() - self.opened >= self.spec.move_interval

    def write(self, rtype: str, record: dict) -> None:
        if self.fh is None:
            self._open()
        elif self._rotate_due():
            self.rotate()
        line = csv_line(self.header, record, self.cols[rtype])
        self.fh.write(line)
        self.size += len(line)

    def flush(self) -> None:
        if self.fh:
            self.fh.flush()
            if self.spec.sync:
                os.fsync(self.fh.fileno())

    def rotate(self) -> None:
        if self.fh:
            self.fh.close()
            if self.spec.move_to:
                os.makedirs(self.spec.move_to, exist_ok=True)
                shutil.move(self.path, os.path.join(self.spec.move_to, os.path.basename(self.path)))
        self._prune()
        self._open()

    def _prune(self) -> None:
        if self.spec.delete_after is None:
            return
        cutoff = time.time() - self.spec.delete_after
        for p in glob.glob(f"{self.base}-*{self.ext}"):
            try:
                if os.path.getmtime(p) < cutoff:
                    os.unlink(p)
            except OSError:
                pass

    def close(self) -> None:
        if self.fh:
            self.fh.close()
            self.fh = None


class _PipeTarget(_Target):
    def __init__(self, spec: AcctFile) -> None:
        super().__init__(spec)
        self.proc: subprocess.Popen | None = None
        self.failed_at = 0.0

    def _start(self) -> bool:
        if self.failed_at and time.time() - self.failed_at < self.spec.retry_interval:
            return False
        try:
            self.proc = subprocess.Popen(self.spec.target, shell=True, stdin=subprocess.PIPE,
                                         start_new_session=True)
            self.proc.stdin.write(self.header_line.encode())
            self.failed_at = 0.0
            return True
        except OSError as exc:
            self._fail("starting", exc)
            return False

    def _fail(self, what: str, exc: Exception) -> None:
        log.error('Error %s "|%s": %s', what, self.spec.target, exc)
        self.failed_at = time.time()
        self.proc = None

    def write(self, rtype: str, record: dict) -> None:
        if (self.proc is None or self.proc.poll() is not None) and not self._start():
            return
        try:
            self.proc.stdin.write(csv_line(self.header, record, self.cols[rtype]).encode())
        except (OSError, ValueError) as exc:
            self._fail("writing to", exc)

    def flush(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self._fail("writing to", exc)

    def close(self, timeout: float = 60.0) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error('"|%s" did not exit within %ss after end of input', self.spec.target, timeout)


_ROTATE = object()


class AcctWriter:
    """Fan records out to every configured acct-file, off the event loop."""

    def __init__(self, specs: list[AcctFile]) -> None:
        self.targets = [(_PipeTarget if s.pipe else _FileTarget)(s) for s in specs]
        self.wanted = {t for s in specs for t in s.records}
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mta-acct", daemon=True)
        self._started = False

    def start(self) -> "AcctWriter":
        if self.targets:
            self._thread.start()
            self._started = True
        return self

    def emit(self, outcome: Outcome) -> None:
        if outcome.type in self.wanted and self._started:
            self._queue.put(outcome)

    def rotate(self) -> None:
        """`rotate acct`: every file target starts a new file (done on the writer thread)."""
        if self._started:
            self._queue.put(_ROTATE)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch = [item]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for o in batch:
                if o is None:
                    stop = True
                    continue
                if o is _ROTATE:
                    for t in self.targets:
                        if isinstance(t, _FileTarget):
                            t.flush()
                            t.rotate()
                    continue
                for t in self.targets:
                    if o.type in t.spec.records:
                        t.write(o.type, to_record(o, t.spec.iso_times))
            for t in self.targets:
                t.flush()
        for t in self.targets:
            t.close()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(120)
            self._started = False
