"""Fast paths for the hottest calls, in front of FastAPI.

Adapter layer (ASGI). FastAPI's routing and dependency solving cost more than these calls
themselves, so two middlewares answer them directly with the same functions the routes use (the
answers are identical):
- `FastLookup`, `GET /v1/suppressions/{address}`, which a sending application may ask before
  every message: only the plain case - a valid key with read scope, a well-formed address, no
  query or only `scope` and `history=true|false`. Anything else (missing or bad key, odd query,
  invalid address or scope) falls through to FastAPI, which produces the documented problem
  documents.
- `EspFastPath`, `POST /v1/ingest/{ses,sendgrid,mailgun,postmark}` (and Postmark's secret path),
  which SES via SNS calls once per event: the provider's handler in esp.py (verification, parsing,
  group commit), problems included.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qsl

from bounceproc.entrypoints.http.common import parse_address, parse_scope
from bounceproc.entrypoints.http.esp import HANDLERS, verifiers_of
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
        await _answer(scope, receive, send, lookup(self.context, addr, sc, history))

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


async def _answer(scope, receive, send, result) -> None:
    """Await `result` (a coroutine giving a JSON-able value) and send it as a 200, or the problem
    document it raised, as FastAPI's error handling would."""
    try:
        body = json.dumps(await result, separators=(",", ":"), default=str).encode()
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


INGEST = "/v1/ingest/"


class EspFastPath:
    def __init__(self, app, state) -> None:
        self.app, self.state = app, state          # state: app.state (its ctx, its verifiers)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(INGEST):
            return await self.app(scope, receive, send)
        provider, slash, secret = scope["path"][len(INGEST):].partition("/")
        handler = HANDLERS.get(provider)
        if handler is None or (slash and (provider != "postmark" or not secret or "/" in secret)):
            return await self.app(scope, receive, send)      # FastAPI's 404 / 405
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return                                         # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = scope["headers"]

        def header(name: str) -> str:
            key = name.encode()
            return next((v.decode("latin-1") for k, v in headers if k == key), "")

        await _answer(scope, receive, send, handler(self.state.ctx, verifiers_of(self.state), b"".join(chunks),
                                                    header, secret))
