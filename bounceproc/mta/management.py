"""Operate the running MTA: traffic counters, snapshots, operator actions, and the management
HTTP on `http-mgmt-port` (PowerMTA's paths: /status, /queues, /domains, /vmtas, /top, with
`?format=json`; /metrics; POST /pause, /resume, /delete, /setQueueMode, /rotateAcct, /reload).

Adapter layer (asyncio streams on the MTA's loop; the views are pure, bounceproc.domain.mta.monitor).
Access: a client whose address falls in an `http-access CIDR LEVEL` line gets that level (the
longest prefix wins); a request with `X-API-Key: <http-api-key>` gets `admin`. Levels: `monitor`
reads, `operator` also pauses / resumes / sets modes / rotates / reloads, `admin` also deletes.
Everything else is 403. The server speaks just enough HTTP/1.1 for curl, monitoring tools and
`bounceproc mta show` (one request per connection).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from bounceproc.domain.mta import monitor
from bounceproc.domain.mta.queue_state import QueueMode
from bounceproc.domain.mta.suppression_skip import is_skip_diag
from bounceproc.mta.hooks import Reply

log = logging.getLogger("bounceproc.mta")
LEVELS = {"none": 0, "monitor": 1, "operator": 2, "admin": 3}
BUCKET = 10.0                 # seconds per traffic bucket
MAX_REQUEST = 16 * 1024


class TrafficMeter:
    """Counts injected and finished recipients in 10-second buckets (last minute, last hour, total)."""

    def __init__(self, now) -> None:
        self.now = now
        self.buckets: dict[int, dict] = defaultdict(lambda: defaultdict(float))
        self.total: dict = defaultdict(float)

    def _add(self, **counts) -> None:
        b = self.buckets[int(self.now() // BUCKET)]
        for k, v in counts.items():
            b[k] += v
            self.total[k] += v
        if len(self.buckets) > 400:
            oldest = int(self.now() // BUCKET) - 360
            for k in [k for k in self.buckets if k < oldest]:
                del self.buckets[k]

    def install(self, mta) -> None:
        """Count what the engine injects and every outcome it records."""
        inject, emit = mta.inject, mta.acct.emit

        async def counted_inject(meta: dict, data: bytes):
            msg = await inject(meta, data)
            self._add(in_msg=1, in_rcpt=len(meta.get("rcpts", ())), in_kb=len(data) / 1024)
            return msg

        def counted_emit(o):
            if o.type == "d":
                self._add(out_msg=1, out_rcpt=1, out_kb=o.size / 1024, delivered=1)
            elif o.type == "b":
                self._add(**({"skipped": 1} if is_skip_diag(o.diag) else {"bounced": 1}))
            elif o.type == "t":
                self._add(deferred=1)
            emit(o)
        mta.inject, mta.acct.emit = counted_inject, counted_emit

    def window(self, seconds: float) -> dict:
        first = int((self.now() - seconds) // BUCKET) + 1
        out: dict = defaultdict(float)
        for k, b in self.buckets.items():
            if k >= first:
                for name, v in b.items():
                    out[name] += v
        return out


def _traffic(c: dict) -> dict:
    return {d: {"rcpt": int(c.get(f"{d}_rcpt", 0)), "msg": int(c.get(f"{d}_msg", 0)),
                "kbytes": round(c.get(f"{d}_kb", 0.0), 1)} for d in ("in", "out")}


def snapshot(mta, meter: TrafficMeter, started: float, activity=None, counters: dict | None = None) -> dict:
    """The state `monitor` views read; call on the MTA's loop."""
    now = mta.clock.now()
    waiting: dict = defaultdict(lambda: [0, 0])
    for _, _, q, job in mta._timers:
        if job is not None:
            w = waiting[q.key]
            w[0] += 1
            w[1] += job.msg.size
    queues = []
    for key, q in mta.queues.items():
        w = waiting.get(key, (0, 0))
        kbytes = (sum(j.msg.size for j in q.ready) + w[1]) / 1024
        retry = max(q.state.retry_at - now, 0.0)
        queues.append({"queue": str(key), "domain": key.domain, "vmta": key.vmta, "rcpt": len(q.ready) + w[0],
                       "kbytes": round(kbytes, 1), "conn": q.conns, "mode": q.state.mode.value,
                       "retry": retry, "last_error": q.state.last_error, **q.counters})
    last_min = meter.window(60)
    return {"time": now, "started": started, "queues": queues,
            "traffic": {"total": _traffic(meter.total), "last_hour": _traffic(meter.window(3600)),
                        "last_min": _traffic(last_min)},
            "outcomes_last_min": {k: int(last_min.get(k, 0)) for k in ("delivered", "bounced", "deferred", "skipped")},
            "events": activity.recent() if activity is not None else [], "counters": counters or {}}


def _matching(mta, name: str):
    """Queues named `DOMAIN` (every virtual MTA) or `DOMAIN/VMTA` (`{default}` = none)."""
    domain, _, vmta = name.partition("/")
    vmta = "" if vmta == "{default}" else vmta
    return [q for k, q in mta.queues.items() if k.domain == domain.lower() and (not _ or k.vmta == vmta)]


