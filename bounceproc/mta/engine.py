"""The MTA engine: per-destination queues, the scheduler, connections and per-recipient outcomes.

Adapter layer (asyncio, aiosmtplib through bounceproc.mta.delivery). The rules it applies are
pure: effective settings from bounceproc.domain.mta.config, the retry / bounce-after schedule
from .schedule, the queue state machine from .queue_state, acct records from .acct, DSNs from
.dsn. Hooks (bounceproc.mta.hooks) filter recipients, prepare transactions and observe replies.

In: SpooledMessages (from the listener, recovery, or our own DSNs). Out: SMTP deliveries, spool
state lines, acct records, DSNs, one info log line per delivery attempt outcome.

One queue per (destination domain, virtual MTA). A queue opens up to `max-smtp-out` connections,
each sends transactions of up to `max-rcpt-per-transaction` recipients of one message, reuses the
connection up to `max-msg-per-connection` messages, and waits for `max-msg-rate` /
`max-connect-rate` on the injectable clock. Deferred recipients wait on the scheduler's timer heap.
"""
from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import random
from collections import deque

from bounceproc.domain.mta.acct import Outcome
from bounceproc.domain.mta.config import DomainSettings, MtaConfig
from bounceproc.domain.mta.dsn import FailedRecipient, build_dsn
from bounceproc.domain.mta.queue_state import (
    QueueState, after_delivery, after_queue_failure, settings_in_mode, with_mode, QueueMode,
)
from bounceproc.domain.mta.schedule import expires_at, next_attempt, retry_delay
from bounceproc.mta.acct_writer import AcctWriter
from bounceproc.mta.clock import RealClock
from bounceproc.mta.delivery import Connection, ConnectFailed, TxResult, open_connection
from bounceproc.mta.dns import DnsTemporaryError, Resolver
from bounceproc.mta.hooks import Hooks, QueueKey, RcptJob, Refusal, Reply, SpooledMessage, Transaction, Verdict
from bounceproc.mta.spool import Spool, new_id

log = logging.getLogger("bounceproc.mta")

LINGER_SECONDS = 2.0        # an idle connection waits this long (real time) for more work
MAX_RATE_WAIT_ON_CONN = 5.0  # longer rate waits close the connection and come back later


