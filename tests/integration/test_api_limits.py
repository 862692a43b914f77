"""API request limits: the per-key rate limit survives a flood of random bearer tokens (issue 13,
item 12), and an over-size body gets 413 whether it declares its length or is sent chunked
(item 13)."""
from __future__ import annotations

import asyncio
import json
import secrets

from test_api_support import admin_key, assert_problem, client, serve_api

from bounceproc import bootstrap
from bounceproc.entrypoints.http.problems import MAX_BODY_BYTES
from bounceproc.entrypoints.http.rate_limit import UNKNOWN_PER_IP_PER_MINUTE, RateLimit, Windows
from bounceproc.storage.api_keys import KeyStore


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _calls(limiter: RateLimit, requests: list[tuple[str, str]]) -> list[int]:
    """/v1 requests (token, client IP) through the middleware, in order; their statuses."""
    async def one(token: str, ip: str) -> int:
        scope = {"type": "http", "method": "GET", "path": "/v1/suppressions", "client": (ip, 40000),
                 "headers": [(b"authorization", f"Bearer {token}".encode())], "query_string": b""}
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await limiter(scope, receive, send)
        return sent[0]["status"]

    async def run() -> list[int]:
        return [await one(t, ip) for t, ip in requests]

    return asyncio.run(run())


def _random_token() -> str:
    return f"bp_{secrets.token_hex(4)}_{secrets.token_hex(8)}"


def test_random_tokens_neither_clear_nor_dodge_the_limit(make_settings, sqlite_url):
    settings = make_settings(database_url=sqlite_url)
    key = admin_key(settings)
    limiter = RateLimit(_ok, per_minute=5, keys=KeyStore(bootstrap.engine(settings)), max_keys=100,
                        clock=lambda: 1000.0)         # one window throughout
    assert _calls(limiter, [(key, "192.0.2.1")] * 5) == [200] * 5
    # 2,001 requests with random tokens from 250 addresses, more than the table holds: the first
    # 100 addresses get 5 each, the other 150 share one overflow window of 5; the table of real
    # keys is not touched
    ips = [f"198.51.100.{i % 250}" for i in range(2_001)]
    codes = _calls(limiter, [(_random_token(), ip) for ip in ips])
    assert codes.count(200) == 100 * 5 + 5 and len(limiter.unknown) == 100 and len(limiter.known) == 1
    # the key at its limit stays there, from any address
    assert _calls(limiter, [(key, "192.0.2.1"), (key, "203.0.113.5")]) == [429, 429]
    # random tokens from one address get at most the unknown-key limit; a real key from there does not
    limiter = RateLimit(_ok, per_minute=10_000, keys=KeyStore(bootstrap.engine(settings)), clock=lambda: 1000.0)
    codes = _calls(limiter, [(_random_token(), "192.0.2.99")] * (UNKNOWN_PER_IP_PER_MINUTE + 5) + [(key, "192.0.2.99")])
    assert codes == [200] * UNKNOWN_PER_IP_PER_MINUTE + [429] * 5 + [200]


def test_windows_make_room_from_the_least_recently_used_ended_window():
    w = Windows(window=60.0, max_keys=3)
    for k in ("a", "b", "c"):
        w.hit(k, 0.0)
    w.hit("a", 30.0)                 # a is used again: b is now the least recently used
    w.hit("d", 61.0)                 # b's window has ended: it makes room
    assert len(w) == 3 and "b" not in w and all(k in w for k in ("a", "c", "d"))
    assert w.hit("a", 61.0)[0] == 1                                  # a new window for a


def test_a_full_table_of_live_windows_shares_an_overflow_window():
    w = Windows(window=60.0, max_keys=2)
    w.hit("a", 0.0)
    w.hit("b", 10.0)
    assert [w.hit(k, 20.0)[0] for k in ("c", "d", "e")] == [1, 2, 3]   # one shared window
    assert w.hit("a", 20.0)[0] == 2 and w.hit("b", 20.0)[0] == 2          # nobody forgotten
    assert w.hit("f", 65.0)[0] == 1 and len(w) == 2 and "a" not in w    # a's window ended: room for f
    assert w.hit("g", 65.0)[0] == 4                        # b is live: g joins the overflow window


def test_oversize_body_is_413_declared_or_chunked(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url)
    big = json.dumps({"addresses": ["a@example.com"], "scope": "global", "pad": "x" * (MAX_BODY_BYTES + 10)}).encode()

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    with serve_api(settings) as base, client(base, admin_key(settings)) as c:
        assert_problem(c.post("/v1/suppressions/check", content=big,
                              headers={"content-type": "application/json"}), 413)
        for path in ("/v1/suppressions/check", "/v1/suppressions/batch", "/v1/webhook-endpoints"):
            r = c.post(path, content=chunks(), headers={"content-type": "application/json"})
            assert r.request.headers.get("transfer-encoding") == "chunked"
            assert_problem(r, 413)
            assert "exceeds" in r.json()["detail"]
        # a small chunked body is still read normally
        r = c.post("/v1/suppressions/check", content=iter([b'{"addresses": ["a@example.com"]}']),
                   headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["results"][0]["suppressed"] is False


def test_a_forgetting_table_drops_the_least_recently_used_key():
    w = Windows(window=60.0, max_keys=2, share_when_full=False)
    w.hit("a", 0.0)
    w.hit("b", 10.0)
    w.hit("a", 11.0)
    assert w.hit("c", 20.0)[0] == 1 and "b" not in w and "a" in w and len(w) == 2
