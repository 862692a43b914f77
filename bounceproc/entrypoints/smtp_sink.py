"""The SMTP sink: asynchronous bounces (DSNs to the VERP return path) and ARF feedback-loop
reports received over SMTP, committed to the durable intake before they are answered 250.

Adapter layer (aiosmtpd, SQLAlchemy through bootstrap). Holds no rules: it filters recipients,
enforces limits, commits raw messages and hands their intake ids to the worker, which parses and
classifies them (bounceproc.app.message_intake).

In: SMTP sessions. Out: `intake` rows of kind "message" (raw bytes plus meta mail_from, rcpt_tos,
peer, helo, tls, received_at) and `sink_task` tasks (default `bounceproc.ingest_messages([ids])`),
or in-process processing when embedded (no broker).

Non-obvious choices:
- Durable before 250 with group commit. Sessions hand their message to the writer threads and
  wait; a free writer takes everything that queued up meanwhile, inserts it in ONE transaction,
  commits, then answers all those sessions. A few writers (WRITERS_PG on PostgreSQL) overlap one
  commit's flush with the next batch's insert. One fsync serves many messages, which is what lets
  the sink accept >1,000 msgs/s durably; a commit per message would cap it near the disk's fsync
  rate. If the commit fails, every session in the batch gets REPLY_TRY_LATER (451 4.3.0) and the
  sender retries; nothing was acknowledged.
- Enqueueing happens after the answer, on its own thread, with ids of the last ENQUEUE_WAIT
  seconds sharing one task: in the embedded mode "enqueue" means "process in-process", which must
  not delay the next 250. An enqueue that fails leaves the rows pending for the sweep
  (bounceproc.sweep_intake).
- DATA is read in large chunks (SinkSMTP.smtp_DATA) and plain MAIL/RCPT paths skip the email
  package's parser: together they were most of the CPU per message.
- Blocking work (database, TLS context loading) never runs on the event loop.
- It is never a relay: RCPT is refused (550 5.7.1) unless the address or its domain is listed in
  `sink_accept`; relay tricks in the local part (`%`, `!`, source routes) are refused too.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import re
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from bounceproc import bootstrap
from bounceproc.bootstrap import Dispatch
from bounceproc.config import Settings
from bounceproc.entrypoints.dispatch import process_now
from bounceproc.domain.parse.report_events import normalise_recipient

log = logging.getLogger("bounceproc.sink")

# Named replies (RFC 5321 reply codes with RFC 3463 enhanced status codes).
REPLY_QUEUED = "250 2.0.0 Ok: queued as {id}"
REPLY_RCPT_OK = "250 2.1.5 Ok"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure storing the message, try again later"
REPLY_BUSY = "421 4.3.2 Service busy, try again later"
REPLY_TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
REPLY_TOO_MANY_MESSAGES = "421 4.7.0 Too many messages on this connection, reconnect"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
REPLY_RELAY_DENIED = "550 5.7.1 Relaying denied: this server accepts mail only for its bounce and feedback addresses"
REPLY_BAD_ADDRESS = "553 5.1.3 Malformed recipient address"
REPLY_TOO_BIG = "552 5.3.4 Message too big for system"
REPLY_LINE_TOO_LONG = "500 5.5.2 Line too long"

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<((?:{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)?)>(\s.*)?\Z", re.S)

# aiosmtpd's own texts for size refusals carry no enhanced status code; push() rewrites them.
_REWRITE = {
    "552 Error: Too much mail data": REPLY_TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": REPLY_TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": REPLY_LINE_TOO_LONG,
}

MAX_BATCH = 500                  # messages per group commit
MAX_BATCH_BYTES = 64 * 1024 * 1024
WRITERS_PG = 3                   # concurrent group-commit writers on PostgreSQL (see IntakeWriter)
ENQUEUE_BATCH = 500              # ids per task at most
ENQUEUE_WAIT = 0.2               # seconds an id may wait for others to share its task
MAX_PENDING = 5000               # messages waiting for the writer before new ones get 451
COMMIT_WAIT_SECONDS = 30.0       # a session waits at most this long for its commit
MAX_LINE = 64 * 1024            # octets per DATA line (see SinkSMTP)
PROXY_TIMEOUT = 10               # seconds to receive the PROXY header when it is expected
DEFAULT_TIMEOUT = 120            # idle seconds per SMTP command
DEFAULT_MAX_PER_IP = 20
DEFAULT_MAX_COMMANDS = 5000      # per command name per connection, outside messages (EHLO, VRFY, ...)
# Messages per connection: an MTA keeps a connection open for as long as it has mail (PowerMTA
# at 25 messages/s on each of 20 connections sends 1,000,000 in 11 hours). The 421 comes before
# a MAIL, so the sender only reconnects; the limit bounds what one session may hold, nothing else.
DEFAULT_MAX_MESSAGES = 1_000_000
# The commands of a message (MAIL, RCPT, DATA, and RSET / NOOP between messages, which some MTAs
# send on a reused connection) are bounded by the message limit, not by `max_commands`.
MESSAGE_COMMANDS = ("MAIL", "RCPT", "DATA", "RSET", "NOOP")
_UNBOUNDED = 1 << 62


def _setting(settings: Settings, name: str, default):
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


# --- recipient filter -------------------------------------------------------------------------

@dataclass(frozen=True)
class AcceptList:
    """Accepted recipients: whole addresses (`fbl@example.net`), domains (`bounces.example.net`)
    and domain suffixes (`.example.net` accepts every subdomain of example.net); `*` accepts any
    domain (what `bounceproc serve` uses on loopback when nothing is configured)."""
    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    any_domain: bool = False

    @classmethod
    def parse(cls, entries) -> "AcceptList":
        addresses, domains, suffixes, any_domain = set(), set(), [], False
        for raw in entries or ():
            entry = str(raw).strip().lower()
            if not entry:
                continue
            if entry == "*":
                any_domain = True
            elif "@" in entry:
                norm = normalise_recipient(entry)
                if norm:
                    addresses.add(norm.lower())
            elif entry.startswith("*.") or entry.startswith("."):
                suffixes.append("." + entry.lstrip("*.").encode("idna").decode("ascii"))
            else:
                domains.add(entry.rstrip(".").encode("idna").decode("ascii"))
        return cls(frozenset(addresses), frozenset(domains), tuple(suffixes), any_domain)

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains or self.suffixes or self.any_domain)

    def accepts(self, address: str) -> bool:
        norm = normalise_recipient(address)
        if not norm:
            return False
        local, _, domain = norm.rpartition("@")
        # Relay tricks: user%other@us, host!user@us, quoted locals hiding another "@".
        if any(c in local for c in '%!@"\\') or local.startswith("@"):
            return False
        return (self.any_domain or norm.lower() in self.addresses or domain in self.domains
                or any(domain.endswith(s) for s in self.suffixes))


# --- group-commit writer ----------------------------------------------------------------------

@dataclass
class _Item:
    payload: bytes
    origin: str
    meta: dict[str, Any]
    done: Any                     # callable(intake_id | None, error | None)


@dataclass
class WriterStats:
    committed: int = 0
    batches: int = 0
    failed: int = 0
    enqueue_failures: int = 0


class IntakeWriter:
    """Writer threads that commit queued messages to the intake in batches (group commit), and
    one that enqueues the committed ids. Thread-safe `submit`; callbacks run on a writer thread.

    PostgreSQL gets WRITERS_PG writers on their own connections: while one waits for its commit
    to reach the disk (the GIL is released), the next inserts the messages that queued up in the
    meantime, so the disk's flush latency is overlapped instead of serialised. SQLite has a single
    writer lock, so it gets one."""

    def __init__(self, settings: Settings, *, max_batch: int = MAX_BATCH, max_pending: int = MAX_PENDING,
                 writers: int | None = None, dispatch: Dispatch | None = None):
        self.settings = settings
        self.dispatch = dispatch or process_now(settings)
        self.max_batch = max_batch
        self._q: queue.Queue[_Item | None] = queue.Queue(maxsize=max_pending)
        self._enq: queue.Queue[list[int] | None] = queue.Queue()
        self.stats = WriterStats()
        self._stats_lock = threading.Lock()
        if writers is None:
            writers = WRITERS_PG if settings.is_postgres else 1
        self._writers = [threading.Thread(target=self._run_writer, name=f"sink-intake-writer-{i}", daemon=True)
                         for i in range(max(1, writers))]
        self._enqueuer = threading.Thread(target=self._run_enqueuer, name="sink-enqueuer", daemon=True)
        self._stopping = False

    def start(self) -> "IntakeWriter":
        for t in self._writers:
            t.start()
        self._enqueuer.start()
        return self

    def submit(self, payload: bytes, origin: str, meta: dict, done) -> bool:
        """Queue one message; False when the writer is saturated or stopping (answer 4xx)."""
        if self._stopping:
            return False
        try:
            self._q.put_nowait(_Item(payload, origin, meta, done))
            return True
        except queue.Full:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, answer it, enqueue it, then end both threads."""
        self._stopping = True
        for _ in self._writers:
            self._q.put(None)
        for t in self._writers:
            t.join(timeout)
        if self._enqueuer.is_alive():
            self._enq.put(None)
            self._enqueuer.join(timeout)

    def _take_batch(self, first: _Item) -> tuple[list[_Item], bool]:
        batch, size, stop = [first], len(first.payload), False
        while len(batch) < self.max_batch and size < MAX_BATCH_BYTES:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
            size += len(item.payload)
        return batch, stop

    def _run_writer(self) -> None:
        stop = False
        while not stop:
            first = self._q.get()
            if first is None:
                break
            batch, stop = self._take_batch(first)
            try:
                ids = commit_messages(self.settings, batch)
            except Exception as exc:  # database down or full: every session in the batch gets 451
                log.error("intake commit of %d messages failed: %s", len(batch), exc)
                with self._stats_lock:
                    self.stats.failed += len(batch)
                for item in batch:
                    _call(item.done, None, exc)
                continue
            with self._stats_lock:
                self.stats.committed += len(batch)
                self.stats.batches += 1
            for item, intake_id in zip(batch, ids):
                _call(item.done, intake_id, None)
            self._enq.put(ids)

    def _run_enqueuer(self) -> None:
        while True:
            ids = self._enq.get()
            if ids is None:
                return
            # Coalesce for up to ENQUEUE_WAIT seconds so one task carries many ids: the worker
            # then processes them in one transaction (bounded per task).
            more_stop = False
            until = time.monotonic() + ENQUEUE_WAIT
            while len(ids) < ENQUEUE_BATCH:
                try:
                    more = self._enq.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    more_stop = True
                    break
                ids = ids + more
            try:
                enqueue(self.settings, ids, self.dispatch)
            except Exception as exc:  # broker down: rows stay pending; the sweep re-enqueues them
                self.stats.enqueue_failures += len(ids)
                log.warning("%d intake rows committed but not enqueued (%s); the sweep will pick them up",
                            len(ids), exc)
            if more_stop:
                return