class Management:
    """Snapshots, operator actions and the HTTP server of one MtaService."""

    def __init__(self, service, activity=None, counters=None) -> None:
        self.service, self.activity = service, activity
        self.counters = counters or (lambda: {})
        self.meter: TrafficMeter | None = None
        self.started = time.time()
        self.server: asyncio.AbstractServer | None = None

    @property
    def mta(self):
        return self.service.mta

    async def start(self) -> None:
        """Called on the MTA's loop once the engine runs."""
        self.started = self.mta.clock.now()
        self.meter = TrafficMeter(self.mta.clock.now)
        self.meter.install(self.mta)
        port = self.mta.config.http_mgmt_port
        try:
            self.server = await asyncio.start_server(self._serve, "0.0.0.0", port)
        except OSError as exc:
            log.error("management HTTP not started on port %s: %s", port, exc)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1] if self.server else 0

    # -- views and actions (on the loop) -------------------------------------------------
    def view(self, name: str, arg: str = ""):
        snap = snapshot(self.mta, self.meter, self.started, self.activity, self.counters())
        if name == "metrics":
            return monitor.metrics_text(snap)
        if name == "queues":
            return monitor.queues_view(snap, arg)
        if name == "top":
            return monitor.top_view(snap, int(arg) if arg.isdigit() else 20)
        return monitor.VIEWS[name](snap)

    def act(self, action: str, queue: str = "", mode: str = "") -> dict:
        if action == "reload":
            self.service.reload()
            return {"reloaded": True}
        if action == "rotateAcct":
            self.mta.acct.rotate()
            return {"rotated": True}
        queues = _matching(self.mta, queue)
        if not queues:
            raise LookupError(f"no queue {queue!r}")
        now = self.mta.clock.now()
        for q in queues:
            if action == "pause":
                q.set_mode(QueueMode.PAUSED)
            elif action == "resume":
                q.set_mode(QueueMode.NORMAL)
            elif action == "setQueueMode":
                q.set_mode(QueueMode(mode))
            elif action == "delete":
                self.mta.bounce_queue(q, Reply(0, "5.0.0", ""), "x-bounceproc;deleted by the operator")
            if self.activity is not None:
                self.activity.add(action if action != "setQueueMode" else f"mode={mode}", str(q.key), "",
                                  "operator", now)
        return {"queues": [str(q.key) for q in queues], "action": action}

    # -- HTTP ------------------------------------------------------------------------------
    def level(self, peer: str, headers: dict) -> int:
        key = self.mta.config.http_api_key
        if key and hmac.compare_digest(headers.get("x-api-key", "").encode(), key.encode()):
            return LEVELS["admin"]
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return 0
        best, best_len = 0, -1
        for cidr, lvl in self.mta.config.http_access:
            try:
                net = ipaddress.ip_network("0.0.0.0/0" if cidr == "0/0" else cidr, strict=False)
            except ValueError:
                continue
            if addr.version == net.version and addr in net and net.prefixlen > best_len:
                best, best_len = LEVELS[lvl], net.prefixlen
        return best

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target = (lines[0].split(" ") + ["", ""])[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        status, ctype, body = self.handle(method, target, headers, writer.get_extra_info("peername")[0])
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        try:
            await writer.drain()
        finally:
            writer.close()

    def handle(self, method: str, target: str, headers: dict, peer: str) -> tuple[str, str, bytes]:
        url = urlsplit(target)
        qs = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.strip("/")
        level = self.level(peer, headers)
        reads = {"status", "queues", "domains", "vmtas", "top", "metrics"}
        writes = {"pause": 2, "resume": 2, "setQueueMode": 2, "rotateAcct": 2, "reload": 2, "delete": 3}
        if path in reads and method == "GET":
            need = 1
        elif path in writes and method == "POST":
            need = writes[path]
        else:
            return _json("404 Not Found", {"status": "error", "error": f"no {method} /{path}"})
        if level < need:
            return _json("403 Forbidden", {"status": "error", "error": "access denied (http-access / X-API-Key)"})
        try:
            if path in reads:
                data = self.view(path, qs.get("queue", qs.get("n", "")))
                if path == "metrics":
                    return "200 OK", "text/plain; version=0.0.4", data.encode()
                if qs.get("format") != "json":
                    return "200 OK", "text/plain; charset=utf-8", monitor.render(path, data).encode()
                return _json("200 OK", {"status": "success", "data": data})
            if path == "setQueueMode" and qs.get("mode") not in ("normal", "backoff"):
                return _json("400 Bad Request", {"status": "error", "error": "mode must be normal or backoff"})
            return _json("200 OK", {"status": "success", "data": self.act(path, qs.get("queue", ""), qs.get("mode", ""))})
        except LookupError as exc:
            return _json("404 Not Found", {"status": "error", "error": str(exc)})


def _json(status: str, obj) -> tuple[str, str, bytes]:
    return status, "application/json", json.dumps(obj, default=str).encode()
