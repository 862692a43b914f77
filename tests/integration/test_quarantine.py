"""`bounceproc quarantine list|show|replay|purge` and /v1/quarantine (issue 14, item 6), on the
embedded default (SQLite, in-process), through the real CLI and a real uvicorn server.

Replay is shown resolving a record an earlier version refused (a quarantine entry whose intake
batch was pruned: it is re-read under its stored header) and leaving alone records that are still
bad, message entries included; repeating it changes nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select
from test_api_support import serve_api

from bounceproc import bootstrap
from bounceproc.storage.api_keys import create_key
from bounceproc.storage.tables import quarantine, suppressions
from bp_testing import settings_env

ROOT = Path(__file__).resolve().parents[2]
HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
          "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
GOOD = ("b,2024-03-01 10:00:04+0000,2024-03-01 10:00:00+0000,bounces@sender.example.net,gone@example.org,,failed,"
        "5.1.1 (bad destination mailbox address),smtp;550 5.1.1 user unknown,mx.example.org (192.0.2.20),"
        "bad-mailbox,smtp,,smtp,198.51.100.5,192.0.2.20,,2931,vmta-a,job-1,,example.org/vmta-a,pool-1")


def _cli(settings, *args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "bounceproc", *args], env=settings_env(settings), input=stdin,
                       capture_output=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r
    return r


def _count(settings) -> int:
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(func.count()).select_from(quarantine)).scalar_one()


def test_quarantine_commands_list_show_replay_purge(make_settings):
    settings = make_settings()
    piped = _cli(settings, "pipe", stdin=(ROOT / "fixtures/acct/pmta-bad-lines.csv").read_bytes())
    bad = _count(settings)
    assert bad >= 5
    auto = (ROOT / "fixtures/autoreply/out-of-office.eml").read_bytes()
    from bounceproc.entrypoints.dispatch import process_now
    bootstrap.submit_intake(settings, "message", auto, inline=process_now(settings), origin="sink:test",
                            meta={"rcpt_tos": ["b@example.net"]})
    assert _count(settings) == bad + 1
    with bootstrap.engine(settings).begin() as conn:    # refused by an earlier version; batch since pruned
        conn.execute(insert(quarantine), {"intake_id": 999999, "origin": "pipe", "line_no": 7, "header": HEADER,
                                          "reason": "old parser: bad time", "raw": GOOD,
                                          "created_at": datetime.now(timezone.utc)})

    listed = _cli(settings, "quarantine", "list").stdout.decode().splitlines()
    assert listed[0] == "id\tcreated_at\torigin\tline\treason" and len(listed) == bad + 3
    assert any("no event: an auto-reply" in line for line in listed)
    rows = [json.loads(line) for line in _cli(settings, "quarantine", "list", "--json").stdout.decode().splitlines()]
    message_id = next(r["id"] for r in rows if r["line_no"] == 0)
    shown = _cli(settings, "quarantine", "show", str(message_id)).stdout.decode()
    assert "reason: no event: an auto-reply" in shown and "Subject:" in shown    # the whole message

    out = _cli(settings, "quarantine", "replay").stdout.decode()
    assert out.startswith(f"replayed {bad + 2}: 1 now give events (1 new events stored), {bad + 1} still quarantined")
    with bootstrap.engine(settings).connect() as conn:
        assert conn.execute(select(suppressions.c.reason).where(suppressions.c.address == "gone@example.org")
                            ).scalar_one() == "hard_bounce"
    again = json.loads(_cli(settings, "quarantine", "replay", "--json").stdout)
    assert again == {"replayed": bad + 1, "resolved": 0, "still_quarantined": bad + 1, "events_stored": 0,
                     "skipped": []}
    assert _count(settings) == bad + 1

    assert _cli(settings, "quarantine", "purge", str(message_id)).stdout.decode().strip() == "purged 1 quarantine entries"
    assert _cli(settings, "quarantine", "purge", "--all").stdout.decode().strip() == f"purged {bad} quarantine entries"
    assert _count(settings) == 0
    assert piped.stdout == b""
    assert piped.stderr.decode().splitlines()[-1] == (
        "bounceproc pipe: 7 records: 1 stored, 0 duplicates skipped, 6 quarantined (wrong column count: 2, "
        "'b' record without a recipient: 1, bad timestamp 'yesterday at noon': 1, not an email address: 1, "
        "unknown record type 'zz': 1)")
    imported = _cli(settings, "import", str(ROOT / "fixtures/acct/pmta-bad-lines.csv"))
    assert imported.stderr.decode().splitlines()[-1].startswith(
        "bounceproc import: 7 records: 0 stored, 1 duplicates skipped, 6 quarantined")


def test_quarantine_api_for_admin_keys(make_settings):
    settings = make_settings()
    _cli(settings, "pipe", stdin=(ROOT / "fixtures/acct/pmta-bad-lines.csv").read_bytes())
    with bootstrap.engine(settings).begin() as conn:
        admin = create_key(conn, ["admin"], "ops")
        reader = create_key(conn, ["suppressions:read"], "crm")
    with serve_api(settings) as base, httpx.Client(base_url=base, trust_env=False, timeout=30) as c:
        assert c.get("/v1/quarantine", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
        auth = {"Authorization": f"Bearer {admin}"}
        page = c.get("/v1/quarantine", params={"limit": 2}, headers=auth).json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = c.get("/v1/quarantine", params={"cursor": page["next_cursor"]}, headers=auth).json()
        assert rest["items"] and rest["items"][0]["id"] > page["items"][-1]["id"]
        one = c.get(f"/v1/quarantine/{page['items'][0]['id']}", headers=auth).json()
        assert one["kind"] == "acct" and one["raw"] and one["reason"]
        assert c.get("/v1/quarantine/999999", headers=auth).status_code == 404
        replayed = c.post("/v1/quarantine/replay", json={"ids": [one["id"]]}, headers=auth).json()
        assert replayed["replayed"] == 1 and replayed["still_quarantined"] == 1
        assert c.post("/v1/quarantine/replay", json={"bogus": 1}, headers=auth).status_code == 422
        purged = c.delete("/v1/quarantine", params={"before": "2999-01-01T00:00:00Z"}, headers=auth).json()
        assert purged["purged"] == len(page["items"]) + len(rest["items"])


def test_importing_a_file_again_quarantines_its_bad_lines_once(make_settings, tmp_path):
    settings = make_settings()
    bad = tmp_path / "acct.csv"
    bad.write_bytes(f"{HEADER}\n{GOOD}\nb,not a record\n".encode())
    _cli(settings, "import", str(bad))
    first = _cli(settings, "quarantine", "list", "--json").stdout.decode().splitlines()
    again = _cli(settings, "import", "--restart", str(bad))     # a new intake row, the same lines
    # the bad line was quarantined before: a duplicate now, like the good one
    assert again.stderr.decode().splitlines()[-1] == (
        "bounceproc import: 2 records: 0 stored, 2 duplicates skipped, 0 quarantined")
    assert _cli(settings, "quarantine", "list", "--json").stdout.decode().splitlines() == first
    assert len(first) == 1 and json.loads(first[0])["line_no"] == 3
    _cli(settings, "pipe", stdin=bad.read_bytes())      # another source: its own entry, also only once
    _cli(settings, "pipe", stdin=bad.read_bytes())
    assert _count(settings) == 2