def enqueue(settings: Settings, ids: list[int], inline: Dispatch) -> None:
    """Hand committed ids to the worker: `sink_task` on the broker, or `inline` when embedded."""
    task = _setting(settings, "sink_task", "bounceproc.ingest")
    if settings.embedded or task == "bounceproc.ingest":
        bootstrap.enqueue_intake(settings, ids, inline)
        return
    bootstrap.celery_app(settings).send_task(task, args=[ids], queue=settings.queue, retry=False)


def _call(done, intake_id, error) -> None:
    try:
        done(intake_id, error)
    except Exception:  # a session that went away must not stop the writer
        log.exception("sink completion callback failed")


def commit_messages(settings: Settings, batch: list[_Item]) -> list[int]:
    """Insert a batch of raw messages into the intake in one transaction; their ids, in order.
    The rows go through bootstrap.insert_intakes, the one insert path of every intake batch (on
    PostgreSQL one constant-SQL `unnest` statement over arrays, whose per-row Python cost is what
    the writer shares, under the GIL, with the event loop reading the next messages)."""
    rows = [bootstrap.intake_row("message", it.payload, origin=it.origin, meta=it.meta) for it in batch]
    with bootstrap.engine(settings).begin() as conn:
        return bootstrap.insert_intakes(conn, rows)


