"""The MTA's durable spool: messages in append-only segment files, fsynced before `250`.

Adapter layer (files, a writer thread). In: (envelope, bytes) from the listener. Out: a
SpooledMessage once the bytes are on disk and fsynced; on start, every message with recipients
not yet finished (recovery).

Layout: `seg-NNNNNNNN.log` holds message records, `seg-NNNNNNNN.done` their recipients' state:
  record  = b"M <meta-len> <data-len>\n" + meta JSON + data
  state   = b"D <id> <index>\n"   finished (delivered or bounced): never sent again
            b"T <id> <index> <failures> <due>\n"   deferred: failures so far, next attempt
Group commit: sessions queue their message, the writer thread appends everything queued
meanwhile with one write and one fdatasync, then answers them all; one fsync serves many
messages. A new segment's directory entry is fsynced too.
State lines are written (to the OS, not fsynced) as soon as an outcome is known, so a `kill -9`
loses none; only a power loss can lose recent `D` lines (those recipients are delivered again:
a duplicate, never a loss). A `D` is written after the remote `250`, so a `kill -9` between the
`250` and the write delivers that recipient again on restart: the only duplicate.
The spool stays bounded: a segment whose messages are all finished is deleted with its state file.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass

from bounceproc.mta.hooks import SpooledMessage

log = logging.getLogger("bounceproc.mta.spool")

SEGMENT_BYTES = 64 * 1024 * 1024
ROLL_EMPTY_BYTES = 1024 * 1024
MAX_BATCH_BYTES = 16 * 1024 * 1024
_SEG = re.compile(r"seg-(\d{8})\.log\Z")


@dataclass
class Recovered:
    message: SpooledMessage
    finished: set[int]
    deferred: dict[int, tuple[int, float]]   # index -> (failures, due)


class Spool:
    def __init__(self, directory: str) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self._read_fds: dict[int, int] = {}
        self._state_fds: dict[int, int] = {}
        self._live: dict[int, int] = {}          # segment -> messages not finished
        self._seg = 0
        self._seg_fd = -1
        self._seg_size = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> list[Recovered]:
        """Every spooled message with unfinished recipients; finished segments are deleted."""
        out: list[Recovered] = []
        segs = sorted(int(m.group(1)) for m in (_SEG.match(n) for n in os.listdir(self.dir)) if m)
        for seg in segs:
            path = self._path(seg, "log")
            state = self._read_state(seg)
            live = 0
            with open(path, "rb") as fh:
                buf = fh.read()
            pos = 0
            while pos < len(buf):
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
                parts = buf[pos:nl].split()
                if len(parts) != 3 or parts[0] != b"M":
                    log.warning("spool %s: unreadable record at %d; the rest is ignored", path, pos)
                    break
                mlen, dlen = int(parts[1]), int(parts[2])
                start = nl + 1
                if start + mlen + dlen > len(buf):
                    log.warning("spool %s: torn record at %d (never acknowledged); ignored", path, pos)
                    break
                meta = json.loads(buf[start:start + mlen])
                msg = _message(meta, seg, start + mlen, dlen)
                finished, deferred = state.get(msg.id, (set(), {}))
                msg.pending = sum(1 for i in range(len(msg.rcpts)) if i not in finished)
                if msg.pending:
                    live += 1
                    out.append(Recovered(msg, finished, deferred))
                pos = start + mlen + dlen
            self._seg = max(self._seg, seg)
            if live:
                self._live[seg] = live
            else:
                self._unlink(seg)
        return out

    def _read_state(self, seg: int) -> dict[str, tuple[set[int], dict[int, tuple[int, float]]]]:
        out: dict = {}
        try:
            with open(self._path(seg, "done"), "rb") as fh:
                for line in fh:
                    p = line.split()
                    if len(p) < 3 or not line.endswith(b"\n"):
                        continue
                    fin, dfr = out.setdefault(p[1].decode(), (set(), {}))
                    if p[0] == b"D":
                        fin.add(int(p[2]))
                    elif p[0] == b"T" and len(p) == 5:
                        dfr[int(p[2])] = (int(p[3]), float(p[4]))
        except FileNotFoundError:
            pass
        return out

    # -- writing ----------------------------------------------------------------------------
    def start(self) -> "Spool":
        self._new_segment()
        self._thread = threading.Thread(target=self._writer, name="mta-spool", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread:
            self._queue.put(None)
            self._thread.join(30)
            self._thread = None
        with self._lock:
            if self._seg_fd >= 0:
                os.close(self._seg_fd)
                self._seg_fd = -1
                if not self._live.get(self._seg):
                    self._unlink(self._seg)
            for fds in (self._read_fds, self._state_fds):
                for fd in fds.values():
                    os.close(fd)
                fds.clear()

    async def store(self, meta: dict, data: bytes) -> SpooledMessage:
        """Append and fsync; returns once durable. Raises OSError if the disk refused."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        meta.setdefault("id", new_id())
        self._queue.put((meta, data, fut, loop))
        return await fut

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, size = [item], len(item[1])
            while size < MAX_BATCH_BYTES:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
                size += len(nxt[1])
            self._write_batch(batch)

    def _write_batch(self, batch: list) -> None:
        try:
            if self._seg_size >= SEGMENT_BYTES or (self._seg_size >= ROLL_EMPTY_BYTES
                                                   and not self._live.get(self._seg)):
                self._roll()  # a full segment, or an idle one whose messages are all finished
            chunks, results, pos = [], [], self._seg_size
            seg = self._seg
            for meta, data, fut, loop in batch:
                mj = json.dumps(meta, separators=(",", ":")).encode()
                head = b"M %d %d\n" % (len(mj), len(data))
                chunks += [head, mj, data]
                msg = _message(meta, seg, pos + len(head) + len(mj), len(data))
                msg.pending = len(msg.rcpts)
                results.append((msg, fut, loop))
                pos += len(head) + len(mj) + len(data)
            blob = b"".join(chunks)
            view = memoryview(blob)
            while view:
                n = os.write(self._seg_fd, view)
                view = view[n:]
            os.fdatasync(self._seg_fd)
            self._seg_size = pos
            with self._lock:
                self._live[seg] = self._live.get(seg, 0) + len(results)
            for msg, fut, loop in results:
                loop.call_soon_threadsafe(_resolve, fut, msg, None)
        except OSError as exc:
            log.error("spool write failed: %s", exc)
            for _, _, fut, loop in batch:
                loop.call_soon_threadsafe(_resolve, fut, None, exc)

    def _new_segment(self) -> None:
        self._seg += 1
        self._seg_fd = os.open(self._path(self._seg, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._seg_size = 0
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _roll(self) -> None:
        old, old_fd = self._seg, self._seg_fd
        self._new_segment()
        os.close(old_fd)
        with self._lock:
            if not self._live.get(old):
                self._live.pop(old, None)
                self._unlink(old)

    # -- reading and state (event loop) -----------------------------------------------------
    def read(self, msg: SpooledMessage) -> bytes:
        fd = self._read_fds.get(msg.segment)
        if fd is None:
            fd = self._read_fds[msg.segment] = os.open(self._path(msg.segment, "log"), os.O_RDONLY)
        return os.pread(fd, msg.size, msg.offset)

    def _state(self, seg: int, line: bytes) -> None:
        fd = self._state_fds.get(seg)
        if fd is None:
            fd = self._state_fds[seg] = os.open(self._path(seg, "done"),
                                                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.write(fd, line)

    def deferred(self, msg: SpooledMessage, index: int, failures: int, due: float) -> None:
        self._state(msg.segment, b"T %s %d %d %.3f\n" % (msg.id.encode(), index, failures, due))

    def finished(self, msg: SpooledMessage, index: int) -> None:
        """Record one recipient as done; deletes the segment once all its messages are done."""
        self._state(msg.segment, b"D %s %d\n" % (msg.id.encode(), index))
        msg.pending -= 1
        if msg.pending > 0:
            return
        seg = msg.segment
        with self._lock:
            left = self._live.get(seg, 0) - 1
            self._live[seg] = left
            if left <= 0 and seg != self._seg:
                self._live.pop(seg, None)
                self._unlink(seg)

    def _unlink(self, seg: int) -> None:
        for fds in (self._read_fds, self._state_fds):
            fd = fds.pop(seg, None)
            if fd is not None:
                os.close(fd)
        for ext in ("log", "done"):
            try:
                os.unlink(self._path(seg, ext))
            except FileNotFoundError:
                pass

    def _path(self, seg: int, ext: str) -> str:
        return os.path.join(self.dir, f"seg-{seg:08d}.{ext}")

    def segments(self) -> int:
        return sum(1 for n in os.listdir(self.dir) if _SEG.match(n))


_RUN = uuid.uuid4().hex[:6]          # this process's ids: time, a random part drawn once, a counter
_SEQ = itertools.count()


def new_id() -> str:
    """A message id unique across restarts: hex seconds, 6 random hex digits per process, a
    6-digit counter (one random draw per process, not one per message)."""
    return f"{int(time.time()):x}{_RUN}{next(_SEQ) & 0xFFFFFF:06x}"


def _resolve(fut: asyncio.Future, value, exc) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _message(meta: dict, seg: int, offset: int, size: int) -> SpooledMessage:
    return SpooledMessage(id=meta["id"], mail_from=meta.get("from", ""), rcpts=list(meta["rcpts"]),
                          received=float(meta.get("received", 0.0)), vmta=meta.get("vmta", ""),
                          pool=meta.get("pool", ""), job_id=meta.get("job", ""), env_id=meta.get("envid", ""),
                          source_ip=meta.get("ip", ""), size=size, segment=seg, offset=offset)
