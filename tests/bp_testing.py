"""Helpers shared by tests (importable as `bp_testing`: tests/ is on sys.path under pytest).

Environment for `bounceproc` / `celery` subprocesses that use given settings, the path of the
venv's console scripts, `bounceproc serve` started and waited for (`start_serve`), a loopback
HTTP server answering through a function (`LoopbackHTTP`), and a real Celery worker process that
tests start and kill by PID.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_for(fn, timeout: float = 60.0, what: str = "condition", poll: float = 0.05):
    """Poll `fn` until it returns something true (returned), for at most `timeout` seconds: a
    wait on a condition, bounded in time, never a fixed sleep standing in for one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (bind to port 0, read it, close), and that
    this process has not handed out before: a test that restarts a server on its port, and asks
    for another port meanwhile, must not get the one it is about to reuse (the kernel may hand a
    just-released port out again)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no loopback port that was not handed out before, in 50 tries")


def settings_env(settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess (bounceproc CLI, celery worker) that uses these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update({
        "BOUNCEPROC_DATABASE_URL": settings.db_url, "BOUNCEPROC_BROKER_URL": settings.broker_url,
        "BOUNCEPROC_QUEUE": settings.queue, "BOUNCEPROC_DATA_DIR": settings.data_dir,
        "BOUNCEPROC_SECRET_KEY": settings.secret_key, "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def subscribe_webhooks(settings, types: tuple[str, ...] = ()) -> None:
    """Register an enabled webhook endpoint for `types` (() = every type), so that changes write
    outbox rows (only subscribed types do). Its URL is in TEST-NET-1: the SSRF guard refuses
    to deliver there, so nothing leaves the machine."""
    from datetime import datetime, timezone

    from bounceproc import bootstrap
    from bounceproc.storage.api_tables import webhook_endpoints
    now = datetime.now(timezone.utc)
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(webhook_endpoints.insert().values(
            endpoint_id=f"ep_test{uuid.uuid4().hex[:12]}", url="https://192.0.2.1/hooks",
            event_types=list(types), secrets=[{"secret": "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=",
                                               "expires_at": None}],
            enabled=True, created_at=now, updated_at=now))


def bin_path(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def drop_redis_queue(broker_url: str, queue: str) -> None:
    """Delete what a test's Celery queue left in Redis (the queue, kombu's bindings of it).
    Queue names carry a random suffix, so nothing else matches."""
    if not broker_url.startswith("redis") or len(queue) < 12:
        return
    import redis
    client = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a subprocess this test started, SIGKILL it if it does not exit in `timeout` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_serve(args: list[str], env: dict[str, str], cwd, log_path: Path, stderr_path: Path | None = None,
                timeout: float = 90.0) -> subprocess.Popen:
    """`python -m bounceproc ARGS` (a command that serves the API: `serve`, `--log-format json
    serve`...) writing stdout to `log_path` (stderr too, or to `stderr_path`). Returned once it says
    "API listening" (printed when the socket is bound: the API answers from then on) or has exited;
    the caller stops it (`stop_process`)."""
    with open(log_path, "w") as out, open(stderr_path or os.devnull, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bounceproc", *args], env=env, cwd=cwd, stdout=out,
                                stderr=err if stderr_path else subprocess.STDOUT)
    try:
        wait_for(lambda: "API listening" in log_path.read_text() or proc.poll() is not None, timeout,
                 "serve to say API listening")
    except AssertionError:
        stop_process(proc)
        raise AssertionError("serve did not start:\n" + log_path.read_text()) from None
    return proc


def listening_port(log_text: str) -> int:
    """The API port `serve` says it listens on (the bound one, also with --api HOST:0)."""
    import re
    return int(re.search(r"API listening on http://\S+?:(\d+) ", log_text).group(1))


@dataclass(frozen=True)
class HTTPRequest:
    method: str
    path: str
    headers: dict[str, str]      # names in lower case
    body: bytes


class LoopbackHTTP:
    """An HTTP/1.1 server on 127.0.0.1 (a port of its own), on a thread: every request goes to
    `answer(HTTPRequest) -> (status, headers, body)`, on the server's request thread. For the
    endpoints a test plays (webhook receivers, certificate hosts, token introspection). `close()`
    stops it."""

    def __init__(self, answer: Callable[[HTTPRequest], tuple[int, dict[str, str], bytes]]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, headers, out = answer(HTTPRequest(self.command, self.path,
                                                          {k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if status >= 200 and status not in (204, 304):
                        self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _answer   # noqa: N815 - http.server's names

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


class CeleryWorker:
    """A real `celery -A workers worker` subprocess; stop() kills it by PID."""

    def __init__(self, settings, beat: bool = False, extra_env: dict | None = None):
        self.settings = settings
        args = [bin_path("celery"), "-A", "workers", "worker", "-P", "solo", "-l", "info",
                "-Q", settings.queue, "-n", f"bp-{uuid.uuid4().hex[:8]}@%h", "--without-gossip",
                "--without-mingle", "--without-heartbeat"]
        if beat:
            args += ["-B", "-s", str(Path(settings.data_dir) / "beat-schedule")]
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(settings.data_dir) / f"worker-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=settings_env(settings, **(extra_env or {})),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("celery worker exited:\n" + self.log())
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("celery worker did not become ready in 60 s:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()




def text_notice(n: int) -> bytes:
    """A Postfix-style text bounce notice naming `n` failed recipients (no delivery-status part)."""
    body = "".join(f"<user{i}@example.com>: host mx.example.com said: 550 5.1.1 user unknown\r\n\r\n" for i in range(n))
    return ("From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@bounces.example.net\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <notice@mx.example.com>\r\n\r\n"
            "This is the mail system at host mx.example.com.\r\n\r\nI'm sorry to have to inform you that your "
            "message could not be delivered to one or more recipients.\r\n\r\n" + body).encode()
