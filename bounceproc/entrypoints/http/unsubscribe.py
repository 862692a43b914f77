"""RFC 8058 one-click unsubscribe: POST /u/{token} unsubscribes, GET /u/{token} only shows a page.

Adapter layer. The POST needs no cookie, login, CSRF token or Origin check, and is answered
directly (200, never a redirect: a redirected POST becomes a GET). The body must be
`List-Unsubscribe=One-Click`, form-urlencoded or multipart. An unknown, forged or expired token
gets the same 404 whatever the address, so nothing can be learned from it. The change is an
`unsubscribed` Event recorded by app/one_click.py: a repeated POST records nothing new, a POST
after the suppression was lifted suppresses again. Only the canonical spelling of a token is
accepted (domain/unsubscribe_token.py). POSTs are rate-limited per IP (setting
`unsubscribe_per_ip_per_minute`, 600 by default: a big mailbox provider unsubscribes through a
few proxy IPs) and per token (429 with Retry-After). A GET never changes state: link scanners and
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

from bounceproc.app import one_click
from bounceproc.entrypoints.http.common import ApiContext, ctx
from bounceproc.entrypoints.http.rate_limit import Windows
from bounceproc.domain.unsubscribe_token import InvalidToken, UnsubscribeClaims, read_token

router = APIRouter(tags=["unsubscribe"])
PER_TOKEN_PER_MINUTE = 10


class Limits:
    """The one-click rate limits of this process: per client IP, and per token (keyed on what the
    token says, so another spelling of it is no way around the limit). LRU-bounded tables that
    forget the least recently used entry when full: a genuine unsubscribe is never refused for
    want of room. `ip_limit` 0 is no per-IP limit."""

    def __init__(self, ip_limit: int) -> None:
        self.ip_limit = ip_limit
        self.per_ip, self.per_token = Windows(share_when_full=False), Windows(share_when_full=False)

    def allow_ip(self, ip: str, now: float) -> bool:
        return self.ip_limit <= 0 or self.per_ip.allow(ip, now, self.ip_limit)

    def allow_token(self, claims: UnsubscribeClaims, now: float) -> bool:
        return self.per_token.allow(claims.identity, now, PER_TOKEN_PER_MINUTE)


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
    claims, allowed = None, limits.allow_ip(request.client.host if request.client else "", now)
    if allowed:
        claims = _claims(c, token)
        allowed = claims is None or limits.allow_token(claims, now)
    if not allowed:
        page = _page("Too many requests", "<p>Please try again in a minute.</p>", 429)
        page.headers["Retry-After"] = "60"
        return page
    if claims is None:
        return _not_found()
    if not await _is_one_click(request):
        return _page("Not understood", "<p>The request body must be List-Unsubscribe=One-Click.</p>", 400)
    from starlette.concurrency import run_in_threadpool
    await run_in_threadpool(record_unsubscribe, c, claims)
    return _page("Unsubscribed", "<p>You are unsubscribed. You will not receive these mailings any more.</p>")


def record_unsubscribe(c: ApiContext, claims: UnsubscribeClaims) -> None:
    with c.engine.begin() as conn:
        one_click.record_one_click(conn, claims, c.settings, datetime.now(timezone.utc))
    c.kick_webhooks()
