"""Per-API-key rate limit for /v1, with the limit, remaining and reset headers on every answer.

Adapter layer (ASGI middleware). Fixed one-minute windows, in this process (each API process
counts its own). A request whose bearer token is a key that exists (KeyStore, cached) counts
against that key; any other Authorization (unknown, revoked, malformed) counts against the client
IP, with a lower limit (UNKNOWN_PER_IP_PER_MINUTE). So random tokens can neither fill the table
of real keys nor get more requests through by changing the token (issue 13, item 12). Over the
limit: 429 problem document with `Retry-After`. Every /v1 answer to a request with an
Authorization header carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (seconds until the window resets).

Memory is bounded by `Windows`: a table of at most `max_keys` windows (LRU). When it is full,
ended windows make room; while every window is live, new keys share one overflow window, so no
live limit is ever forgotten (a flood from more addresses than the table holds is limited as one).
The known-key table holds only keys that exist, far fewer than MAX_KEYS in any deployment.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable

from bounceproc.entrypoints.http.problems import problem_response

WINDOW = 60.0
MAX_KEYS = 10_000
UNKNOWN_PER_IP_PER_MINUTE = 600


class Windows:
    """Fixed windows per key, at most `max_keys` of them. When the table is full, windows that have
    ended are dropped first (least recently used first); if the least recently used one is still
    running, a new key shares one overflow window rather than push a live limit out, or with
    `share_when_full=False` the least recently used key is forgotten (for limits where refusing
    a newcomer costs more than forgetting an old count: one-click unsubscribes)."""

    def __init__(self, window: float = WINDOW, max_keys: int = MAX_KEYS, share_when_full: bool = True) -> None:
        self.window, self.max_keys, self.share_when_full = window, max_keys, share_when_full
        self._table: OrderedDict[Hashable, list] = OrderedDict()
        self._overflow = [float("-inf"), 0]

    def hit(self, key: Hashable, now: float) -> tuple[int, float]:
        """Count one request for `key`: (requests in its current window, seconds until it ends)."""
        table = self._table
        w = table.get(key)
        if w is not None:
            table.move_to_end(key)
        else:
            while table and len(table) >= self.max_keys and (
                    not self.share_when_full or now - next(iter(table.values()))[0] >= self.window):
                table.popitem(last=False)
            w = self._overflow if len(table) >= self.max_keys else table.setdefault(key, [now, 0])
        if now - w[0] >= self.window:
            w[0], w[1] = now, 0
        w[1] += 1
        return w[1], w[0] + self.window - now

    def allow(self, key: Hashable, now: float, limit: int) -> bool:
        return self.hit(key, now)[0] <= limit

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._table


# ESP webhooks carry the provider's signature (or Postmark's basic auth), not an API key: an ESP
# posting a campaign's bounces from a few IPs must not meet the per-IP limit of unknown keys.
UNLIMITED_PATHS = ("/v1/ingest/",)


def _bearer(headers) -> str | None:
    """The Authorization header's bearer token ("" for another scheme), None without one."""
    for name, value in headers:
        if name == b"authorization":
            text = value[:512].decode("latin-1")
            return text[7:].strip() if text[:7].lower() == "bearer " else ""
    return None


class RateLimit:
    def __init__(self, app, per_minute: int, keys, max_keys: int = MAX_KEYS, clock=time.monotonic) -> None:
        self.app, self.limit, self.keys, self.clock = app, per_minute, keys, clock
        self.known, self.unknown = Windows(max_keys=max_keys), Windows(max_keys=max_keys)

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or not self.limit or not scope["path"].startswith("/v1/")
                or scope["path"].startswith(UNLIMITED_PATHS)):
            return await self.app(scope, receive, send)
        token = _bearer(scope["headers"])
        if token is None:
            return await self.app(scope, receive, send)
        key = self.keys.lookup(token) if token else None
        if key is not None:
            limit, (n, left) = self.limit, self.known.hit(key.key_id, self.clock())
        else:
            client = scope.get("client") or ("",)
            limit = min(self.limit, UNKNOWN_PER_IP_PER_MINUTE)
            n, left = self.unknown.hit(client[0], self.clock())
        reset = max(1, int(left + 0.999))
        headers = [(b"x-ratelimit-limit", str(limit).encode()),
                   (b"x-ratelimit-remaining", str(max(0, limit - n)).encode()),
                   (b"x-ratelimit-reset", str(reset).encode())]
        if n > limit:
            what = "with this key" if key is not None else "from this address without a valid key"
            resp = problem_response(429, f"more than {limit} requests a minute {what}",
                                    "rate-limited", headers={"Retry-After": str(reset)})
            resp.raw_headers.extend(headers)
            return await resp(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
