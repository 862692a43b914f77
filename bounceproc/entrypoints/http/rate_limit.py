"""Per-API-key rate limit for /v1, with the limit, remaining and reset headers on every answer.

Adapter layer (ASGI middleware). Fixed one-minute windows per bearer token, in this process (each
API process counts its own). Over the limit: 429 problem document with `Retry-After`. Every /v1
answer to a request with a key carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (seconds until the window resets). Memory is bounded by MAX_KEYS tokens.
"""
from __future__ import annotations

import time

from bounceproc.entrypoints.http.problems import problem_response

WINDOW = 60.0
MAX_KEYS = 10_000


class RateLimit:
    def __init__(self, app, per_minute: int) -> None:
        self.app, self.limit = app, per_minute
        self._windows: dict[bytes, list] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.limit or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = value[:256]
        if token is None:
            return await self.app(scope, receive, send)
        now = time.monotonic()
        window = self._windows.get(token)
        if window is None or now - window[0] >= WINDOW:
            if window is None and len(self._windows) >= MAX_KEYS:
                self._windows.clear()
            window = self._windows[token] = [now, 0]
        window[1] += 1
        reset = max(1, int(window[0] + WINDOW - now + 0.999))
        headers = [(b"x-ratelimit-limit", str(self.limit).encode()),
                   (b"x-ratelimit-remaining", str(max(0, self.limit - window[1])).encode()),
                   (b"x-ratelimit-reset", str(reset).encode())]
        if window[1] > self.limit:
            resp = problem_response(429, f"more than {self.limit} requests a minute with this key",
                                    "rate-limited", headers={"Retry-After": str(reset)})
            resp.raw_headers.extend(headers)
            return await resp(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
