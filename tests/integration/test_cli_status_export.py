"""`bounceproc show status|top|queues` and `bounceproc suppressions export|add|remove|import`, run as real commands."""
from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import datetime, timezone

import pytest

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.domain.events import Event, event_key
from bp_testing import bin_path, settings_env


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, make_settings):
    fixture = "sqlite_url" if request.param == "sqlite" else "fresh_pg_url"
    return make_settings(database_url=request.getfixturevalue(fixture))


def run(settings, *args, check=True):
    p = subprocess.run([bin_path("bounceproc"), *args], env=settings_env(settings), capture_output=True,
                       text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def seed(settings):
    now = datetime.now(timezone.utc)
    evs = [Event(event_key("cli", i), t, rcpt, now, "acct", reason=r, hard=h, category=c, rule="test-rule",
                 status=st, vmta="vmta1", source_ip="192.0.2.7")
           for i, (t, rcpt, r, h, c, st) in enumerate([
               ("delivered", "ok@example.com", "", False, "", "2.0.0"),
               ("bounced", "gone@example.com", "userunknown", True, "bad-mailbox", "5.1.1"),
               ("bounced", "b@example.net", "blocked", False, "spam-related", "5.7.1")])]
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, evs, settings)


def test_show_status_counts_events_suppressions_and_backlog(settings):
    seed(settings)
    rep = json.loads(run(settings, "show", "status", "--json").stdout)
    assert rep["events"]["last_minute"] == {"delivered": 1, "bounced": 2}
    assert rep["categories"]["last_day"] == {"bad-mailbox": 1, "spam-related": 1}
    assert rep["suppressions"] == {"hard_bounce": 1}
    assert rep["intake"]["pending"] == 0 and rep["quarantine"]["total"] == 0
    text = run(settings, "show", "status").stdout
    assert "Suppressions by reason" in text and "hard_bounce" in text


def test_show_top_lists_blocks_per_domain_and_vmta(settings):
    seed(settings)
    top = json.loads(run(settings, "show", "top", "--json").stdout)
    assert top["blocks"][0] | {"last_diagnostic": None} == {
        "recipient_domain": "example.net", "vmta": "vmta1", "source_ip": "192.0.2.7", "reason": "blocked",
        "count": 1, "last_diagnostic": None}
    assert json.loads(run(settings, "show", "queues", "--json").stdout)["pending"] == 0


def test_suppressions_export_add_remove(settings):
    seed(settings)
    run(settings, "suppressions", "add", "Manual@EXAMPLE.org", "--scope", "list:news", "--note", "asked by phone")
    rows = list(csv.DictReader(io.StringIO(run(settings, "suppressions", "export").stdout)))
    assert [r["address"] for r in rows] == ["gone@example.com", "manual@example.org"]
    assert list(rows[0]) == ["address", "scope", "reason", "category", "rule", "source", "created_at", "expires_at"]
    assert rows[0]["rule"] == "test-rule" and rows[0]["category"] == "bad-mailbox"
    assert datetime.fromisoformat(rows[0]["created_at"]).tzinfo is not None
    only = list(csv.DictReader(io.StringIO(run(settings, "suppressions", "export", "--scope", "list:news").stdout)))
    assert [r["reason"] for r in only] == ["manual"]
    assert run(settings, "suppressions", "remove", "manual@example.org", "--scope", "global",
               "--reason", "x", check=False).returncode == 1  # another scope: nothing to lift
    run(settings, "suppressions", "remove", "MANUAL@example.org", "--scope", "list:news", "--reason", "re-opted in")
    rows = list(csv.DictReader(io.StringIO(run(settings, "suppressions", "export").stdout)))
    assert [r["address"] for r in rows] == ["gone@example.com"]


def test_suppressions_import_records_the_operator_as_origin_like_suppressions_add(settings, tmp_path):
    # The command line's imports are the operator's, not an API key's: origin and source
    # "operator" (the API's imports record "api"), "cli" as the actor in the history.
    from sqlalchemy import select
    from bounceproc.storage.tables import suppression_history, suppressions
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("address,reason,scope\nalice@example.com,manual,global\nbob@example.com,,list:news\n")
    assert "2 changed" in run(settings, "suppressions", "import", str(csv_file)).stdout
    rows = list(csv.DictReader(io.StringIO(run(settings, "suppressions", "export").stdout)))
    assert [(r["address"], r["reason"], r["source"]) for r in rows] == [
        ("alice@example.com", "manual", "operator"), ("bob@example.com", "import", "operator")]
    with bootstrap.engine(settings).connect() as conn:
        assert set(conn.execute(select(suppressions.c.origin)).scalars()) == {"operator"}
        assert set(conn.execute(select(suppression_history.c.actor)).scalars()) == {"cli"}


def test_bad_address_is_a_clear_error(settings):
    p = run(settings, "suppressions", "add", "not-an-address", check=False)
    assert p.returncode != 0 and "not an email address" in p.stderr and "Traceback" not in p.stderr
