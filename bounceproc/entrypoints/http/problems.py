"""RFC 9457 problem documents for every error the API returns, and a request size limit.

Adapter layer (Starlette/FastAPI). Every 4xx/5xx body is `application/problem+json` with `type`,
`title`, `status`, `detail`, and `errors[]` (field, message) for validation problems.
"""
from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("bounceproc.api")

PROBLEM_TYPE_BASE = "https://bounceproc.dev/problems/"
MAX_BODY_BYTES = 1024 * 1024
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
UPLOAD_PATHS = ("/v1/imports", "/v1/ingest/")   # bulk uploads; ESP batches (SendGrid posts thousands of events)


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, slug: str = "", errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers or {}
        self.slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")


def problem_response(status: int, detail: str, slug: str = "", errors: list[dict] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    title = HTTPStatus(status).phrase
    body = {"type": PROBLEM_TYPE_BASE + (slug or title.lower().replace(" ", "-")), "title": title,
            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/problem+json")


def _field_errors(exc: RequestValidationError) -> list[dict]:
    out = []
    for err in exc.errors()[:50]:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "message": str(err.get("msg", "invalid"))[:300]})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> Response:
        return problem_response(exc.status, exc.detail, exc.slug, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        errors = _field_errors(exc)
        if any(e["field"].startswith("body") and "JSON" in e["message"] for e in errors):
            return problem_response(400, "the request body is not valid JSON", "malformed-body", errors)
        return problem_response(422, "the request has invalid fields", "invalid-request", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error: %s", exc)
        return problem_response(500, "internal error; it has been logged")


class BodyLimit:
    """ASGI middleware: 413 when a request body exceeds the limit (declared or streamed)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            resp = problem_response(400, "NUL characters are not allowed in the URL", "nul-in-url")
            return await resp(scope, receive, send)
        limit = MAX_UPLOAD_BYTES if scope["path"].startswith(UPLOAD_PATHS) else MAX_BODY_BYTES
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    return await self._reject(scope, receive, send, limit)
        seen, over, started, replaced = 0, False, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise Problem(413, f"the request body exceeds {limit} bytes", slug="body-too-large")
            return message

        async def guarded(message) -> None:
            # A body streamed without Content-Length (chunked) is found too big only while the
            # app reads it, and the app may turn the error into a 400 ("cannot parse the body"):
            # whatever it answers then is replaced by the 413 (issue 13, item 13).
            nonlocal started, replaced
            if replaced:
                return
            if over and not started:
                replaced = True
                return await self._reject(scope, receive, send, limit)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over or started:
                raise
            if not replaced:
                await self._reject(scope, receive, send, limit)

    async def _reject(self, scope, receive, send, limit: int) -> None:
        resp = problem_response(413, f"the request body exceeds {limit} bytes", "body-too-large")
        await resp(scope, receive, send)
