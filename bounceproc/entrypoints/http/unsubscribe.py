"""RFC 8058 one-click unsubscribe: POST /u/{token} unsubscribes, GET /u/{token} only shows a page.

Adapter layer. The POST needs no cookie, login, CSRF token or Origin check, and is answered
directly (200, never a redirect: a redirected POST becomes a GET). The body must be
`List-Unsubscribe=One-Click`, form-urlencoded or multipart. An unknown, forged or expired token
gets the same 404 whatever the address, so nothing can be learned from it. The change is an
`unsubscribed` Event through service.record_events; its event_key is derived from the token and
the day, so a repeated POST records nothing new. POSTs are rate-limited per IP and per token
(429 with Retry-After). A GET never changes state: link scanners and
security gateways fetch every URL in a message.
"""
from __future__ import annotations

import html
import time
from urllib.parse import parse_qsl
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from bounceproc.app import service
from bounceproc.entrypoints.http.common import ApiContext, ctx
from bounceproc.domain.events import Event, event_key
from bounceproc.domain.unsubscribe_token import InvalidToken, UnsubscribeClaims, read_token

router = APIRouter(tags=["unsubscribe"])
PER_IP_PER_MINUTE = 60
PER_TOKEN_PER_MINUTE = 10


class WindowLimiter:
    """Fixed one-minute windows per key, in this process (RFC 8058 endpoints are rate-limited per
    token and per IP, never per session). Memory is bounded: the table is reset when it is full."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._counts: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, now: float) -> bool:
        start, n = self._counts.get(key, (now, 0))
        if now - start >= self.window:
            start, n = now, 0
        if len(self._counts) >= self.max_keys and key not in self._counts:
            self._counts.clear()
        self._counts[key] = (start, n + 1)
        return n < self.limit
Ctx = Annotated[ApiContext, Depends(ctx)]
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code=status, headers=NO_STORE)


def _masked(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return (local[:1] + "***@" + domain) if local else address


def _claims(c: ApiContext, token: str) -> UnsubscribeClaims | None:
    try:
        return read_token(c.settings.secret(), token, datetime.now(timezone.utc))
    except InvalidToken:
        return None


def _not_found() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid or has expired.</p>", 404)


@router.get("/u/{token}", response_class=HTMLResponse,
            responses={404: {"description": "unknown, forged or expired token", "content": {"text/html": {}}}})
def unsubscribe_page(c: Ctx, token: str):
    """A confirmation page with a button; changes nothing."""
    claims = _claims(c, token)
    if claims is None:
        return _not_found()
    what = f"the list <b>{html.escape(claims.list_id)}</b>" if claims.list_id else "all our mailings"
    body = (f"<p>Unsubscribe <b>{html.escape(_masked(claims.recipient))}</b> from {what}?</p>"
            f'<form method="post" action="/u/{html.escape(token)}">'
            f'<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f"<button type=\"submit\">Unsubscribe</button></form>")
    return _page("Unsubscribe", body)


async def _is_one_click(request: Request) -> bool:
    """True if the body says List-Unsubscribe=One-Click (urlencoded, multipart, or bare), with
    whitespace around the key and value tolerated."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=20)
        except Exception:  # malformed multipart: not a one-click request
            return False
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    else:
        raw = (await request.body())[:4096].decode("utf-8", errors="replace")
        pairs = parse_qsl(raw.strip(), keep_blank_values=True)
    return any(k.strip() == "List-Unsubscribe" and v.strip() == "One-Click" for k, v in pairs)


@router.post("/u/{token}", response_class=HTMLResponse,
             responses={400: {"description": "the body is not List-Unsubscribe=One-Click", "content": {"text/html": {}}},
                        404: {"description": "unknown, forged or expired token", "content": {"text/html": {}}},
                        429: {"description": "rate limited (per IP and per token)", "content": {"text/html": {}}}})
async def unsubscribe(c: Ctx, token: str, request: Request):
    """Unsubscribe in the token's scope. Repeating it is harmless."""
    limits = request.app.state.unsubscribe_limits
    now = time.monotonic()
    ip = request.client.host if request.client else ""
    if not (limits[0].allow(ip, now) and limits[1].allow(token[:200], now)):
        page = _page("Too many requests", "<p>Please try again in a minute.</p>", 429)
        page.headers["Retry-After"] = "60"
        return page
    claims = _claims(c, token)
    if claims is None:
        return _not_found()
    if not await _is_one_click(request):
        return _page("Not understood", "<p>The request body must be List-Unsubscribe=One-Click.</p>", 400)
    from starlette.concurrency import run_in_threadpool
    await run_in_threadpool(record_unsubscribe, c, claims, token)
    return _page("Unsubscribed", "<p>You are unsubscribed. You will not receive these mailings any more.</p>")


def record_unsubscribe(c: ApiContext, claims: UnsubscribeClaims, token: str) -> None:
    now = datetime.now(timezone.utc)
    ev = Event(event_key=event_key("one-click", token, now.date().isoformat()), type="unsubscribed",
               recipient=claims.recipient, occurred_at=now, source="unsubscribe", list_id=claims.list_id,
               attrs={"method": "one_click"})
    with c.engine.begin() as conn:
        service.record_events(conn, [ev], c.settings)
    c.kick_webhooks()
