"""The injection listener: SMTP (aiosmtpd) on each `smtp-listener`, relaying per `<source>`.

Adapter layer. In: SMTP sessions from the sending applications. Out: messages spooled through
Mta.inject (fsynced before `250`), `r` acct records. Holds no rules: the `<source>` of a client
(longest prefix, bounceproc.domain.mta.config) says whether it may relay and which headers count.

- RCPT from a source without `always-allow-relaying` -> 550 5.7.1 (SMTP AUTH is not offered, so
  `<source {auth}>` never matches).
- `x-virtual-mta`, `x-job`, `x-envid` headers are honoured only when the source allows
  (`process-x-virtual-mta`, `process-x-job`, `process-x-envid`) and always removed.
- `max-message-size` -> 552 5.3.4; `max-rcpt-per-message` -> 452 4.5.3; spool failure -> 451 4.3.0.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re

from aiosmtpd.smtp import SMTP, Envelope, Session

from bounceproc.domain.mta.acct import Outcome
from bounceproc.domain.mta.config import Listener, Source

log = logging.getLogger("bounceproc.mta.listener")

REPLY_QUEUED = "250 2.0.0 Ok: queued as {id}"
REPLY_RCPT_OK = "250 2.1.5 Ok"
REPLY_RELAY_DENIED = "550 5.7.1 Relaying denied"
REPLY_NO_SERVICE = "554 5.7.1 SMTP service not available to your address"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
REPLY_TOO_BIG = "552 5.3.4 Message too big for system"
REPLY_BAD_ADDRESS = "553 5.1.3 Malformed recipient address"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure storing the message, try again later"
REPLY_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"

_CONTROL_HEADERS = re.compile(rb"^(x-virtual-mta|x-job|x-envid)[ \t]*:[ \t]*(.*?)\r?$", re.I | re.M)
_ADDRESS = re.compile(r"[^@\s<>]+@[A-Za-z0-9.-]+\Z")
_SIZE_TEXTS = {"552 Error: Too much mail data", "552 Error: message size exceeds fixed maximum message size"}


def split_control_headers(data: bytes) -> tuple[bytes, dict[str, str]]:
    """Remove x-virtual-mta / x-job / x-envid from the header block; return their values."""
    end = data.find(b"\r\n\r\n")
    end = data.find(b"\n\n") if end < 0 else end
    head, body = (data, b"") if end < 0 else (data[:end], data[end:])
    found: dict[str, str] = {}
    if b"x-" not in head.lower():
        return data, found
    for m in _CONTROL_HEADERS.finditer(head):
        found.setdefault(m.group(1).decode().lower(), m.group(2).decode("utf-8", "replace").strip())
    if not found:
        return data, found
    lines = [ln for ln in head.split(b"\n") if not _CONTROL_HEADERS.match(ln)]
    return b"\n".join(lines) + body, found


@functools.lru_cache(maxsize=None)
def _hook_names(cls: type) -> tuple[str, ...]:
    """The attribute names aiosmtpd looks for (`smtp_*`, `auth_*`, `handle_*`), once per class."""
    return tuple(sorted(n for n in dir(cls) if n.startswith(("smtp_", "auth_", "handle_"))))


class _HookDir:
    """aiosmtpd builds its command, AUTH and hook tables on every connection from `dir()` of the
    session and the handler (`inspect.getmembers`, which reads every attribute: ~0.25 ms per
    connection, bench/mta_relay). `dir()` of these classes lists just the prefixed names it
    keeps, computed once per class; the tables come out the same."""

    def __dir__(self):
        return _hook_names(type(self))


# `<local@domain>` with a dot-atom local part and a plain domain, what nearly every client sends
_PLAIN_PATH = re.compile(r"\s*<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
                         r"@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>([^()\\\"]*)\Z")


class _MtaSMTP(_HookDir, SMTP):
    def _getaddr(self, arg: str):
        """aiosmtpd reads the path of MAIL / RCPT with the email package's RFC 5322 parser (~0.2 ms
        each); a plain `<local@domain> [params]` is read here to the same (address, params), anything
        else (comments, quoted local parts, source routes, literals) still goes to that parser."""
        m = _PLAIN_PATH.match(arg or "")
        if m is None:
            return super()._getaddr(arg)
        address = m.group(1)
        if self.local_part_limit and address.index("@") > self.local_part_limit:
            return None, None
        return address, m.group(2).strip()

    async def push(self, status: str):
        if status in _SIZE_TEXTS:
            status = REPLY_TOO_BIG
        return await super().push(status)


class InjectionHandler(_HookDir):
    def __init__(self, mta, listener: Listener) -> None:
        self.mta, self.listener = mta, listener

    def _source(self, session: Session) -> Source:
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        return self.mta.config.source_for(peer, self.listener.source)

    async def handle_MAIL(self, server, session: Session, envelope: Envelope, address: str, options):
        if self.mta.stopping:
            return REPLY_SHUTTING_DOWN
        if not self._source(session).smtp_service:
            return REPLY_NO_SERVICE
        envelope.mail_from = address or "<>"     # aiosmtpd needs it non-empty; "<>" is the null sender
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, options):
        src = self._source(session)
        if not src.always_allow_relaying:
            return REPLY_RELAY_DENIED
        if not _ADDRESS.match(address):
            return REPLY_BAD_ADDRESS
        if len(envelope.rcpt_tos) >= src.max_rcpt_per_message:
            return REPLY_TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        return REPLY_RCPT_OK

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        src = self._source(session)
        data = envelope.original_content or b""
        if len(data) > src.max_message_size:
            return REPLY_TOO_BIG
        data, control = split_control_headers(data)
        vmta_name = control.get("x-virtual-mta", "") if src.process_x_virtual_mta else ""
        vmta, pool = self.mta.resolve_vmta(vmta_name or src.default_virtual_mta)
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        meta = {"from": "" if envelope.mail_from in ("<>", None) else envelope.mail_from, "rcpts": list(envelope.rcpt_tos), "ip": peer,
                "vmta": vmta, "pool": pool,
                "job": control.get("x-job", "") if src.process_x_job else "",
                "envid": control.get("x-envid", "") if src.process_x_envid else ""}
        try:
            msg = await self.mta.inject(meta, data)
        except OSError:
            return REPLY_TRY_LATER
        now = self.mta.clock.now()
        helo = session.host_name or peer
        for rcpt in msg.rcpts:
            self.mta.acct.emit(Outcome("r", now, orig=msg.mail_from, rcpt=rcpt, source_ip=peer,
                                       source_host=f"{helo} ({peer})", local_ip=self.listener.host,
                                       vmta=vmta, pool=pool, job_id=msg.job_id, env_id=msg.env_id))
        return REPLY_QUEUED.format(id=msg.id)


async def start_listeners(mta) -> list[asyncio.AbstractServer]:
    loop = asyncio.get_running_loop()
    servers = []
    limit = max([s.max_message_size for s in mta.config.sources.values()] or [50 * 1024 * 1024])
    for listener in mta.config.listeners:
        handler = InjectionHandler(mta, listener)
        server = await loop.create_server(
            lambda h=handler: _MtaSMTP(h, hostname=mta.config.host_name, data_size_limit=limit,
                                       ident="bounceproc mta", enable_SMTPUTF8=True),
            listener.host, listener.port, reuse_address=True)
        servers.append(server)
        log.info("MTA listening on %s:%d", listener.host, listener.port)
    return servers