# --- the SMTP protocol and handler ------------------------------------------------------------

class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with connection limits and enhanced status codes on its own refusals."""

    # RFC 5321 says 1000 octets per line, but real bounces break it (Amazon SES DSNs carry
    # 1,030-character lines; see corpus lhost-amazonses-09). Refusing them would lose bounces,
    # so DATA lines may be up to 64 KiB; the message size limit still bounds the whole.
    line_length_limit = MAX_LINE

    def __init__(self, handler: "SinkHandler", max_messages: int = DEFAULT_MAX_MESSAGES, **kwargs):
        super().__init__(handler, **kwargs)
        self._sink = handler
        self._counted_ip: str | None = None
        self.max_messages = max_messages
        self.messages = 0              # MAIL commands accepted for processing on this connection

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str) -> None:
        """MAIL, after counting the messages of this connection (REPLY_TOO_MANY_MESSAGES past
        `max_messages`, before the message starts: the sender reconnects and loses nothing)."""
        if self.max_messages and self.messages >= self.max_messages and self.envelope.mail_from is None:
            await self.push(REPLY_TOO_MANY_MESSAGES)
            if self.transport is not None:
                self.transport.close()
            return
        before = self.envelope.mail_from
        await super().smtp_MAIL(arg)
        if before is None and self.envelope.mail_from is not None:
            self.messages += 1

    def _getaddr(self, arg: str):
        """`<local@domain> params` for plain dot-atom addresses without the email package's full
        RFC 5322 parser (a third of the CPU per message in a profile); anything else (quoted
        local parts, source routes, malformed input) still goes through aiosmtpd's parser."""
        m = _PLAIN_PATH.match(arg.lstrip()) if arg else None
        if m is None:
            return super()._getaddr(arg)
        addr, rest = m.group(1), (m.group(2) or "").lstrip()
        if not addr:
            return "<>", rest                # the null reverse-path, as aiosmtpd reports it
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def push(self, status):
        if isinstance(status, str):
            status = _REWRITE.get(status, status)
        await super().push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA read in large chunks instead of aiosmtpd's line-at-a-time loop (a bounce is ~100
        lines: this is most of the sink's CPU per message). Same protocol: the data ends with a
        line holding only ".", leading dots are unstuffed (RFC 5321 4.5.2), an over-size message
        is read to its end and refused with 552 5.3.4, and the session goes on."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await self._read_data(self.data_size_limit or 0)
        if data is None:
            self._set_post_data_state()
            await self.push(REPLY_TOO_BIG)
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self, limit: int) -> bytes | None:
        """The message up to the lone "." line, unstuffed; None if it exceeded `limit`."""
        data = bytearray()
        too_big = False
        while True:
            try:
                chunk = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as exc:      # 64 KiB without ".\r\n": take them
                chunk = await self._reader.read(exc.consumed)
            except asyncio.IncompleteReadError as exc:    # the client went away mid-DATA
                raise ConnectionResetError("connection closed during DATA") from exc
            data += chunk
            end = len(data) - 3
            if chunk.endswith(b".\r\n") and (end == 0 or data[end - 2:end] == b"\r\n"):
                del data[end:]
                break
            if limit and len(data) > limit:
                too_big = True
                del data[:-2]      # keep the tail: it tells whether the next "." starts a line
        if too_big or (limit and len(data) > limit):
            return None
        if data.startswith(b"."):
            del data[0]
        return bytes(data.replace(b"\r\n.", b"\r\n"))

    async def _handle_client(self) -> None:
        ip = _peer_ip(self.session.peer if self.session else None)
        verdict = self._sink.open_connection(ip)
        if verdict is not None:
            await self.push(verdict)
            if self.transport is not None:
                self.transport.close()
            return
        self._counted_ip = ip
        await super()._handle_client()

    def connection_lost(self, error) -> None:
        if self._counted_ip is not None:
            self._sink.close_connection(self._counted_ip)
            self._counted_ip = None
        super().connection_lost(error)


