"""The dashboard in a real browser: `bounceproc serve` (embedded mode, PostgreSQL) fed through the
real intake (an accounting stream into `bounceproc pipe`, a DSN and an ARF report over SMTP to the
sink, a Postmark bounce webhook, a one-click unsubscribe), then headless Chromium loads /dashboard.

Checked: access control (no key, a key without the scope, the ?key= login cookie, the CIDR rule),
that no address leaks to a viewer whose key may not read suppressions, that the panels show the
numbers of what was sent, that the page refreshes its panels without a reload (Chromium's virtual
time runs the page's timer; no sleeps), and that the page logs nothing to the console.
Screenshots go to artefacts/dashboard/ (kept by CI as artefacts).
Chromium is the Debian `chromium` package; without it the browser test is skipped, unless CI is set.
"""
from __future__ import annotations

import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.domain.unsubscribe_token import make_token
from bounceproc.storage.tables import intake
from bp_testing import ROOT, bin_path, free_port, settings_env

FIXTURES = ROOT / "fixtures"
ARTEFACTS = ROOT / "artefacts" / "dashboard"
HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
          "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
FBL = "fbl@example.net"
POSTMARK_PATH = "pm-path-0123456789"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def acct_stream(now: datetime) -> str:
    """Deliveries to Gmail (6), Microsoft (3) and example.com (1), a hard bounce at Gmail, a soft
    bounce at Yahoo, a deferral and a Spamhaus block at Microsoft: all in the current hour."""
    t = now.strftime("%Y-%m-%d %H:%M:%S+0000")
    rows = []

    def rec(kind, rcpt, status="", diag="", cat="", action="relayed"):
        orig = f"b-{rcpt.replace('@', '=')}@bounce.example.net"
        rows.append(f'{kind},{t},{t},{orig},{rcpt},,{action},{status},"{diag}",mx.example (192.0.2.10),{cat},smtp,'
                    f'app01 (192.0.2.5),smtp,198.51.100.7,192.0.2.10,,1000,vmta1,job42,,q,pool1')
    for i in range(6):
        rec("d", f"g{i}@gmail.com", "2.0.0 (success)", "smtp;250 2.0.0 OK")
    for i in range(3):
        rec("d", f"m{i}@outlook.com", "2.0.0 (success)", "smtp;250 2.0.0 OK")
    rec("d", "henry@example.com", "2.0.0 (success)", "smtp;250 2.0.0 OK")
    rec("b", "gone@gmail.com", "5.1.1 (bad destination mailbox address)",
        "smtp;550 5.1.1 <gone@gmail.com>: Recipient address rejected: User unknown", "bad-mailbox", "failed")
    rec("b", "full@yahoo.com", "5.2.2 (mailbox full)", "smtp;552 5.2.2 <full@yahoo.com> Mailbox full",
        "quota-issues", "failed")
    rec("t", "later@outlook.com", "4.4.1 (no answer from host)", "smtp;421 4.4.1 try again later", "", "delayed")
    rec("f", "g0@gmail.com", action="")           # a feedback-loop complaint in the acct stream
    rec("b", "blk@outlook.com", "5.7.1 (delivery not authorized)",
        "smtp;550 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org",
        "spam-related", "failed")
    return HEADER + "\r\n" + "\r\n".join(rows) + "\r\n"


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(url: str, screenshot: Path | None = None, budget_ms: int = 5000) -> tuple[str, list[str]]:
    """Load `url` in a fresh headless Chromium profile; (the DOM after `budget_ms` of virtual time,
    the console lines). Virtual time runs the page's timers without waiting for them."""
    with tempfile.TemporaryDirectory(prefix="bp-chromium-") as profile:
        args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                f"--virtual-time-budget={budget_ms}", "--window-size=1400,2600"]
        args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        p = subprocess.run([*args, url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    return p.stdout, console


@pytest.fixture
def served(make_settings, fresh_pg_url):
    """`bounceproc serve` on loopback (embedded: it processes the intake itself), PostgreSQL."""
    settings = make_settings(database_url=fresh_pg_url)
    api_port, smtp_port = free_port(), free_port()
    env = settings_env(settings, BOUNCEPROC_SWEEP_AFTER_SECONDS="1", BOUNCEPROC_DASHBOARD_ALLOW_CIDRS="192.0.2.0/24",
                       BOUNCEPROC_ALERT_COMPLAINT_MIN_DELIVERED="1",
                       BOUNCEPROC_ESP_POSTMARK_PATH_SECRET=POSTMARK_PATH)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    log = open(Path(settings.data_dir) / "serve.log", "wb")
    serve = subprocess.Popen([bin_path("bounceproc"), "serve", "--api", f"127.0.0.1:{api_port}",
                              "--smtp", f"127.0.0.1:{smtp_port}", "--accept", "bounce.example.net",
                              "--accept", FBL], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{api_port}"
    try:
        def up():
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(up, 60, "bounceproc serve to answer")

        def key(*scopes):
            args = [a for s in scopes for a in ("--scope", s)]
            return subprocess.run([bin_path("bounceproc"), "apikey", "create", *args], env=env, capture_output=True,
                                  text=True, timeout=60, check=True).stdout.strip().splitlines()[-1]
        yield settings, env, base, smtp_port, key
    finally:
        serve.terminate()
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(10)
        log.close()
        bootstrap.engine(settings).dispose()


def feed(settings, env, base, smtp_port) -> None:
    now = datetime.now(timezone.utc)
    pipe = subprocess.run([bin_path("bounceproc"), "pipe", "-q"], input=acct_stream(now).encode(), env=env,
                          capture_output=True, timeout=120)
    assert pipe.returncode == 0, pipe.stderr.decode()
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        smtp.sendmail("<>", ["bounces@bounce.example.net"], (FIXTURES / "dsn" / "postfix-user-unknown.eml").read_bytes())
        smtp.sendmail("<>", [FBL], (FIXTURES / "arf" / "abuse-report.eml").read_bytes())
    token = make_token(settings.secret(), "leaver@gmail.com", "news", now + timedelta(days=30))
    r = httpx.post(f"{base}/u/{token}", content=b"List-Unsubscribe=One-Click",
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 200, r.text
    bounce = {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "TypeCode": 1, "MessageID": "pm-1",
              "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
              "Email": "pm-gone@example.org", "BouncedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    r = httpx.post(f"{base}/v1/ingest/postmark/{POSTMARK_PATH}", json=bounce, timeout=10)
    assert r.status_code == 200, r.text
    eng = bootstrap.engine(settings)

    def processed():
        with eng.connect() as conn:
            return conn.execute(select(func.count()).select_from(intake).where(intake.c.state == "done")).scalar() >= 3 \
                and not conn.execute(select(func.count()).select_from(intake).where(intake.c.state == "pending")).scalar()
    wait_for(processed, 90, "the intake to be processed")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_access_control_and_no_address_without_the_right_key(served):
    settings, env, base, smtp_port, key = served
    feed(settings, env, base, smtp_port)
    viewer, reader, other = key("dashboard:read"), key("suppressions:read"), key("webhooks:admin")
    with httpx.Client(base_url=base, timeout=20) as anon:
        assert anon.get("/dashboard").status_code == 401
        assert anon.get("/dashboard/data").status_code == 401
        assert anon.get("/dashboard/rule/x").status_code == 401
        assert anon.get("/dashboard", headers={"Authorization": f"Bearer {other}"}).status_code == 403
        assert anon.get("/dashboard?key=bp_nope_nope").status_code == 401
        login = anon.get(f"/dashboard?key={viewer}&range=day")
        assert login.status_code == 303 and login.headers["location"] == "/dashboard?range=day"
        assert "httponly" in login.headers["set-cookie"].lower() and "samesite=strict" in login.headers["set-cookie"].lower()
        page = anon.get("/dashboard")             # the cookie the login set
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        data = anon.get("/dashboard/data?range=month")
        assert data.status_code == 200
        for body in (page.text, data.text):
            assert "gone@gmail.com" not in body and "henry@example.com" not in body and "alice@example.com" not in body
            assert "leaver@gmail.com" not in body
            assert "•••@gmail.com" in body or "\\u2022\\u2022\\u2022@gmail.com" in body
        # uPlot is served from the package, not a CDN
        assert anon.get("/dashboard/static/uPlot.iife.min.js").status_code == 200
        assert anon.get("/dashboard/static/..%2Fapp.py").status_code == 404
        assert "http" not in re.sub(r"https?://[^'\"]*127\.0\.0\.1", "", " ".join(re.findall(r"(?:src|href)='([^']*)'", page.text)))
    with httpx.Client(base_url=base, timeout=20, headers={"Authorization": f"Bearer {reader}"}) as c:
        body = c.get("/dashboard").text
        assert "gone@gmail.com" in body and "leaver@gmail.com" in body      # this key may read suppressions


def test_panels_render_with_the_intake_numbers_and_refresh_in_chromium(served):
    if not chromium():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    settings, env, base, smtp_port, key = served
    feed(settings, env, base, smtp_port)
    viewer = key("dashboard:read")
    dom, console = browse(f"{base}/dashboard?key={viewer}&refresh=1", budget_ms=6000)
    assert console == [], console
    assert "data-refreshed=" in dom, "the panels were not refreshed by the page's script"
    assert int(re.search(r'data-rendered="(\d+)"', dom).group(1)) >= 2
    assert dom.count("class=\"uplot") >= 6                      # five traffic charts and the growth chart
    text = text_of(dom)
    # provider, delivered, hard, soft (the Spamhaus block is one), deferred, complaints
    assert re.search(r"Gmail 6 1 0 0 1 ", text), text[:3000]
    assert re.search(r"Microsoft 3 0 1 1 0 ", text), text[:3000]
    assert re.search(r"Yahoo/AOL 0 0 1 0 0 ", text), text[:3000]
    assert re.search(r"Gmail 1 6 16\.667 %", text), text[:3000]            # complaint rate per provider
    assert "zen.spamhaus.org" in text and "text-user-unknown" in text
    assert "hard_bounce" in text and "unsubscribe" in text and "complaint" in text
    # received by source: records and items in the last hour, then the last day (the pipe's one
    # batch of 15 lines, the sink's two messages with three events, the Postmark POST; the silent
    # sources at zero)
    assert "acct 15 1 15 1 sink 3 2 3 2 mailbox 0 0 0 0 ses 0 0 0 0 sendgrid 0 0 0 0 mailgun 0 0 0 0 " \
           "postmark 1 1 1 1 " in text, text[text.find("Received by source"):][:600]
    assert "gone@gmail.com" not in dom and "leaver@gmail.com" not in dom and "pm-gone@example.org" not in dom
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "dashboard.png"
    _, console = browse(f"{base}/dashboard?key={viewer}", screenshot=shot, budget_ms=3000)
    assert console == [] and shot.stat().st_size > 10_000
