"""Shared pieces for the API, webhook and unsubscribe tests (no tests here).

- `serve_api(settings)`: the real app on a real uvicorn server, on a free loopback port.
- `Receiver`: a real HTTP server on loopback that records requests; its paths behave:
  /ok -> 200, /fail -> 500, /slow -> sleeps `slow_seconds` then 200, /redirect -> 302 to /ok,
  /gone -> 410, /busy -> 503 with Retry-After: 120, /flaky -> 500 `flaky_failures` times, then 200.
"""
from __future__ import annotations

import contextlib
import threading
import time
import httpx
import pytest

from bp_testing import HTTPRequest, LoopbackHTTP, free_port


@contextlib.contextmanager
def serve_api(settings, kick=None):
    import uvicorn

    from bounceproc.entrypoints.http.app import create_app
    port = free_port()
    app = create_app(settings, kick_webhooks=kick or (lambda: None))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        from bounceproc import bootstrap
        bootstrap.engine(settings).dispose()     # many test databases: do not hoard connections


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.slow_seconds = 3.0
        self.flaky_failures = 1
        self._flaky_seen = 0
        self._lock = threading.Lock()
        self.http = LoopbackHTTP(self._answer)

    def _answer(self, request: HTTPRequest) -> tuple[int, dict, bytes]:
        with self._lock:
            self.requests.append({"path": request.path, "headers": request.headers, "body": request.body,
                                  "at": time.time()})
        status, extra = self._behave(request.path)
        return status, extra, b"thanks" if status < 300 else b"nope"

    def _behave(self, path: str) -> tuple[int, dict]:
        p = path.split("?")[0]
        if p.startswith("/fail"):
            return 500, {}
        if p.startswith("/slow"):
            time.sleep(self.slow_seconds)
            return 200, {}
        if p.startswith("/redirect"):
            return 302, {"Location": "/ok-after-redirect"}
        if p.startswith("/gone"):
            return 410, {}
        if p.startswith("/busy"):
            return 503, {"Retry-After": "120"}
        if p.startswith("/flaky"):
            with self._lock:
                self._flaky_seen += 1
                if self._flaky_seen <= self.flaky_failures:
                    return 500, {}
        return 200, {}

    def url(self, path: str) -> str:
        return self.http.url(path)

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith(path)]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def admin_key(settings, scopes=("admin",)) -> str:
    from bounceproc import bootstrap
    from bounceproc.storage.api_keys import create_key
    with bootstrap.engine(settings).begin() as conn:
        return create_key(conn, list(scopes))


def client(base: str, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False)


def count(settings, table) -> int:
    from sqlalchemy import func, select

    from bounceproc import bootstrap
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status and body["title"] and body["type"] and body["detail"]
    return body
