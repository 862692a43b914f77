"""A fast path for the hottest call, `GET /v1/suppressions/{address}`, in front of FastAPI.

Adapter layer (ASGI). A sending application may ask this before every message, and FastAPI's
routing and dependency solving cost more than the lookup itself. This middleware answers only the
plain case - a valid key with read scope, a well-formed address, no query or only `scope` and
`history=true|false` - by calling the same `suppressions.lookup` the route uses, so the answers are
identical. Anything else (missing or bad key, odd query, invalid address or scope) falls through
to FastAPI, which produces the documented problem documents.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qsl

from bounceproc.entrypoints.http.common import parse_address, parse_scope
from bounceproc.entrypoints.http.problems import Problem, log, problem_response
from bounceproc.entrypoints.http.suppressions import lookup

PREFIX = "/v1/suppressions/"
_BOOL = {"true": True, "false": False}


class FastLookup:
    def __init__(self, app, context) -> None:
        self.app, self.context = app, context

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PREFIX)):
            return await self.app(scope, receive, send)
        args = self._plain(scope)
        if args is None:
            return await self.app(scope, receive, send)
        addr, sc, history = args
        try:
            body = json.dumps(await lookup(self.context, addr, sc, history), separators=(",", ":"),
                              default=str).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        except Problem as exc:
            response = problem_response(exc.status, exc.detail, exc.slug, exc.errors, exc.headers)
        except Exception as exc:  # outside FastAPI's error middleware: answer like it would
            log.exception("unhandled error: %s", exc)
            response = problem_response(500, "internal error; it has been logged")
        await response(scope, receive, send)

    def _plain(self, scope) -> tuple[str, str, bool] | None:
        raw = scope["path"][len(PREFIX):]
        if not raw or "/" in raw or raw == "export.csv":
            return None
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
        if not auth or not auth[:7].lower() == "bearer ":
            return None
        key = self.context.keys.lookup(auth[7:].strip())
        if key is None or not key.allows("suppressions:read"):
            return None
        sc, history = "global", True
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if k == "scope" and len(v) <= 300:
                sc = v
            elif k == "history" and v in _BOOL:
                history = _BOOL[v]
            else:
                return None
        try:
            return parse_address(raw), parse_scope(sc), history
        except Problem:
            return None
