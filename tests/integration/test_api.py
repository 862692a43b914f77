"""The /v1 API over HTTP against a real uvicorn server and PostgreSQL: every endpoint, auth,
bad input answered with problem documents and no change of state."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from bp_testing import subscribe_webhooks, wait_for
from test_api_support import admin_key, assert_problem, client, count, serve_api

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.storage.api_tables import idempotency_keys
from bounceproc.storage.tables import outbox, suppression_history, suppressions
from bounceproc.domain.events import Event, event_key


@pytest.fixture
def api(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url)
    subscribe_webhooks(settings)      # so that changes write outbox rows
    with serve_api(settings) as base:
        key = admin_key(settings)
        with client(base, key) as c:
            yield settings, base, c


def test_auth_is_required_and_scoped(api):
    settings, base, c = api
    with client(base) as anon:
        assert_problem(anon.get("/v1/suppressions"), 401)
        assert anon.get("/v1/suppressions").headers["www-authenticate"].startswith("Bearer")
    with client(base, "bp_nope_nope") as bad:
        assert_problem(bad.get("/v1/suppressions"), 401)
    reader = admin_key(settings, ["suppressions:read"])
    with client(base, reader) as r:
        assert r.get("/v1/suppressions").status_code == 200
        assert_problem(r.put("/v1/suppressions/a@example.com", json={}), 403)
        assert_problem(r.get("/v1/webhook-endpoints"), 403)
    writer = admin_key(settings, ["suppressions:write"])
    with client(base, writer) as w:
        assert w.put("/v1/suppressions/a@example.com", json={}).status_code == 201
        assert w.get("/v1/suppressions/a@example.com").status_code == 200   # write implies read


def test_put_get_list_delete_with_history(api):
    settings, _, c = api
    r = c.put("/v1/suppressions/ Alice@EXAMPLE.com ", json={"scope": "list:news", "note": "asked by phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["address"] == "alice@example.com" and body["scope"] == {"type": "list", "id": "news"}
    assert body["reason"] == "manual" and body["origin"] == "api" and body["expires_at"] is None
    assert c.put("/v1/suppressions/Alice@example.com", json={"scope": "list:news"}).status_code == 200
    assert_problem(c.get("/v1/suppressions/Alice@example.com"), 404)          # global: not suppressed
    got = c.get("/v1/suppressions/Alice@example.com", params={"scope": "list:news"}).json()
    assert [h["action"] for h in got["history"]] == ["updated", "created"]
    assert got["history"][0]["actor"].startswith("api:")

    assert_problem(c.delete("/v1/suppressions/Alice@example.com", params={"scope": "list:news"}), 422)  # no reason
    r = c.delete("/v1/suppressions/Alice@example.com", params={"scope": "list:news", "reason": "customer re-subscribed"})
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert_problem(c.get("/v1/suppressions/Alice@example.com", params={"scope": "list:news"}), 404)
    assert_problem(c.delete("/v1/suppressions/Alice@example.com", params={"scope": "list:news", "reason": "x"}), 404)
    types = _outbox_types(settings)
    assert types.count("recipient.suppressed") == 1 and types.count("recipient.reactivated") == 1
    with bootstrap.engine(settings).connect() as conn:
        why = conn.execute(suppression_history.select().where(suppression_history.c.action == "deleted")).mappings().one()
    assert why["why"] == "customer re-subscribed"


def _outbox_types(settings) -> list[str]:
    with bootstrap.engine(settings).connect() as conn:
        return [r.type for r in conn.execute(outbox.select())]


def test_complaint_needs_force_to_lift(api):
    _, _, c = api
    assert c.put("/v1/suppressions/c@example.com", json={"reason": "complaint"}).status_code == 201
    assert_problem(c.delete("/v1/suppressions/c@example.com", params={"reason": "oops"}), 409)
    assert c.delete("/v1/suppressions/c@example.com", params={"reason": "oops", "force": "true"}).status_code == 200


def test_list_filters_and_cursor_pagination(api):
    _, _, c = api
    for i in range(25):
        reason = "complaint" if i % 5 == 0 else "manual"
        assert c.put(f"/v1/suppressions/user{i:02d}@example.com", json={"reason": reason}).status_code == 201
    seen, cursor = [], None
    for _ in range(10):
        page = c.get("/v1/suppressions", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [s["address"] for s in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"user{i:02d}@example.com" for i in range(25)]
    complaints = c.get("/v1/suppressions", params={"reason": "complaint"}).json()["data"]
    assert len(complaints) == 5
    assert len(c.get("/v1/suppressions", params={"q": "user1"}).json()["data"]) == 10
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert c.get("/v1/suppressions", params={"created_after": future}).json()["data"] == []
    assert_problem(c.get("/v1/suppressions", params={"cursor": "garbage!"}), 400)
    assert_problem(c.get("/v1/suppressions", params={"cursor": "WzEsMiwzXQ"}), 400)   # [1,2,3]
    assert_problem(c.get("/v1/suppressions", params={"limit": 5000}), 422)
    assert_problem(c.get("/v1/suppressions", params={"reason": "bogus"}), 422)


def test_bulk_check_scopes_and_limits(api):
    settings, _, c = api
    c.put("/v1/suppressions/g@example.com", json={})
    c.put("/v1/suppressions/l@example.com", json={"scope": "list:news"})
    c.put("/v1/suppressions/old@example.com",
          json={"expires_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()})
    addrs = ["g@example.com", "l@example.com", "free@example.com", "old@example.com"]
    res = c.post("/v1/suppressions/check", json={"addresses": addrs, "scope": "list:news"}).json()["results"]
    assert [r["suppressed"] for r in res] == [True, True, False, False]
    assert res[0]["scope"] == {"type": "global"} and res[1]["scope"] == {"type": "list", "id": "news"}
    res = c.post("/v1/suppressions/check", json={"addresses": addrs}).json()["results"]
    assert [r["suppressed"] for r in res] == [True, False, False, False]
    many = [f"n{i}@example.com" for i in range(1000)]
    assert len(c.post("/v1/suppressions/check", json={"addresses": many}).json()["results"]) == 1000
    assert_problem(c.post("/v1/suppressions/check", json={"addresses": many + ["x@example.com"]}), 422)
    body = assert_problem(c.post("/v1/suppressions/check", json={"addresses": ["ok@example.com", "not an address"]}), 422)
    assert body["errors"][0]["field"] == "addresses.1"


def test_bad_input_is_a_problem_and_changes_nothing(api):
    settings, _, c = api
    before = (count(settings, suppressions), count(settings, suppression_history), count(settings, outbox))
    for bad in ("not-an-address", "a@b", "a b@example.com", "@example.com", "a@[", "a@[192.0.2.999]"):
        assert_problem(c.put(f"/v1/suppressions/{bad}", json={}), 422)
    assert_problem(c.put("/v1/suppressions/a@example.com", json={"scope": "team:x"}), 422)
    assert_problem(c.put("/v1/suppressions/a@example.com", json={"reason": "because"}), 422)
    assert_problem(c.put("/v1/suppressions/a@example.com", json={"colour": "red"}), 422)     # unknown field
    assert_problem(c.put("/v1/suppressions/a@example.com", content=b"{not json",
                         headers={"content-type": "application/json"}), 400)
    big = {"addresses": ["a@example.com"], "scope": "global", "pad": "x" * (2 * 1024 * 1024)}
    assert_problem(c.post("/v1/suppressions/check", content=json.dumps(big).encode(),
                          headers={"content-type": "application/json"}), 413)
    assert_problem(c.post("/v1/suppressions/batch", json={"items": []}), 422)
    assert_problem(c.put("/v1/suppressions/a@example.com", json={"note": "nul\x00here"}), 422)
    assert_problem(c.get("/v1/blocks", params={"vmta": "x\x00"}), 400)
    assert_problem(c.get("/v1/nowhere"), 404)
    assert_problem(c.patch("/v1/suppressions/a@example.com", json={}), 405)
    after = (count(settings, suppressions), count(settings, suppression_history), count(settings, outbox))
    assert before == after


def test_batch_with_idempotency_key(api):
    settings, _, c = api
    items = {"items": [{"action": "add", "address": "b1@example.com"},
                       {"action": "add", "address": "b2@example.com", "scope": "domain:Sender.Example.net"},
                       {"action": "remove", "address": "nobody@example.com"},
                       {"action": "add", "address": "broken"}]}
    r1 = c.post("/v1/suppressions/batch", json=items, headers={"Idempotency-Key": "req-1"})
    assert [x["result"] for x in r1.json()["results"]] == ["suppressed", "suppressed", "unchanged", "failed"]
    assert r1.json()["results"][1]["scope"] == "domain:sender.example.net"
    n = count(settings, suppression_history)
    r2 = c.post("/v1/suppressions/batch", json=items, headers={"Idempotency-Key": "req-1"})
    assert r2.json() == r1.json() and r2.headers.get("idempotent-replayed") == "true"
    assert count(settings, suppression_history) == n
    assert_problem(c.post("/v1/suppressions/batch", json={"items": items["items"][:1]},
                          headers={"Idempotency-Key": "req-1"}), 422)
    assert count(settings, idempotency_keys) == 1
    r3 = c.post("/v1/suppressions/batch", json={"items": [{"action": "remove", "address": "b1@example.com",
                                                           "note": "bounced by mistake"}]})
    assert r3.json()["results"][0]["result"] == "removed"


def _wait_job(c, job_id: str) -> dict:
    def finished():
        job = c.get(f"/v1/imports/{job_id}").json()
        return job if job["state"] in ("done", "failed") else None
    return wait_for(finished, 120, f"import job {job_id} to finish")


def test_csv_import_job_and_streamed_export(api):
    _, _, c = api
    csv_text = ("address,reason,scope\n" + "".join(f"imp{i}@example.com,,\n" for i in range(1200))
                + "broken-line,,\nx@example.com,nonsense,\ny@example.com,complaint,list:promo\n")
    r = c.post("/v1/imports", content=csv_text.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running", "done")
    job = _wait_job(c, r.json()["id"])
    assert (job["state"], job["total"], job["changed"], job["failed"]) == ("done", 1203, 1201, 2)
    assert {e["line"] for e in job["errors"]} == {1202, 1203}
    assert c.get("/v1/suppressions/imp5@example.com").json()["origin"] == "api"   # the CLI's: "operator"
    r = c.post("/v1/imports", params={"action": "remove"},
               files={"file": ("rm.csv", b"address\nimp0@example.com\nimp1@example.com\n", "text/csv")})
    job = _wait_job(c, r.json()["id"])
    assert (job["changed"], job["action"]) == (2, "remove")
    assert_problem(c.post("/v1/imports", content=b"email\nx@example.com\n", headers={"content-type": "text/csv"}), 422)
    assert_problem(c.post("/v1/imports", json={"a": 1}), 415)
    assert_problem(c.get("/v1/imports/imp_nope"), 404)
    with c.stream("GET", "/v1/suppressions/export.csv") as resp:
        assert resp.headers["content-type"].startswith("text/csv")
        lines = b"".join(resp.iter_bytes()).decode().splitlines()
    assert lines[0].startswith("address,scope,reason")
    assert len(lines) == 1 + 1199 and any(l.startswith("y@example.com,list:promo,complaint") for l in lines)
    promo = c.get("/v1/suppressions/export.csv", params={"scope": "list:promo"}).text.splitlines()
    assert len(promo) == 2


def test_recipient_events_and_block_counters(api):
    settings, _, c = api
    t0 = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    evs = [Event(event_key=event_key("t", i), type=t, recipient="eve@example.com", occurred_at=t0 + timedelta(hours=i),
                 source="dsn", status=st, reply_code="550", diagnostic=d, reason=r, category=cat, hard=h, rule=rule)
           for i, (t, st, d, r, cat, h, rule) in enumerate([
               ("deferred", "4.2.2", "452 4.2.2 mailbox full", "mailboxfull", "quota-issues", False, "quota"),
               ("bounced", "5.1.1", "550 5.1.1 user unknown", "userunknown", "bad-mailbox", True, "dsn.user_unknown"),
               ("delivered", "2.0.0", "ok", "", "", False, "")])]
    evs.append(Event(event_key=event_key("blk"), type="bounced", recipient="zed@blocky.example", occurred_at=t0,
                     source="acct", status="5.7.1", reply_code="554", diagnostic="554 blocked by reputation",
                     reason="blocked", category="policy-related", hard=False, rule="blocked", vmta="vmta1",
                     source_ip="192.0.2.7"))
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, evs, settings)
    page = c.get("/v1/recipients/eve@example.com/events", params={"limit": 1}).json()
    # newest first; deliveries are not part of a recipient's history (the index leaves them out)
    assert [e["type"] for e in page["data"]] == ["bounced"] and page["next_cursor"]
    assert page["suppression_changes"] and page["suppression_changes"][0]["action"] == "created"
    page2 = c.get("/v1/recipients/eve@example.com/events", params={"cursor": page["next_cursor"]}).json()
    assert [e["type"] for e in page2["data"]] == ["deferred"] and page2["next_cursor"] is None
    sup = c.get("/v1/suppressions/eve@example.com").json()
    assert sup["reason"] == "hard_bounce" and sup["evidence"]["status"] == "5.1.1"
    assert sup["source"]["event_id"] == event_key("t", 1)
    assert_problem(c.get("/v1/suppressions/zed@blocky.example"), 404)     # a block never suppresses
    blocks = c.get("/v1/blocks", params={"recipient_domain": "blocky.example"}).json()["data"]
    assert blocks and blocks[0]["count"] == 1 and blocks[0]["vmta"] == "vmta1"


def test_openapi_in_repo_matches_the_app(api):
    from bounceproc.entrypoints.http.app import OPENAPI_PATH, openapi_document
    _, _, c = api
    served = c.get("/openapi.json").json()
    kept = json.loads(OPENAPI_PATH.read_text())
    assert served == kept, "bounceproc/openapi.json is stale: run python -m bounceproc.entrypoints.http.app"
    assert OPENAPI_PATH.read_text() == openapi_document()


def test_fast_path_answers_like_the_route(api):
    _, _, c = api
    c.put("/v1/suppressions/fp@example.com", json={"scope": "list:a", "note": "n"})
    for q in ("?scope=list:a", "?scope=list:a&history=false"):
        fast = c.get(f"/v1/suppressions/fp@example.com{q}")
        routed = c.get(f"/v1/suppressions/fp@example.com{q}&history=1".replace("history=false&history=1", "history=0"))
        assert fast.status_code == routed.status_code == 200
        assert fast.json() == routed.json()
    fast, routed = c.get("/v1/suppressions/fp@example.com"), c.get("/v1/suppressions/fp@example.com?history=1")
    assert fast.status_code == routed.status_code == 404 and fast.json() == routed.json()
    assert fast.headers["content-type"] == routed.headers["content-type"]


def test_embedded_sqlite_api(sqlite_url, make_settings):
    settings = make_settings(database_url=sqlite_url)
    with serve_api(settings) as base, client(base, admin_key(settings)) as c:
        assert c.put("/v1/suppressions/s@example.com", json={"scope": "list:x"}).status_code == 201
        assert c.get("/v1/suppressions/s@example.com", params={"scope": "list:x"}).json()["history"]
        res = c.post("/v1/suppressions/check", json={"addresses": ["s@example.com", "t@example.com"],
                                                     "scope": "list:x"}).json()["results"]
        assert [r["suppressed"] for r in res] == [True, False]
        assert len(c.get("/v1/suppressions").json()["data"]) == 1
        assert c.delete("/v1/suppressions/s@example.com", params={"scope": "list:x", "reason": "r"}).status_code == 200
        assert_problem(c.get("/v1/suppressions/s@example.com", params={"scope": "list:x"}), 404)


def test_rate_limit_headers_and_429(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url, api_rate_limit_per_minute=5)
    with serve_api(settings) as base, client(base, admin_key(settings)) as c:
        codes = []
        for _ in range(6):
            r = c.get("/v1/suppressions/rl@example.com")       # the fast path counts too
            codes.append(r.status_code)
        assert codes == [404] * 5 + [429]
        assert r.headers["retry-after"] and r.headers["x-ratelimit-remaining"] == "0"
        assert r.headers["content-type"].startswith("application/problem+json")
    with serve_api(make_settings(database_url=fresh_pg_url)) as base, client(base, admin_key(settings)) as c:
        r = c.get("/v1/suppressions")
        assert int(r.headers["x-ratelimit-limit"]) == 120000
        assert int(r.headers["x-ratelimit-remaining"]) == 119999 and 1 <= int(r.headers["x-ratelimit-reset"]) <= 60


def test_apikey_cli_create_list_revoke(fresh_pg_url, make_settings):
    import os
    import subprocess
    import sys

    from bounceproc.storage.api_keys import KeyStore
    settings = make_settings(database_url=fresh_pg_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(BOUNCEPROC_DATABASE_URL=settings.db_url, BOUNCEPROC_DATA_DIR=settings.data_dir)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    made = cli("apikey", "create", "--scope", "suppressions:read", "--scope", "webhooks:admin", "--name", "crm")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    assert len(made.stdout.strip().splitlines()) == 1            # the key alone on stdout
    listed = cli("apikey", "list").stdout
    assert key_id in listed and "suppressions:read webhooks:admin" in listed and key not in listed
    found = KeyStore(bootstrap.engine(settings)).lookup(key)
    assert found and found.allows("webhooks:admin") and not found.allows("suppressions:write")
    assert cli("apikey", "revoke", key_id).returncode == 0
    assert cli("apikey", "revoke", key_id).returncode == 1
    assert KeyStore(bootstrap.engine(settings)).lookup(key) is None
    assert cli("apikey", "create", "--scope", "everything").returncode == 2
    bootstrap.engine(settings).dispose()


def test_metrics_and_dashboard_show_counts_from_the_database(api):
    settings, base, c = api
    assert c.put("/v1/suppressions/metric@example.com", json={}).status_code == 201
    with client(base) as anon:
        m = anon.get("/metrics")
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
        assert 'bounceproc_suppressions{reason="manual"} 1.0' in m.text
        assert "bounceproc_intake_pending 0.0" in m.text
        assert anon.get("/dashboard").status_code == 401        # behind a key (tests/e2e/test_dashboard_browser.py)
        assert "metric@example.com" not in m.text                # counts only, no addresses


ODD_BUT_STORED = ["a..b@example.com", "a@b..com", "a@[192.0.2.1]", "a@-bad-.com", "a(comment)@example.com",
                  "a;b@example.com", "user@exa_mple.com"]


def test_every_key_the_parsers_store_can_be_read_and_lifted(api):
    """Issue 13, item 7: one validity rule. Hard bounces in the acct stream for these addresses are
    suppressed, and the API (its fast path included) reads, checks and lifts each by the same
    spelling; `a@[`, which no entry point accepts, is quarantined and refused."""
    import csv
    import io
    from urllib.parse import quote

    from bounceproc.domain.parse.acct import parse_acct_batch
    settings, _, c = api
    out = io.StringIO()
    rows = [["b", "2026-12-01 10:00:00+0000", rcpt, "5.1.1 (bad destination mailbox address)",
             "smtp;550 5.1.1 <x>: Recipient address rejected: User unknown", "bad-mailbox"]
            for rcpt in ODD_BUT_STORED + ["a@["]]
    csv.writer(out, lineterminator="\n").writerows(rows)
    evs, bad = parse_acct_batch("type,timeLogged,rcpt,dsnStatus,dsnDiag,bounceCat", out.getvalue().encode())
    assert sorted(e.recipient for e in evs) == sorted(ODD_BUT_STORED)
    assert len(bad) == 1 and "a@[" in bad[0].raw
    with bootstrap.engine(settings).begin() as conn:
        assert service.record_events(conn, evs, settings).suppressed == len(ODD_BUT_STORED)
    assert_problem(c.get(f"/v1/suppressions/{quote('a@[', safe='@')}"), 422)
    res = c.post("/v1/suppressions/check", json={"addresses": ODD_BUT_STORED}).json()["results"]
    assert [r["suppressed"] for r in res] == [True] * len(ODD_BUT_STORED)
    for address in ODD_BUT_STORED:
        path = f"/v1/suppressions/{quote(address, safe='@')}"
        got = c.get(path)
        assert got.status_code == 200 and got.json()["address"] == address, (address, got.text)
        assert c.delete(path, params={"reason": "fixed the typo"}).status_code == 200, address
        assert_problem(c.get(path), 404)
        assert c.put(path, json={}).status_code == 201           # and can be suppressed by hand
