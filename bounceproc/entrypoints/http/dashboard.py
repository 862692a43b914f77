"""/dashboard: the postmaster's operations view, served by the API process.

Adapter layer (FastAPI). Who may look: a client whose address is in `dashboard_allow_cidrs`, or
the holder of an API key with `dashboard:read`, `suppressions:read` or `admin`, given as
`Authorization: Bearer`, or once as `/dashboard?key=…`, which sets an HttpOnly, SameSite=Strict
cookie on /dashboard and redirects to the page without the key in its URL. Addresses are shown
only to a key that may read suppressions; everyone else sees them masked (`•••@domain`).

Routes: `/dashboard` (the page, server-rendered), `/dashboard/data` (the panels' HTML and the
chart data as JSON, for the refresh without reload), `/dashboard/rule/{id}` (a classification
rule explained), `/dashboard/static/{file}` (uPlot and the page's own script and style, from the
package: no CDN).
"""
from __future__ import annotations

import dataclasses
import ipaddress
from importlib import resources
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bounceproc.app import alerts, ops_view
from bounceproc.entrypoints.http import dashboard_html
from bounceproc.entrypoints.http.common import json_response
from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.traffic_counts import FILTERS

router = APIRouter(include_in_schema=False)
COOKIE = "bp_dashboard"
VIEW_SCOPES = ("dashboard:read", "suppressions:read")
STATIC = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css",
          "dashboard.js": "text/javascript", "dashboard.css": "text/css", "uPlot.LICENSE": "text/plain"}


@dataclasses.dataclass(frozen=True)
class Viewer:
    reveal: bool         # may see addresses


def _in_cidrs(host: str | None, cidrs: tuple[str, ...]) -> bool:
    if not host or not cidrs:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)


def viewer(request: Request) -> Viewer:
    """The viewer's rights, or a 401 / 403 problem."""
    ctx = request.app.state.ctx
    token = ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    token = token or request.cookies.get(COOKIE, "")
    key = ctx.keys.lookup(token) if token else None
    if key is not None and any(key.allows(s) for s in VIEW_SCOPES):
        return Viewer(reveal=key.allows("suppressions:read"))
    if _in_cidrs(request.client.host if request.client else None, ctx.settings.dashboard_allow_cidrs):
        return Viewer(reveal=False)
    if key is not None:
        raise Problem(403, "the API key lacks the scope dashboard:read", slug="forbidden")
    raise Problem(401, "the dashboard needs an API key with dashboard:read: open /dashboard?key=<key> once",
                  slug="unauthorized", headers={"WWW-Authenticate": "Bearer"})


def _params(request: Request) -> tuple[str, dict[str, str]]:
    q = request.query_params
    rng = q.get("range", "hour")
    return (rng if rng in ops_view.RANGES else "hour"), {f: q.get(f, "")[:255] for f in FILTERS if q.get(f)}


def _document(request: Request, who: Viewer) -> tuple[dict, list[dict]]:
    rng, filters = _params(request)
    with request.app.state.ctx.engine.connect() as conn:
        return ops_view.dashboard(conn, range_=rng, filters=filters, reveal=who.reveal), alerts.firing(conn)


@router.get("/dashboard")
def dashboard_page(request: Request) -> Response:
    key = request.query_params.get("key")
    if key:
        ctx = request.app.state.ctx
        found = ctx.keys.lookup(key)
        if found is None or not any(found.allows(s) for s in VIEW_SCOPES):
            raise Problem(401, "the API key is unknown, revoked or lacks dashboard:read", slug="unauthorized")
        rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "key"])
        out = RedirectResponse("/dashboard" + (f"?{rest}" if rest else ""), status_code=303)
        out.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/dashboard",
                       secure=ctx.settings.public_url.startswith("https:"))
        return out
    who = viewer(request)
    doc, firing = _document(request, who)
    try:
        every = min(3600, max(1, int(request.query_params.get("refresh", "30"))))
    except ValueError:
        every = 30
    return HTMLResponse(dashboard_html.page(doc, firing, every), headers={"Cache-Control": "no-store"})


@router.get("/dashboard/data")
def dashboard_data(request: Request) -> Response:
    who = viewer(request)
    doc, firing = _document(request, who)
    return json_response({"at": doc["at"], "html": dashboard_html.panels(doc, firing),
                          "charts": {"traffic": doc["traffic"], "growth": doc["suppressions"]["growth"]}},
                         headers={"Cache-Control": "no-store"})


@router.get("/dashboard/rule/{rule_id}")
def dashboard_rule(rule_id: str, request: Request) -> HTMLResponse:
    viewer(request)
    from bounceproc.domain.classify import load_classifier
    rules = load_classifier(request.app.state.ctx.settings.rules_file or None).rules
    found = next((dataclasses.asdict(r) for r in rules if r.id == rule_id), None)
    return HTMLResponse(dashboard_html.rule_page(found, rule_id), status_code=200 if found else 404)


@router.get("/dashboard/static/{name}")
def dashboard_static(name: str) -> Response:
    if name not in STATIC:       # a fixed list: no path from the request reaches the file system
        raise Problem(404, "no such file", slug="not-found")
    body = resources.files("bounceproc.entrypoints.http").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=3600"})
