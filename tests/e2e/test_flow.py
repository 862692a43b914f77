"""The whole loop, with every part real: a PowerMTA accounting stream into `bounceproc pipe`, a Celery
worker on Redis, PostgreSQL, the API served by `bounceproc serve`, and a CRM's webhook receiver.

CSV in -> events + suppression (with evidence, visible through the API) -> signed webhook received,
verified with the independent `standardwebhooks` library.
"""
from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.storage.tables import events, suppressions
from bp_testing import HTTPRequest, LoopbackHTTP, bin_path, free_port, settings_env, start_serve, stop_process, wait_for

ACCT = (
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
    "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool\r\n"
    "d,2026-11-20 10:00:02+0000,2026-11-20 09:59:58+0000,b-u1=example.com@bounce.example.net,u1@example.com,,"
    "relayed,2.0.0 (success),smtp;250 2.0.0 OK,mx.example.com (192.0.2.10),,smtp,app01 (192.0.2.5),smtp,"
    "198.51.100.7,192.0.2.10,\"PIPELINING,8BITMIME\",5321,vmta1,job42,,example.com/vmta1,pool1\r\n"
    "b,2026-11-20 10:00:03+0000,2026-11-20 09:59:58+0000,b-u2=example.com@bounce.example.net,u2@example.com,,"
    "failed,5.1.1 (bad destination mailbox address),\"smtp;550 5.1.1 <u2@example.com>: Recipient address "
    "rejected: User unknown in virtual mailbox table\",mx.example.com (192.0.2.10),bad-mailbox,smtp,"
    "app01 (192.0.2.5),smtp,198.51.100.7,192.0.2.10,\"PIPELINING,8BITMIME\",,vmta1,job42,,example.com/vmta1,pool1\r\n"
    "b,2026-11-20 10:00:04+0000,2026-11-20 09:59:58+0000,b-u3=example.net@bounce.example.net,u3@example.net,,"
    "failed,5.7.1 (delivery not authorized),\"smtp;550 5.7.1 Service unavailable; Client host [198.51.100.7] "
    "blocked using zen.spamhaus.org\",mx.example.net (192.0.2.20),spam-related,smtp,app01 (192.0.2.5),smtp,"
    "198.51.100.7,192.0.2.20,,,vmta1,job42,,example.net/vmta1,pool1\r\n"
)


class Receiver:
    """A CRM's webhook endpoint on loopback that records what it receives."""

    def __init__(self):
        self.received = []
        self.http = LoopbackHTTP(self._answer)
        self.url = self.http.url("/hooks")

    def _answer(self, request: HTTPRequest) -> tuple[int, dict, bytes]:
        self.received.append((request.headers, request.body))
        return 204, {}, b""

    def close(self):
        self.http.close()


@pytest.mark.slow
def test_acct_stream_to_suppression_api_and_signed_webhook(make_settings, fresh_pg_url, redis_url, celery_worker,
                                                           tmp_path):
    from standardwebhooks import Webhook

    settings = make_settings(database_url=fresh_pg_url, broker_url=redis_url, webhook_allow="127.0.0.1")
    env = settings_env(settings, BOUNCEPROC_WEBHOOK_ALLOW="127.0.0.1")
    receiver = Receiver()
    api_port = free_port()
    serve = None
    try:
        serve = start_serve(["serve", "--api", f"127.0.0.1:{api_port}", "--smtp", f"127.0.0.1:{free_port()}"],
                            env, tmp_path, tmp_path / "serve.log")
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
        key = subprocess.run([bin_path("bounceproc"), "apikey", "create", "--scope", "admin"], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip().splitlines()[-1]
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"},
                           timeout=10)
        r = api.post("/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["recipient.hard_bounced"]})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]

        with celery_worker(settings, extra_env={"BOUNCEPROC_WEBHOOK_ALLOW": "127.0.0.1"}):
            pipe = subprocess.run([bin_path("bounceproc"), "pipe", "-q"], input=ACCT.encode(), env=env,
                                  capture_output=True, timeout=120)
            assert pipe.returncode == 0, pipe.stderr.decode()
            eng = bootstrap.engine(settings)

            def suppressed():
                with eng.connect() as conn:
                    return conn.execute(select(func.count()).select_from(suppressions)).scalar_one() >= 1
            wait_for(suppressed, 60, "the worker to suppress u2")
            wait_for(lambda: receiver.received, 60, "the webhook")

        with eng.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 3
            rows = conn.execute(select(suppressions.c.address, suppressions.c.reason)).all()
        # the user-unknown is suppressed; the Spamhaus block is about our IP, never the recipient
        assert rows == [("u2@example.com", "hard_bounce")]

        sup = api.get("/v1/suppressions/u2@example.com")
        assert sup.status_code == 200, sup.text
        body = sup.json()
        assert body["reason"] == "hard_bounce"
        assert "5.1.1" in json.dumps(body)
        assert api.get("/v1/suppressions/u3@example.net").status_code == 404

        headers, raw = receiver.received[0]
        payload = Webhook(secret).verify(raw, {k.lower(): v for k, v in headers.items()})
        assert payload["type"] == "recipient.hard_bounced"
        assert payload["data"]["address"] == "u2@example.com"
        assert payload["data"]["status"] == "5.1.1"
    finally:
        if serve is not None:
            stop_process(serve)
        receiver.close()