class DeliveryQueue:
    def __init__(self, mta: "Mta", key: QueueKey) -> None:
        self.mta, self.key = mta, key
        self.state = QueueState()
        self.ready: deque[RcptJob] = deque()
        self.waiting = 0                 # deferred recipients on the timer heap
        self.conns = 0
        self.next_msg_at = 0.0
        self.next_connect_at = 0.0
        self.kick_at: float | None = None
        self.work = asyncio.Event()
        self.counters = {"delivered": 0, "bounced": 0, "deferred": 0, "connections": 0, "skipped": 0}
        self.skip_hosts: dict[str, float] = {}   # MX hosts a `skip-mx` pattern sent us away from, until

    @property
    def settings(self) -> DomainSettings:
        cfg = self.mta.config
        return settings_in_mode(cfg.effective(self.key.domain, self.key.vmta or None, self.key.pool or None),
                                self.state.mode)

    def set_state(self, state: QueueState) -> None:
        old = self.state
        self.state = state
        if state.mode is not old.mode:
            log.info("queue %s: mode %s -> %s", self.key, old.mode.value, state.mode.value)
        self.kick()

    def set_mode(self, mode: QueueMode) -> None:
        self.set_state(with_mode(self.state, mode, self.mta.clock.now()))

    def add(self, job: RcptJob) -> None:
        self.ready.append(job)
        self.work.set()

    def kick(self) -> None:
        """Open connections while there is work and the limits allow; else come back later."""
        if self.mta.stopping or not self.ready:
            return
        now = self.mta.clock.now()
        s = self.settings
        if not self.state.can_connect(now):
            if self.state.mode is not QueueMode.PAUSED:
                self.mta.wake_queue_at(self, min(self.state.retry_at, self._oldest_deadline(s)))
            return
        if s.max_msg_rate and self.next_msg_at - now > MAX_RATE_WAIT_ON_CONN:
            self.mta.wake_queue_at(self, self.next_msg_at)
            return
        while self.ready and self.conns < max(s.max_smtp_out, 1) and self.conns < len(self.ready):
            if s.max_connect_rate and self.next_connect_at > now:
                self.mta.wake_queue_at(self, self.next_connect_at)
                return
            if s.max_connect_rate:
                self.next_connect_at = max(now, self.next_connect_at) + s.max_connect_rate.interval
            self.conns += 1
            self.counters["connections"] += 1
            self.mta.spawn(self._connection())

    def _oldest_deadline(self, s: DomainSettings) -> float:
        return expires_at(self.ready[0].msg.received, s) if self.ready else float("inf")

    def _take(self, s: DomainSettings) -> list[RcptJob]:
        """The next transaction's recipients: consecutive jobs of one message; expired ones bounce."""
        now = self.mta.clock.now()
        while self.ready and now >= expires_at(self.ready[0].msg.received, s):
            job = self.ready.popleft()
            self.mta.expire(self, job, self.state.last_error or "x-bounceproc;no attempt before bounce-after")
        if not self.ready:
            return []
        first = self.ready.popleft()
        batch = [first]
        limit = max(s.max_rcpt_per_transaction, 1)
        while self.ready and len(batch) < limit and self.ready[0].msg is first.msg:
            batch.append(self.ready.popleft())
        return batch

    async def _connection(self) -> None:
        conn: Connection | None = None
        sent = 0
        try:
            while not self.mta.stopping:
                s = self.settings
                if s.max_msg_per_connection and sent >= s.max_msg_per_connection:
                    break
                if not self.state.can_connect(self.mta.clock.now()):
                    break
                if not self.ready:
                    if conn is None:
                        break
                    self.work.clear()
                    try:
                        await asyncio.wait_for(self.work.wait(), LINGER_SECONDS)
                    except asyncio.TimeoutError:
                        break
                    continue
                if s.max_msg_rate:
                    now = self.mta.clock.now()
                    if self.next_msg_at > now:
                        if self.next_msg_at - now > MAX_RATE_WAIT_ON_CONN:
                            self.mta.wake_queue_at(self, self.next_msg_at)
                            break
                        await self.mta.clock.sleep_until(self.next_msg_at)
                        continue
                    self.next_msg_at = max(now, self.next_msg_at) + s.max_msg_rate.interval
                batch = self._take(s)
                if not batch:
                    continue
                batch = await self.mta.filter(self, batch)
                if not batch:
                    continue
                if conn is None:
                    conn = await self._connect(s, batch)
                    if conn is None:
                        break
                for tx in await self.mta.prepare(self, s, batch):
                    result = await conn.send(tx.mail_from, [j.rcpt for j in tx.jobs], tx.data, s)
                    self.mta.settle(self, tx.jobs, result, conn)
                    if result.connection_lost or conn.remote_host in self.skip_hosts:
                        await conn.close()
                        conn = None
                        break
                sent += 1
        finally:
            if conn is not None:
                await conn.close()
            self.conns -= 1
            if self.ready:
                self.kick()

    async def _connect(self, s: DomainSettings, batch: list[RcptJob]) -> Connection | None:
        mta = self.mta
        vm = mta.config.vmta(self.key.vmta)
        source_ip = (vm.source_ip if vm and vm.source_ip else mta.config.smtp_source_host[0])
        helo = (vm.host_name if vm and vm.host_name else mta.config.smtp_source_host[1] or mta.config.host_name)
        try:
            levels = await mta.targets(self.key.domain, s)
        except DnsTemporaryError as exc:
            self._queue_failure(batch, "4.4.3", f"x-bounceproc;{exc}", "")
            return None
        if levels == "null-mx":
            for job in batch:
                mta.bounce(self, job, Reply(0, "5.1.10", "x-bounceproc;recipient domain has a null MX (RFC 7505)",
                                            job.rcpt, stage="connect"))
            return None
        if self.skip_hosts and isinstance(levels, list):
            levels = self._without_skipped(levels)
        if levels == "nxdomain":
            for job in batch:
                mta.bounce(self, job, Reply(0, "5.1.2", f"x-bounceproc;domain {self.key.domain} does not exist",
                                            job.rcpt, stage="connect"))
            return None
        try:
            conn = await open_connection(levels, s, helo, source_ip, mta.resolver)
        except ConnectFailed as exc:
            self._queue_failure(batch, exc.status, exc.diag, exc.remote)
            return None
        return conn

    def _without_skipped(self, levels: list) -> list:
        """Hosts a `skip-mx` pattern sent us away from are left out while that lasts (unless none is left)."""
        now = self.mta.clock.now()
        self.skip_hosts = {h: t for h, t in self.skip_hosts.items() if t > now}
        kept = [tuple(h for h in lv if h[0] not in self.skip_hosts) for lv in levels]
        kept = [lv for lv in kept if lv]
        return kept or levels

    def _queue_failure(self, batch: list[RcptJob], status: str, diag: str, remote: str) -> None:
        mta, now = self.mta, self.mta.clock.now()
        log.info("queue %s: %s", self.key, diag)
        mta.acct.emit(Outcome("tq", now, status=status, diag=diag, remote_host=remote,
                              vmta=self.key.vmta, queue=str(self.key)))
        self.ready.extendleft(reversed(batch))
        reply = Reply(0, status, diag, remote_host=remote, stage="connect")
        state = after_queue_failure(self.state, diag, now, self.settings)
        self.state = mta.observe(self, reply, state)
        self.kick()


