"""Helpers for the acct pipe/import end-to-end tests (no tests here).

stream(): a deterministic accounting stream modelled on PowerMTA's (mostly d, ~12% b, some t, a
few f/tq/rb/rs, bad lines, a header line mid-stream as after a pipe restart).
oracle(): what an undisturbed run must produce, computed with the pure parser.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from bp_testing import bin_path, free_port, settings_env
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.storage.tables import events, intake, quarantine, suppression_history, suppressions
from bounceproc.domain.parse.acct import parse_acct_batch

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "acct"
V5 = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
      "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
SHORT = "type,timeLogged,rcpt,orig,dsnStatus,dsnDiag,bounceCat,vmta,jobId,header_Message-ID"

BOUNCES = [
    ("5.1.1 (bad destination mailbox address)", 'smtp;550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual mailbox table', "bad-mailbox"),
    ("5.1.1 (bad destination mailbox address)", "smtp;550 5.1.1 The email account that you tried to reach does not exist. q{n}si - gsmtp", "bad-mailbox"),
    ("5.2.2 (mailbox full)", "smtp;552 5.2.2 Mailbox full: quota exceeded", "quota-issues"),
    ("5.7.1 (delivery not authorized, message refused)", 'smtp;554 5.7.1 Service unavailable; Client host [198.51.100.5] blocked using zen.spamhaus.org; "listed"', "spam-related"),
    ("5.1.2 (bad destination system: no such domain)", "smtp;550 5.1.2 Host unknown (Name server: {d}: host not found)", "bad-domain"),
]


def stream(n: int, seed: int = 1) -> bytes:
    """n data records (+ header lines, fixture rows, bad lines), CRLF, as PowerMTA writes them."""
    rnd = random.Random(seed)
    out = [V5]
    t0 = 1709287200
    for i in range(n):
        ts = time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(t0 + i // 50))
        dom = f"d{rnd.randrange(40)}.example.com"
        rcpt = f"user{i}@{dom}"
        if i == n // 2:                                    # a pipe restart: new header, new layout
            out.append(SHORT)
        short = i >= n // 2
        k = rnd.random()
        if short:
            if k < 0.85:
                out.append(f"d,{ts},{rcpt},bounces@example.net,2.0.0 (success),smtp;250 2.0.0 OK,,vmta-{i % 4},job-{i % 7},<m{i}@example.net>")
            else:
                st, diag, cat = BOUNCES[i % len(BOUNCES)]
                diag = diag.format(r=rcpt, n=i, d=dom).replace('"', '""')
                out.append(f'b,{ts},{rcpt},bounces@example.net,"{st}","{diag}",{cat},vmta-{i % 4},job-{i % 7},<m{i}@example.net>')
            continue
        common = (f"{ts},{ts},bounces@example.net,{rcpt},,")
        tail = f'mx.{dom} (192.0.2.{i % 250}),{{cat}},smtp,app (198.51.100.20),smtp,198.51.100.{5 + i % 3},192.0.2.{i % 250},"PIPELINING,8BITMIME,ENHANCEDSTATUSCODES",{900 + i % 500},vmta-{i % 4},job-{i % 7},,{dom}/vmta-{i % 4},pool'
        if k < 0.83:
            out.append("d," + common + "relayed,2.0.0 (success),smtp;250 2.0.0 OK," + tail.format(cat=""))
        elif k < 0.95:
            st, diag, cat = BOUNCES[i % len(BOUNCES)]
            diag = diag.format(r=rcpt, n=i, d=dom).replace('"', '""')
            out.append("b," + common + f'failed,"{st}","{diag}",' + tail.format(cat=cat))
        else:
            out.append("t," + common + "delayed,4.2.2 (mailbox full),smtp;452 4.2.2 Mailbox full," + tail.format(cat="quota-issues"))
        if i % 997 == 0:
            out.append(f'b,{ts},{ts},bounces@example.net,"broken quote@{dom},,failed,5.1.1,smtp;550')  # quarantined
        if i % 1499 == 0:
            out.append("zz,not,a,record")                  # quarantined: wrong column count
    return ("\r\n".join(out) + "\r\n").encode()


def oracle(data: bytes) -> tuple[set[str], int]:
    """(distinct event keys, quarantined lines) for a whole stream parsed in one go."""
    evs, bad = parse_acct_batch("", data)
    return {e.event_key for e in evs}, len(bad)


def db_state(settings) -> dict:
    with bootstrap.engine(settings).connect() as conn:
        return {
            "events": conn.execute(select(func.count()).select_from(events)).scalar_one(),
            "keys": set(conn.execute(select(events.c.event_key)).scalars()),
            "suppressions": {tuple(r) for r in conn.execute(
                select(suppressions.c.address, suppressions.c.scope, suppressions.c.reason))},
            "history": conn.execute(select(func.count()).select_from(suppression_history)).scalar_one(),
            "pending": conn.execute(select(func.count()).select_from(intake)
                                    .where(intake.c.state == "pending")).scalar_one(),
            "failed": conn.execute(select(func.count()).select_from(intake)
                                   .where(intake.c.state == "failed")).scalar_one(),
            "intake": conn.execute(select(func.count()).select_from(intake)).scalar_one(),
            "quarantine": conn.execute(select(func.count()).select_from(quarantine)).scalar_one(),
        }


def wait_drained(settings, timeout: float = 120.0) -> dict:
    """The state once no intake row is pending (or at the timeout). db_state's queries are not one
    snapshot: the events it read may predate the commit that made `pending` 0 (a worker finishing
    the last batch in between: "keys missing" with pending 0), so the state is read again then."""
    deadline = time.monotonic() + timeout
    state = db_state(settings)
    for _ in range(int(timeout * 2) + 1):
        if state["intake"] and not state["pending"]:
            return db_state(settings)
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        state = db_state(settings)
    return state


def intake_coverage(settings) -> list[tuple[int, int]]:
    """Sorted (first_line, last_line) of every acct intake payload (physical lines)."""
    with bootstrap.engine(settings).connect() as conn:
        rows = conn.execute(select(intake.c.first_line, intake.c.payload).where(intake.c.kind == "acct")).all()
    return sorted((int(f), int(f) + bytes(p).count(b"\n") - 1) for f, p in rows)


class Pipe:
    """`bounceproc pipe` as PowerMTA runs it: a subprocess whose stdin we write."""

    def __init__(self, settings, *args: str, extra_env: dict | None = None):
        self.log = Path(settings.data_dir) / f"pipe-{time.monotonic_ns()}.log"
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen([bin_path("bounceproc"), "pipe", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     env=settings_env(settings, **(extra_env or {})))
        self.written = 0

    def feed(self, data: bytes, chunk: int = 64 * 1024, pause: float = 0.0,
             stop: threading.Event | None = None) -> bool:
        """Write data (optionally slowly); False if the pipe went away or `stop` was set."""
        for i in range(0, len(data), chunk):
            if stop is not None and stop.is_set():
                return False
            try:
                self.proc.stdin.write(data[i:i + chunk])
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return False
            self.written = i + chunk
            if pause:
                time.sleep(pause)
        return True

    def close(self, timeout: float = 120.0) -> tuple[int, bytes]:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait(timeout=timeout)
        out = self.proc.stdout.read()
        self._log.close()
        return rc, out

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class PrivateRedis:
    """A redis-server of this test's own on a free port, started and killed by PID."""

    def __init__(self, port: int | None = None, workdir: Path | None = None):
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        import redis
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no",
                                      "--dir", str(self.workdir or "/tmp")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