def _peer_ip(peer) -> str:
    if isinstance(peer, (tuple, list)) and peer:
        return str(peer[0])
    return str(peer or "")


@dataclass
class SinkCounters:
    accepted: int = 0
    refused_rcpt: int = 0
    refused_connections: int = 0
    temp_failures: int = 0
    too_big: int = 0


class SinkHandler:
    """aiosmtpd handler hooks: RCPT filter and limits, DATA -> group commit -> 250 or 451."""

    def __init__(self, settings: Settings, writer: IntakeWriter):
        self.settings = settings
        self.writer = writer
        self.accept = AcceptList.parse(settings.sink_accept)
        self.max_recipients = int(_setting(settings, "sink_max_recipients", 50))
        self.max_size = int(_setting(settings, "sink_max_message_size", 10 * 1024 * 1024))
        self.max_connections = int(_setting(settings, "sink_max_connections", 200))
        self.max_per_ip = int(_setting(settings, "sink_max_connections_per_ip", DEFAULT_MAX_PER_IP))
        self.connections: Counter[str] = Counter()
        self.counters = SinkCounters()

    # connection accounting (event-loop thread only)
    def open_connection(self, ip: str) -> str | None:
        if sum(self.connections.values()) >= self.max_connections:
            self.counters.refused_connections += 1
            return REPLY_BUSY
        if self.connections[ip] >= self.max_per_ip:
            self.counters.refused_connections += 1
            return REPLY_TOO_MANY_CONNECTIONS
        self.connections[ip] += 1
        return None

    def close_connection(self, ip: str) -> None:
        self.connections[ip] -= 1
        if self.connections[ip] <= 0:
            del self.connections[ip]

    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope, proxy_data) -> bool:
        """Behind a load balancer speaking the PROXY protocol: trust a valid header (the sink
        only listens where the operator put it), so the real client address is recorded."""
        return bool(proxy_data and proxy_data.valid)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not normalise_recipient(address):
            self.counters.refused_rcpt += 1
            return REPLY_BAD_ADDRESS
        if not self.accept.accepts(address):
            self.counters.refused_rcpt += 1
            log.info("refused RCPT %r from %s", address[:320], _peer_ip(session.peer))
            return REPLY_RELAY_DENIED
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return REPLY_RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > self.max_size:
            self.counters.too_big += 1
            return REPLY_TOO_BIG
        proxied = getattr(session, "proxy_data", None)
        peer = str(proxied.src_addr) if proxied is not None and proxied.src_addr else _peer_ip(session.peer)
        meta = {"mail_from": "" if envelope.mail_from in (None, "<>") else envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos), "peer": peer,
                "helo": (session.host_name or "")[:255],
                "tls": session.ssl is not None,
                "received_at": datetime.now(timezone.utc).isoformat()}
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def done(intake_id, error, _fut=fut):
            loop.call_soon_threadsafe(_resolve, _fut, intake_id, error)

        if not self.writer.submit(raw, f"sink:{peer}", meta, done):
            self.counters.temp_failures += 1
            return REPLY_TRY_LATER
        try:
            intake_id = await asyncio.wait_for(asyncio.shield(fut), COMMIT_WAIT_SECONDS)
        except Exception:
            # The commit failed or is too slow. A late commit is harmless: event keys come from
            # the message, so the sender's retry produces the same events.
            self.counters.temp_failures += 1
            return REPLY_TRY_LATER
        self.counters.accepted += 1
        return REPLY_QUEUED.format(id=intake_id)


