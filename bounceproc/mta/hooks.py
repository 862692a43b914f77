"""Extension points of the delivery path (the seams part 2 plugs into; docs/sending-core.md).

Adapter layer: Protocols and small data classes only. The engine (bounceproc.mta.engine) calls:

1. RecipientFilter.filter(queue, jobs) once per batch of recipients taken from a queue, before
   any connection is used for them: return the ones to drop (suppressed) with their Refusal; they
   are finished as bounces (`b` record, diag from the Refusal) and never sent.
2. MessagePreparer.prepare(tx) once per SMTP transaction about to be sent: return the
   transactions to send instead (add headers, rewrite the envelope sender for VERP, DKIM-sign,
   or split one transaction into one per recipient). Runs after the filter, before MAIL FROM.
3. ReplyObserver.on_reply(queue, reply, state, now) after every remote reply that decides an
   outcome (and every queue-level failure): return a new QueueState (for example
   `with_mode(state, QueueMode.BACKOFF, now)`) or None to leave it.
4. ReplyJudge.judge(queue, reply, settings) before a reply decides a recipient's outcome: a
   Verdict overrides the outcome the code alone gives (a block 5xx is retried, `bounce-rcpt`
   bounces a 4xx), names the category the records carry, and may ask for a queue action
   (`bounce-queue`, `skip-mx`).

Hooks run on the MTA's event loop: no blocking I/O inside (use asyncio.to_thread).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bounceproc.domain.mta.config import DomainSettings
from bounceproc.domain.mta.queue_state import QueueState


@dataclass(frozen=True)
class QueueKey:
    """One delivery queue: destination domain and virtual MTA (`domain/vmta` in acct records)."""
    domain: str
    vmta: str = ""
    pool: str = ""

    def __str__(self) -> str:
        return f"{self.domain}/{self.vmta or '{default}'}"


@dataclass(eq=False)
class SpooledMessage:
    """A message in the spool: its envelope, and where its bytes are on disk."""
    id: str
    mail_from: str
    rcpts: list[str]
    received: float
    vmta: str = ""
    pool: str = ""
    job_id: str = ""
    env_id: str = ""
    source_ip: str = ""
    size: int = 0
    segment: int = 0
    offset: int = 0
    pending: int = 0              # recipients not yet finished


@dataclass(eq=False)
class RcptJob:
    """One recipient of one message waiting in one queue."""
    msg: SpooledMessage
    index: int                    # position in msg.rcpts
    failures: int = 0
    due: float = 0.0

    @property
    def rcpt(self) -> str:
        return self.msg.rcpts[self.index]


@dataclass
class Transaction:
    """One SMTP transaction: MAIL FROM mail_from, RCPT TO each job, DATA data."""
    queue: QueueKey
    settings: DomainSettings
    mail_from: str
    jobs: list[RcptJob]
    data: bytes
    headers_added: list[str] = field(default_factory=list)   # informational


@dataclass(frozen=True)
class Refusal:
    """Why a recipient is not sent: finished as a bounce with this status and diagnostic."""
    status: str = "5.7.1"
    diag: str = "x-bounceproc;recipient suppressed"
    notify_sender: bool = False   # send a DSN to the envelope sender


@dataclass(frozen=True)
class Reply:
    """A remote answer or a local failure that decided an outcome."""
    code: int                     # 250, 450, 550; 0 for connection / DNS failures
    status: str                   # enhanced status "5.1.1"
    text: str                     # the diag: "smtp;550 5.1.1 ..." or "x-bounceproc;..."
    rcpt: str = ""                # "" for queue-level outcomes
    remote_host: str = ""
    stage: str = ""               # "connect", "mail", "rcpt", "data"
    category: str = ""            # bounceCat for the records ("" = from the status code)


@dataclass(frozen=True)
class Verdict:
    """A judge's word on one reply: "deliver" | "bounce" | "defer" ("" = by the code)."""
    outcome: str = ""
    category: str = ""
    queue_action: str = ""        # "bounce-queue" | "skip-mx" | ""


class RecipientFilter(Protocol):
    async def filter(self, queue: QueueKey, jobs: list[RcptJob]) -> dict[RcptJob, Refusal]: ...


class MessagePreparer(Protocol):
    async def prepare(self, tx: Transaction) -> list[Transaction]: ...


class ReplyJudge(Protocol):
    def judge(self, queue: QueueKey, reply: Reply, settings: DomainSettings) -> Verdict | None: ...


class ReplyObserver(Protocol):
    def on_reply(self, queue: QueueKey, reply: Reply, state: QueueState, now: float) -> QueueState | None: ...


@dataclass
class Hooks:
    filters: list[RecipientFilter] = field(default_factory=list)
    preparers: list[MessagePreparer] = field(default_factory=list)
    observers: list[ReplyObserver] = field(default_factory=list)
    judges: list[ReplyJudge] = field(default_factory=list)
