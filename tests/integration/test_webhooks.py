"""Webhooks end to end: endpoints through the API, outbox rows delivered to a real HTTP receiver on
loopback, signatures checked by the independent `standardwebhooks` library, retries, timeouts,
redirects, 410, five failing days, replay, secret rotation, and a sender killed mid-delivery."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update
from test_api_support import admin_key, assert_problem, client, receiver, serve_api  # noqa: F401

from bounceproc import bootstrap
from bounceproc.config import load_settings
from bounceproc.outbound import webhooks
from bounceproc.storage.api_tables import webhook_deliveries, webhook_endpoints
from bounceproc.storage.tables import outbox

standardwebhooks = pytest.importorskip("standardwebhooks")
LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def hooks(fresh_pg_url, make_settings, receiver):
    settings = make_settings(database_url=fresh_pg_url, webhook_allow=LOOPBACK, webhook_timeout_seconds=1.0)
    with serve_api(settings) as base:
        with client(base, admin_key(settings)) as c:
            yield settings, c, receiver


def _endpoint(c, rec, path, types=("recipient.suppressed",)) -> dict:
    r = c.post("/v1/webhook-endpoints", json={"url": rec.url(path), "event_types": list(types)})
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_")
    return r.json()


def _suppress(c, address="w@example.com"):
    assert c.put(f"/v1/suppressions/{address}", json={"note": "test"}).status_code == 201


def _deliveries(settings) -> list[dict]:
    with bootstrap.engine(settings).connect() as conn:
        return [dict(r) for r in conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).mappings()]


def test_private_targets_are_refused_unless_allowed(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url)
    with serve_api(settings) as base, client(base, admin_key(settings)) as c:
        for url in ("http://127.0.0.1:8080/h", "http://10.0.0.5/h", "http://169.254.169.254/latest",
                    "http://localhost/h", "http://[::1]/h", "ftp://example.com/h", "http://user:pw@example.com/"):
            body = assert_problem(c.post("/v1/webhook-endpoints", json={"url": url}), 422)
            assert body["errors"][0]["field"] == "url"
        assert c.get("/v1/webhook-endpoints").json()["data"] == []
    key_only_reader = admin_key(settings, ["suppressions:write"])
    with serve_api(settings) as base, client(base, key_only_reader) as c:
        assert_problem(c.post("/v1/webhook-endpoints", json={"url": "https://example.com/h"}), 403)


def test_delivery_is_signed_and_verifies_with_the_reference_library(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/ok")
    other = _endpoint(c, rec, "/complaints-only", types=("recipient.complained",))
    _suppress(c)
    totals = webhooks.deliver_now(settings)
    assert totals["delivered"] == 1
    [req] = rec.requests
    assert req["path"] == "/ok"
    msg = standardwebhooks.Webhook(ep["secret"]).verify(req["body"], req["headers"])
    assert msg["type"] == "recipient.suppressed" and msg["data"]["address"] == "w@example.com"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other["secret"]).verify(req["body"], req["headers"])
    with bootstrap.engine(settings).connect() as conn:
        row = conn.execute(select(outbox)).mappings().one()
    assert req["headers"]["webhook-id"] == row["webhook_id"] and req["body"] == row["payload"].encode()
    log = c.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries").json()["data"]
    assert [(d["state"], d["attempts"], d["last_status"]) for d in log] == [("delivered", 1, 200)]
    one = c.get(f"/v1/webhook-deliveries/{log[0]['id']}").json()
    assert one["attempt_log"][0]["status_code"] == 200 and one["attempt_log"][0]["response"] == "thanks"
    assert c.get(f"/v1/webhook-endpoints/{other['id']}/deliveries").json()["data"] == []


class Clock:
    """A clock the test moves by hand (webhooks.deliver_pending's `clock`)."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


NO_JITTER = 0.5        # rand() = 0.5: the schedule's delay exactly (jitter is +-10 % around it)


def test_failures_follow_the_retry_schedule_until_it_is_exhausted(hooks):
    settings, c, rec = hooks
    _endpoint(c, rec, "/fail")
    _suppress(c)
    clock = Clock()
    t0 = clock.now
    webhooks.deliver_now(settings, clock=clock, rand=lambda: NO_JITTER)
    [d] = _deliveries(settings)
    assert (d["state"], d["attempts"], d["last_status"]) == ("pending", 1, 500)
    assert webhooks._utc(d["next_attempt_at"]) == t0 + timedelta(seconds=5)
    webhooks.deliver_now(settings, clock=clock, rand=lambda: NO_JITTER)   # not due yet: nothing is sent
    assert len(rec.requests) == 1
    clock.now = t0 + timedelta(seconds=5)
    webhooks.deliver_now(settings, clock=clock, rand=lambda: NO_JITTER)
    [d] = _deliveries(settings)
    assert d["attempts"] == 2 and webhooks._utc(d["next_attempt_at"]) == clock.now + timedelta(seconds=300)
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(update(webhook_deliveries).values(attempts=9))
    clock.now += timedelta(seconds=300)
    webhooks.deliver_now(settings, clock=clock, rand=lambda: NO_JITTER)
    [d] = _deliveries(settings)
    assert (d["state"], d["attempts"]) == ("failed", 10)
    assert len(rec.requests) == 3 and len({r["headers"]["webhook-id"] for r in rec.requests}) == 1


def test_timeouts_and_redirects_are_failures(hooks):
    settings, c, rec = hooks
    rec.slow_seconds = 2.5
    _endpoint(c, rec, "/slow")
    _endpoint(c, rec, "/redirect")
    _suppress(c)
    webhooks.deliver_now(settings)
    by_path = {d["endpoint_id"]: d for d in _deliveries(settings)}
    slow, redirect = by_path[1], by_path[2]
    assert slow["state"] == "pending" and "timed out" in slow["last_error"] and slow["last_status"] is None
    assert redirect["state"] == "pending" and redirect["last_status"] == 302
    assert rec.on("/ok-after-redirect") == []


def test_410_disables_the_endpoint(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/gone")
    _suppress(c)
    webhooks.deliver_now(settings)
    got = c.get(f"/v1/webhook-endpoints/{ep['id']}").json()
    assert got["enabled"] is False and "410" in got["disabled_reason"]
    _suppress(c, "second@example.com")
    webhooks.deliver_now(settings)
    assert len(rec.requests) == 1
    assert [d["state"] for d in _deliveries(settings)] == ["failed"]
    assert c.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": True}).json()["enabled"] is True


def test_retry_after_is_honoured_on_503(hooks):
    settings, c, rec = hooks
    _endpoint(c, rec, "/busy")
    _suppress(c)
    clock = Clock()
    webhooks.deliver_now(settings, clock=clock, rand=lambda: NO_JITTER)
    [d] = _deliveries(settings)
    assert webhooks._utc(d["next_attempt_at"]) == clock.now + timedelta(seconds=120)


def test_endpoint_failing_for_five_days_is_disabled(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/fail")
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(update(webhook_endpoints).values(failing_since=datetime.now(timezone.utc) - timedelta(days=5, hours=1)))
    _suppress(c)
    webhooks.deliver_now(settings)
    got = c.get(f"/v1/webhook-endpoints/{ep['id']}").json()
    assert got["enabled"] is False and "5 days" in got["disabled_reason"]


def test_replay_resends_with_the_same_webhook_id(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/ok")
    _suppress(c)
    webhooks.deliver_now(settings)
    [d] = _deliveries(settings)
    r = c.post(f"/v1/webhook-deliveries/{d['id']}/replay")
    assert r.status_code == 200 and r.json()["state"] == "pending"
    webhooks.deliver_now(settings)
    assert len(rec.requests) == 2
    assert rec.requests[0]["headers"]["webhook-id"] == rec.requests[1]["headers"]["webhook-id"]
    for req in rec.requests:
        standardwebhooks.Webhook(ep["secret"]).verify(req["body"], req["headers"])
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert c.post(f"/v1/webhook-endpoints/{ep['id']}/replay", json={"since": since}).json() == {"replayed": 0}
    assert c.post(f"/v1/webhook-endpoints/{ep['id']}/replay",
                  json={"since": since, "only_failed": False}).json() == {"replayed": 1}
    assert_problem(c.post("/v1/webhook-deliveries/999999/replay"), 404)


def test_secret_rotation_signs_with_both_secrets(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/ok")
    new = c.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", json={"keep_old_seconds": 3600}).json()
    assert new["secret"] != ep["secret"] and "secret" not in c.get(f"/v1/webhook-endpoints/{ep['id']}").json()
    _suppress(c)
    webhooks.deliver_now(settings)
    [req] = rec.requests
    assert len(req["headers"]["webhook-signature"].split()) == 2
    standardwebhooks.Webhook(ep["secret"]).verify(req["body"], req["headers"])
    standardwebhooks.Webhook(new["secret"]).verify(req["body"], req["headers"])


def test_endpoint_crud(hooks):
    settings, c, rec = hooks
    ep = _endpoint(c, rec, "/ok")
    assert [e["id"] for e in c.get("/v1/webhook-endpoints").json()["data"]] == [ep["id"]]
    r = c.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"event_types": ["recipient.complained"], "description": "crm"})
    assert r.json()["event_types"] == ["recipient.complained"] and r.json()["description"] == "crm"
    assert_problem(c.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"event_types": ["nope"]}), 422)
    assert_problem(c.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"url": "http://10.9.9.9/"}), 422)
    assert c.delete(f"/v1/webhook-endpoints/{ep['id']}").status_code == 204
    assert_problem(c.get(f"/v1/webhook-endpoints/{ep['id']}"), 404)