def _resolve(fut: asyncio.Future, intake_id, error) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error if isinstance(error, BaseException) else RuntimeError(str(error)))
    else:
        fut.set_result(intake_id)


# --- running it -------------------------------------------------------------------------------

def parse_listen(value: str) -> tuple[str, int]:
    """"HOST:PORT", "[::1]:PORT" or ":PORT" -> (host, port)."""
    value = (value or "").strip()
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.sink_tls_cert, settings.sink_tls_key
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key or None)
    return ctx


@dataclass
class SinkServer:
    """A running sink inside an asyncio loop. `await close()` stops it (from that loop)."""
    settings: Settings
    server: asyncio.base_events.Server
    handler: SinkHandler
    writer: IntakeWriter
    host: str
    port: int
    _closed: bool = field(default=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.close()
        await self.server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)


async def start_sink_async(settings: Settings, listen: str | None = None,
                           dispatch: Dispatch | None = None) -> SinkServer:
    """Start the sink in the running event loop (for `bounceproc serve` and tests). Embedded,
    committed ids go to `dispatch` (default: processed at once, entrypoints.dispatch)."""
    host, port = parse_listen(listen or settings.sink_listen)
    handler_ctx = await asyncio.get_running_loop().run_in_executor(None, tls_context, settings)
    writer = IntakeWriter(settings, dispatch=dispatch).start()
    handler = SinkHandler(settings, writer)
    hostname = _setting(settings, "sink_hostname", "") or "bounceproc-sink"
    timeout = int(_setting(settings, "sink_timeout", DEFAULT_TIMEOUT))
    max_commands = int(_setting(settings, "sink_max_commands", DEFAULT_MAX_COMMANDS))
    max_messages = int(_setting(settings, "sink_max_messages", DEFAULT_MAX_MESSAGES))
    call_limits = {"*": max_commands, **{c: _UNBOUNDED for c in MESSAGE_COMMANDS}}

    def factory():
        return SinkSMTP(handler, max_messages=max_messages, data_size_limit=handler.max_size,
                        enable_SMTPUTF8=True, hostname=hostname, ident="bounceproc sink",
                        tls_context=handler_ctx, timeout=timeout, command_call_limit=call_limits,
                        proxy_protocol_timeout=PROXY_TIMEOUT if getattr(settings, "sink_proxy_protocol", False) else None)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=host, port=port, reuse_address=True)
    bound = server.sockets[0].getsockname()
    log.info("sink listening on %s:%s, accepting %s", bound[0], bound[1], ", ".join(settings.sink_accept))
    return SinkServer(settings, server, handler, writer, bound[0], bound[1])