class Mta:
    def __init__(self, config: MtaConfig, *, clock=None, hooks: Hooks | None = None,
                 resolver: Resolver | None = None) -> None:
        self.config = config
        self.clock = clock or RealClock()
        self.hooks = hooks or Hooks()
        self.spool = Spool(config.spool_dir)
        self.acct = AcctWriter(config.acct_files)
        self.resolver = resolver or Resolver(config.dns_servers)
        self.queues: dict[QueueKey, DeliveryQueue] = {}
        self.stopping = False
        self._timers: list = []
        self._seq = itertools.count()
        self._timer_wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._pool_rr: dict[str, itertools.cycle] = {}
        self._scheduler: asyncio.Task | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._timer_wake = asyncio.Event()
        recovered = await asyncio.to_thread(self.spool.recover)
        self.spool.start()
        self.acct.start()
        for r in recovered:
            self.submit(r.message, r.finished, r.deferred)
        if recovered:
            log.info("spool: recovered %d messages with unfinished recipients", len(recovered))
        self._scheduler = asyncio.get_running_loop().create_task(self._run_timers())

    async def stop(self, timeout: float = 60.0) -> None:
        """Finish the transactions in flight, then close the spool and the acct files."""
        self.stopping = True
        for q in self.queues.values():
            q.work.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._scheduler:
            self._scheduler.cancel()
        await asyncio.to_thread(self.spool.stop)
        await asyncio.to_thread(self.acct.stop)

    def reload(self, config: MtaConfig) -> None:
        """New settings apply to each queue at its next connection (settings are read per use)."""
        self.config = config
        for q in self.queues.values():
            q.kick()

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mta task failed", exc_info=task.exception())

    # -- intake ----------------------------------------------------------------------------
    async def inject(self, meta: dict, data: bytes) -> SpooledMessage:
        """Spool (fsynced) then queue a message; the caller answers 250 after this returns."""
        meta.setdefault("received", self.clock.now())
        msg = await self.spool.store(meta, data)
        self.submit(msg)
        return msg

    def resolve_vmta(self, name: str) -> tuple[str, str]:
        """x-virtual-mta / default-virtual-mta: a virtual MTA, or a pool (round robin)."""
        if not name:
            return "", ""
        if name in self.config.vmtas:
            return name, ""
        pool = self.config.pools.get(name)
        if pool and pool.vmtas:
            rr = self._pool_rr.setdefault(name, itertools.cycle(pool.vmtas))
            return next(rr), name
        return "", ""

    def submit(self, msg: SpooledMessage, finished: set[int] = frozenset(),
               deferred: dict[int, tuple[int, float]] | None = None) -> None:
        deferred = deferred or {}
        now = self.clock.now()
        touched = []
        for i, rcpt in enumerate(msg.rcpts):
            if i in finished:
                continue
            domain = rcpt.rpartition("@")[2].lower()
            key = QueueKey(domain, msg.vmta, msg.pool)
            q = self.queues.get(key)
            if q is None:
                q = self.queues[key] = DeliveryQueue(self, key)
            failures, due = deferred.get(i, (0, 0.0))
            job = RcptJob(msg, i, failures, due)
            if due > now:
                self._push_timer(due, q, job)
            else:
                q.add(job)
                touched.append(q)
        for q in dict.fromkeys(touched):
            q.kick()

    # -- timers ----------------------------------------------------------------------------
    def _push_timer(self, due: float, q: DeliveryQueue, job: RcptJob | None) -> None:
        if job is not None:
            q.waiting += 1
        heapq.heappush(self._timers, (due, next(self._seq), q, job))
        if self._timers[0][0] == due and self._timer_wake is not None:
            self._timer_wake.set()

    def wake_queue_at(self, q: DeliveryQueue, t: float) -> None:
        if q.kick_at is not None and q.kick_at <= t:
            return
        q.kick_at = t
        self._push_timer(t, q, None)

    async def _run_timers(self) -> None:
        while True:
            now = self.clock.now()
            kicked = set()
            while self._timers and self._timers[0][0] <= now:
                due, _, q, job = heapq.heappop(self._timers)
                if job is None:
                    if q.kick_at == due:
                        q.kick_at = None
                else:
                    q.waiting -= 1
                    q.ready.append(job)
                    q.work.set()
                kicked.add(q)
            for q in kicked:
                q.kick()
            self._timer_wake.clear()
            if not self._timers:
                await self._timer_wake.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(self._timers[0][0]))
            waker = asyncio.ensure_future(self._timer_wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    # -- routing ---------------------------------------------------------------------------
    async def targets(self, domain: str, s: DomainSettings):
        """Host levels [(host, port, is_ip)...] for a queue, or "null-mx" / "nxdomain"."""
        if s.smtp_hosts:
            levels = []
            for level in s.smtp_hosts:
                hosts = []
                for h in level:
                    if h.lookup_mx:
                        route = await self.resolver.route(h.host)
                        for lv in route.levels:
                            levels.append(tuple((x, s.smtp_port, False) for x in lv))
                    else:
                        hosts.append((h.host, h.port or s.smtp_port, h.literal))
                if hosts:
                    levels.append(tuple(hosts))
            return levels
        route = await self.resolver.route(domain)
        if route.null_mx:
            return "null-mx"
        if route.nxdomain:
            return "nxdomain"
        return [tuple((h, s.smtp_port, False) for h in random.sample(lv, len(lv))) for lv in route.levels]

    # -- hooks -----------------------------------------------------------------------------
    async def filter(self, q: DeliveryQueue, batch: list[RcptJob]) -> list[RcptJob]:
        for f in self.hooks.filters:
            refused: dict[RcptJob, Refusal] = await f.filter(q.key, batch)
            if refused:
                for job, why in refused.items():
                    q.counters["skipped"] += 1
                    self.bounce(q, job, Reply(0, why.status, why.diag, job.rcpt, stage="filter"),
                                notify=why.notify_sender, count=False)
                batch = [j for j in batch if j not in refused]
        return batch

    async def prepare(self, q: DeliveryQueue, s: DomainSettings, batch: list[RcptJob]) -> list[Transaction]:
        msg = batch[0].msg
        data = await asyncio.to_thread(self.spool.read, msg) if msg.size > 1 << 20 else self.spool.read(msg)
        txs = [Transaction(q.key, s, msg.mail_from, batch, data)]
        for p in self.hooks.preparers:
            txs = [out for tx in txs for out in await p.prepare(tx)]
        return txs

    def observe(self, q: DeliveryQueue, reply: Reply, state: QueueState) -> QueueState:
        for o in self.hooks.observers:
            new = o.on_reply(q.key, reply, state, self.clock.now())
            if new is not None:
                state = new
        return state

    # -- outcomes --------------------------------------------------------------------------
    def judge(self, q: DeliveryQueue, reply: Reply) -> tuple[str, Reply, str]:
        """(outcome, reply with its category, queue action): the judges' word, else the code's."""
        outcome = "deliver" if 200 <= reply.code < 300 else "bounce" if reply.code >= 500 else "defer"
        action = ""
        for j in self.hooks.judges:
            v: Verdict | None = j.judge(q.key, reply, q.settings)
            if v is not None:
                outcome = v.outcome or outcome
                action = v.queue_action or action
                if v.category:
                    reply = dataclasses.replace(reply, category=v.category)
        return outcome, reply, action

    def settle(self, q: DeliveryQueue, jobs: list[RcptJob], result: TxResult, conn: Connection) -> None:
        actions = set()
        for job, reply in zip(jobs, result.replies):
            outcome, reply, action = self.judge(q, reply)
            actions.add((action, reply))
            if outcome == "deliver":
                self.delivered(q, job, reply, conn)
            elif outcome == "bounce":
                self.bounce(q, job, reply, conn=conn)
            else:
                self.defer(q, job, reply, conn)
        for action, reply in actions:
            if action == "bounce-queue":
                self.bounce_queue(q, reply)
            elif action == "skip-mx" and conn is not None:
                q.skip_hosts[conn.remote_host] = self.clock.now() + retry_delay(1, q.settings.retry_after)
        state = q.state
        for reply in result.replies:
            state = self.observe(q, reply, state)
        if any(200 <= r.code < 300 for r in result.replies):
            state = after_delivery(state)
        if state is not q.state:
            q.set_state(state)

    def _outcome(self, rtype: str, q: DeliveryQueue, job: RcptJob, reply: Reply, conn: Connection | None) -> None:
        msg = job.msg
        self.acct.emit(Outcome(
            rtype, self.clock.now(), orig=msg.mail_from, rcpt=job.rcpt, time_queued=msg.received,
            status=reply.status, diag=reply.text, remote_host=conn.remote_host if conn else reply.remote_host,
            remote_ip=conn.remote_ip if conn else "", source_ip=conn.source_ip if conn else "",
            source_host=msg.source_ip, esmtp=conn.esmtp if conn else "", size=msg.size, vmta=msg.vmta,
            pool=msg.pool, job_id=msg.job_id, env_id=msg.env_id, queue=str(q.key), category=reply.category))
        log.info("%s %s msg=%s rcpt=%s queue=%s mx=%s %s", {"d": "delivered", "b": "bounced", "t": "deferred"}[rtype],
                 reply.status, msg.id, job.rcpt, q.key, conn.remote_host if conn else "-", reply.text)

    def delivered(self, q: DeliveryQueue, job: RcptJob, reply: Reply, conn: Connection) -> None:
        self.spool.finished(job.msg, job.index)
        q.counters["delivered"] += 1
        self._outcome("d", q, job, reply, conn)

    def bounce(self, q: DeliveryQueue, job: RcptJob, reply: Reply, conn: Connection | None = None,
               notify: bool = True, count: bool = True) -> None:
        self.spool.finished(job.msg, job.index)
        if count:
            q.counters["bounced"] += 1
        self._outcome("b", q, job, reply, conn)
        if notify and job.msg.mail_from:
            self.spawn(self._send_dsn(job, reply, conn.remote_host if conn else reply.remote_host))

    def defer(self, q: DeliveryQueue, job: RcptJob, reply: Reply, conn: Connection | None) -> None:
        now = self.clock.now()
        job.failures += 1
        due = next_attempt(job.msg.received, job.failures, now, q.settings)
        if due is None:
            self.expire(q, job, reply.text)
            return
        q.counters["deferred"] += 1
        self._outcome("t", q, job, reply, conn)
        job.due = due
        self.spool.deferred(job.msg, job.index, job.failures, due)
        self._push_timer(due, q, job)

    def bounce_queue(self, q: DeliveryQueue, reply: Reply, diag: str = "") -> None:
        """`bounce-queue` (and an operator's delete): every recipient waiting in the queue (ready
        or on the timer) bounces, with `diag` or "bounce-queue after: <the reply>"."""
        why = Reply(0, reply.status if reply.status[:1] == "5" else "5.0.0",
                    diag or f"x-bounceproc;bounce-queue after: {reply.text}", remote_host=reply.remote_host,
                    category=reply.category)
        while q.ready:
            job = q.ready.popleft()
            self.bounce(q, job, dataclasses.replace(why, rcpt=job.rcpt))
        kept = []
        for entry in self._timers:
            if entry[2] is q and entry[3] is not None:
                q.waiting -= 1
                self.bounce(q, entry[3], dataclasses.replace(why, rcpt=entry[3].rcpt))
            else:
                kept.append(entry)
        if len(kept) != len(self._timers):
            heapq.heapify(kept)
            self._timers[:] = kept

    def expire(self, q: DeliveryQueue, job: RcptJob, last_error: str) -> None:
        text = last_error.split(";", 1)[-1].strip() if last_error else "no delivery before bounce-after"
        self.bounce(q, job, Reply(0, "4.4.7", f"x-bounceproc;message expired: {text}", job.rcpt))

    async def _send_dsn(self, job: RcptJob, reply: Reply, remote: str) -> None:
        msg = job.msg
        original = await asyncio.to_thread(self.spool.read, msg)
        dsn_id = new_id()
        status = reply.status if reply.status[:1] in "45" else "5.0.0"
        data = build_dsn(original, msg.mail_from, [FailedRecipient(job.rcpt, status, reply.text, remote)],
                         self.config.host_name, self.clock.now(), dsn_id, msg.received)
        await self.inject({"id": dsn_id, "from": "", "rcpts": [msg.mail_from], "vmta": msg.vmta,
                           "pool": msg.pool}, data)

    # -- inspection (management, tests) ----------------------------------------------------
    def queue(self, domain: str, vmta: str = "") -> DeliveryQueue | None:
        for k, q in self.queues.items():
            if k.domain == domain and k.vmta == vmta:
                return q
        return None