def test_sender_killed_mid_delivery_redelivers_the_same_webhook_id(hooks, tmp_path):
    settings, c, rec = hooks
    rec.slow_seconds = 8.0
    ep = _endpoint(c, rec, "/slow")
    _suppress(c)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update({"BOUNCEPROC_DATABASE_URL": settings.db_url, "BOUNCEPROC_DATA_DIR": str(tmp_path),
                "BOUNCEPROC_SECRET_KEY": settings.secret_key, "BOUNCEPROC_WEBHOOK_ALLOW": "127.0.0.0/8",
                "BOUNCEPROC_WEBHOOK_TIMEOUT_SECONDS": "2", "BOUNCEPROC_WEBHOOK_LEASE_SECONDS": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "webhooks", "deliver"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not rec.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.requests, "the sender never reached the receiver"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    rec.slow_seconds = 0.0
    webhooks.deliver_now(settings)                      # leased by the dead sender: not yet
    assert len(rec.requests) == 1
    lease = webhooks.lease_for(load_settings(webhook_timeout_seconds=2, webhook_lease_seconds=1))
    after_lease = datetime.now(timezone.utc) + timedelta(seconds=lease + 1)
    webhooks.deliver_now(settings, clock=lambda: after_lease)
    assert len(rec.requests) == 2
    first, second = rec.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    standardwebhooks.Webhook(ep["secret"]).verify(second["body"], second["headers"])
    assert [d["state"] for d in _deliveries(settings)] == ["delivered"]


@pytest.mark.slow
def test_celery_worker_delivers_and_a_killed_worker_is_replaced(fresh_pg_url, make_settings, receiver,
                                                                 redis_url, celery_worker):
    settings = make_settings(database_url=fresh_pg_url, broker_url=redis_url, webhook_allow=LOOPBACK,
                             webhook_timeout_seconds=2.0)
    env = {"BOUNCEPROC_WEBHOOK_ALLOW": "127.0.0.0/8", "BOUNCEPROC_WEBHOOK_TIMEOUT_SECONDS": "2",
           "BOUNCEPROC_WEBHOOK_LEASE_SECONDS": "1"}
    ticks = [webhooks.KICK_EVERY]                        # the kicker's coalescing clock, moved by hand
    kick = webhooks.kicker(settings, monotonic=lambda: ticks[0])
    with serve_api(settings, kick=kick) as base, client(base, admin_key(settings)) as c:
        ep = _endpoint(c, receiver, "/ok")
        with celery_worker(settings, extra_env=env):
            _suppress(c, "first@example.com")            # the API kicks bounceproc.deliver_webhooks
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(receiver.requests) == 1
            standardwebhooks.Webhook(ep["secret"]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])
        receiver.slow_seconds = 8.0
        c.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"url": receiver.url("/slow")})
        with celery_worker(settings, extra_env=env) as worker:
            ticks[0] += webhooks.KICK_EVERY              # past the kick coalescing window
            _suppress(c, "second@example.com")
            deadline = time.monotonic() + 30
            while not receiver.on("/slow") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.on("/slow"), worker.log()
            worker.kill()                                 # SIGKILL mid-delivery
        receiver.slow_seconds = 0.0
        with celery_worker(settings, beat=True, extra_env=env) as worker:   # beat: retry_webhooks every 5 s
            deadline = time.monotonic() + 40
            while len(receiver.on("/slow")) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(receiver.on("/slow")) >= 2, worker.log()
    first, again = receiver.on("/slow")[:2]
    assert first["headers"]["webhook-id"] == again["headers"]["webhook-id"]
    standardwebhooks.Webhook(ep["secret"]).verify(again["body"], again["headers"])


def test_targets_are_checked_again_before_each_delivery(hooks):
    settings, c, rec = hooks
    _endpoint(c, rec, "/ok")
    _suppress(c)
    strict = load_settings(database_url=settings.db_url, data_dir=settings.data_dir, webhook_allow=())
    webhooks.deliver_now(strict)               # the allow-list was removed after registration
    [d] = _deliveries(settings)
    assert rec.requests == [] and "SSRF guard" in d["last_error"] and d["state"] == "pending"