async def _cancel_sessions() -> None:
    """End the sessions still open when the sink stops (their clients get no 250: nothing lost)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class SinkHandle:
    """A sink running on its own thread and event loop; `.stop()` from any thread."""

    def __init__(self, settings: Settings, listen: str | None = None, dispatch: Dispatch | None = None):
        self.settings = settings
        self._listen = listen
        self._dispatch = dispatch
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sink: SinkServer | None = None
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)

    @property
    def host(self) -> str:
        return self.sink.host if self.sink else ""

    @property
    def port(self) -> int:
        return self.sink.port if self.sink else 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.sink = self._loop.run_until_complete(start_sink_async(self.settings, self._listen, self._dispatch))
        except BaseException as exc:  # reported to the starter by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.sink.close())
        self._loop.run_until_complete(_cancel_sessions())
        self._loop.close()

    def start(self, timeout: float = 10.0) -> "SinkHandle":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("SMTP sink did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)


def start_sink(settings: Settings, listen: str | None = None, dispatch: Dispatch | None = None) -> SinkHandle:
    """Start the sink on a background thread with its own event loop; returns a handle with
    `.host`, `.port` (the bound port, useful with port 0) and `.stop()`."""
    return SinkHandle(settings, listen, dispatch).start()


def run_sink(settings: Settings, listen: str | None = None, *, on_ready=None, max_seconds: float = 0) -> int:
    """Run the sink in the foreground until SIGINT/SIGTERM (or max_seconds, for tests)."""
    import signal

    async def main() -> None:
        sink = await start_sink_async(settings, listen)
        if on_ready:
            on_ready(sink)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while not stop.is_set():
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except asyncio.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    break
        await sink.close()
        await _cancel_sessions()

    asyncio.run(main())
    return 0
