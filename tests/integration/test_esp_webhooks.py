"""ESP event webhooks on a real uvicorn server and real PostgreSQL: verified payloads of each
provider reach the same suppressions as the sink's and the pipe's (diagnostics classified by our
engine: a block never suppresses); unverified ones are refused and store nothing."""
from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import pytest
from esp_signing import (TOPIC, CertServer, SendGridSigner, mailgun_failed, mailgun_signature, iso,
                         sendgrid_event, ses_bounce, ses_complaint, sns_notification)
from sqlalchemy import func, select
from test_api_support import serve_api

from bounceproc import bootstrap
from bounceproc.entrypoints.http.esp_verify import SnsVerifier, Unverified
from bounceproc.storage.tables import events, intake, suppressions

MAILGUN_KEY = "key-mailgun-test-signing"
POSTMARK = "postmark-hook:s3cret-pass"


@pytest.fixture
def esp(fresh_pg_url, make_settings):
    certs = CertServer()
    signer = SendGridSigner()
    s = make_settings(database_url=fresh_pg_url, esp_ses_topic_arns=TOPIC,
                      esp_ses_cert_origins="http://127.0.0.1:*", esp_sendgrid_public_key=signer.public_key,
                      esp_mailgun_signing_key=MAILGUN_KEY, esp_postmark_credentials=POSTMARK,
                      esp_postmark_path_secret="pm-path-0123456789")
    with serve_api(s) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            yield s, client, certs, signer
    certs.close()


def _suppressed(settings, address: str) -> dict[str, str]:
    with bootstrap.engine(settings).connect() as conn:
        return {r.scope: r.reason for r in conn.execute(
            select(suppressions.c.scope, suppressions.c.reason).where(suppressions.c.address == address))}


def _stored(settings) -> tuple[int, int]:
    with bootstrap.engine(settings).connect() as conn:
        rows = conn.execute(select(func.count()).select_from(intake).where(intake.c.kind == "esp")).scalar()
        evs = conn.execute(select(func.count()).select_from(events)).scalar()
    return rows, evs


def _event(settings, address: str) -> list[tuple]:
    with bootstrap.engine(settings).connect() as conn:
        return [(r.type, r.source, r.reason, r.hard) for r in conn.execute(
            select(events.c.type, events.c.source, events.c.reason, events.c.hard)
            .where(events.c.recipient == address).order_by(events.c.id))]


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_via_sns_bounce_block_and_complaint(esp, version):
    s, c, certs, _ = esp
    dead = ses_bounce("dead.user@example.com", "5.1.1", "smtp; 550 5.1.1 <dead.user@example.com>: "
                      "Recipient address rejected: User unknown in virtual mailbox table")
    block = ses_bounce("good.user@example.org", "5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host "
                       "[54.240.1.1] blocked using zen.spamhaus.org", sub_type="General", event_publishing=True)
    for payload in (dead, block, ses_complaint("angry@example.net")):
        r = c.post("/v1/ingest/ses", content=json.dumps(certs.sign(sns_notification(payload), version)),
                   headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"})
        assert r.status_code == 200, r.text
        assert r.json()["events"] == 1
    assert _suppressed(s, "dead.user@example.com") == {"global": "hard_bounce"}
    assert _suppressed(s, "good.user@example.org") == {}          # a blocklist refusal is ours, not theirs
    assert _event(s, "good.user@example.org")[0][:2] == ("bounced", "ses")
    assert _event(s, "good.user@example.org")[0][3] is False
    assert _suppressed(s, "angry@example.net") == {"global": "complaint"}
    assert certs.cert_fetches == 1                                   # the certificate is cached


def test_sns_retry_is_recorded_once(esp):
    s, c, certs, _ = esp
    body = json.dumps(certs.sign(sns_notification(ses_bounce("once@example.com", "5.1.1", "smtp; 550 5.1.1 no such user"))))
    first = c.post("/v1/ingest/ses", content=body)
    again = c.post("/v1/ingest/ses", content=body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert len(_event(s, "once@example.com")) == 1


def test_concurrent_first_sns_posts_fetch_the_certificate_once(esp):
    """The first POSTs after a start arrive together: one of them fetches the signing certificate,
    the others wait for it (they used to fetch it each, a TLS client set up every time)."""
    s, c, certs, _ = esp
    bodies = [json.dumps(certs.sign(sns_notification(ses_bounce(f"herd{i}@example.com", "5.1.1",
                                                                "smtp; 550 5.1.1 no such user")), "2"))
              for i in range(24)]

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(base_url=str(c.base_url), timeout=30) as ac:
            return [r.status_code for r in await asyncio.gather(*(ac.post("/v1/ingest/ses", content=b)
                                                                   for b in bodies))]

    assert asyncio.run(post_all()) == [200] * len(bodies)
    assert certs.cert_fetches == 1
    assert len(_suppressed(s, "herd23@example.com")) == 1


def test_a_failed_certificate_fetch_is_not_cached():
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        raise Unverified(403, "cannot fetch")

    v = SnsVerifier(("https://sns.*.amazonaws.com",), (TOPIC,), 3600, fetch=fetch)
    url = "https://sns.eu-west-1.amazonaws.com/cert.pem"
    for _ in range(2):
        with pytest.raises(Unverified):
            v.public_key(url)
    assert len(calls) == 2 and not v.has_key(url)


def test_sns_subscription_confirmation_is_fetched_only_for_an_allowed_topic(esp):
    _, c, certs, _ = esp
    conf = {"Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "tok", "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe...", "Timestamp": iso(),
            "SubscribeURL": f"{certs.origin}/confirm?Action=ConfirmSubscription&Token=tok"}
    r = c.post("/v1/ingest/ses", content=json.dumps(certs.sign(conf)))
    assert r.status_code == 200 and r.json() == {"confirmed": True}
    assert len(certs.confirmed) == 1
    other = certs.sign(dict(conf, TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-else"))
    assert c.post("/v1/ingest/ses", content=json.dumps(other)).status_code == 403
    assert len(certs.confirmed) == 1


def test_unverified_sns_posts_are_refused_and_store_nothing(esp):
    s, c, certs, _ = esp
    good = certs.sign(sns_notification(ses_bounce("x@example.com", "5.1.1", "smtp; 550 5.1.1 unknown")))
    tampered = dict(good, Message=good["Message"].replace("x@example.com", "y@example.com"))
    old = certs.sign(sns_notification(ses_bounce("x@example.com", "5.1.1", "550 5.1.1"), at=time.time() - 7200))
    wrong_topic = certs.sign(sns_notification(ses_bounce("x@example.com", "5.1.1", "550 5.1.1"),
                                              topic="arn:aws:sns:us-east-1:1:other"))
    foreign_cert = certs.sign(sns_notification(ses_bounce("x@example.com", "5.1.1", "550 5.1.1")),
                              cert_url="http://evil.example:80/cert.pem")
    for body, status in ((tampered, 401), (old, 401), (wrong_topic, 403), (foreign_cert, 403)):
        r = c.post("/v1/ingest/ses", content=json.dumps(body))
        assert r.status_code == status, (r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert _stored(s) == (0, 0)


def test_sendgrid_signed_batch(esp):
    s, c, _, signer = esp
    batch = [sendgrid_event("bounce", "gone@example.com", type="bounce", status="5.1.1",
                            reason="550 5.1.1 The email account that you tried to reach does not exist."),
             sendgrid_event("bounce", "listed@example.com", type="blocked", status="5.7.1",
                            reason="550 5.7.1 Service unavailable, Client host [167.89.1.1] blocked using "
                                   "Spamhaus. To request removal from this list see https://www.spamhaus.org"),
             sendgrid_event("spamreport", "angry@example.com"),
             sendgrid_event("delivered", "fine@example.com", response="250 2.0.0 OK"),
             sendgrid_event("open", "fine@example.com"),
             sendgrid_event("group_unsubscribe", "leaver@example.com", asm_group_id=42)]
    body = json.dumps(batch).encode()
    r = c.post("/v1/ingest/sendgrid", content=body, headers=signer.headers(body))
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 5                                     # the open says nothing
    assert _suppressed(s, "gone@example.com") == {"global": "hard_bounce"}
    assert _suppressed(s, "listed@example.com") == {}
    assert _suppressed(s, "angry@example.com") == {"global": "complaint"}
    assert _suppressed(s, "leaver@example.com") == {"list:sendgrid-group:42": "unsubscribe"}
    bad = signer.headers(body)
    assert c.post("/v1/ingest/sendgrid", content=body + b" ", headers=bad).status_code == 401
    old = signer.headers(body, at=int(time.time()) - 3600)
    assert c.post("/v1/ingest/sendgrid", content=body, headers=old).status_code == 401


def test_mailgun_signed_events_and_replay(esp):
    s, c, _, _ = esp
    payload = {"signature": mailgun_signature(MAILGUN_KEY),
               "event-data": mailgun_failed("nobody@example.com", 550, "5.1.1 The email account that you tried "
                                            "to reach does not exist.", enhanced="5.1.1")}
    r = c.post("/v1/ingest/mailgun", json=payload)
    assert r.status_code == 200, r.text
    assert _suppressed(s, "nobody@example.com") == {"global": "hard_bounce"}
    assert c.post("/v1/ingest/mailgun", json=payload).status_code == 401         # token used once
    temp = {"signature": mailgun_signature(MAILGUN_KEY),
            "event-data": mailgun_failed("busy@example.com", 421, "4.7.0 Try again later, closing connection.",
                                         severity="temporary")}
    assert c.post("/v1/ingest/mailgun", json=temp).status_code == 200
    assert _suppressed(s, "busy@example.com") == {}
    assert _event(s, "busy@example.com")[0][0] == "deferred"
    forged = {"signature": dict(mailgun_signature("not-the-key")), "event-data": payload["event-data"]}
    assert c.post("/v1/ingest/mailgun", json=forged).status_code == 401


def test_postmark_basic_auth_or_secret_path(esp):
    s, c, _, _ = esp
    bounce = {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
              "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "MessageStream": "outbound",
              "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
              "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
              "Email": "hard@example.com", "From": "news@sender.example.net", "BouncedAt": iso()}
    auth = {"Authorization": "Basic " + base64.b64encode(POSTMARK.encode()).decode()}
    assert c.post("/v1/ingest/postmark", json=bounce, headers=auth).status_code == 200
    assert _suppressed(s, "hard@example.com") == {"global": "hard_bounce"}
    spam = {"RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512,
            "MessageID": "00000000-0000-0000-0000-000000000001", "Email": "spam@example.com", "BouncedAt": iso()}
    assert c.post("/v1/ingest/postmark/pm-path-0123456789", json=spam).status_code == 200
    assert _suppressed(s, "spam@example.com") == {"global": "complaint"}
    change = {"RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000002",
              "ServerID": 23, "MessageStream": "broadcasts", "ChangedAt": iso(), "Recipient": "bye@example.com",
              "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression"}
    assert c.post("/v1/ingest/postmark", json=change, headers=auth).status_code == 200
    assert _suppressed(s, "bye@example.com") == {"list:broadcasts": "unsubscribe"}
    before = _stored(s)
    assert c.post("/v1/ingest/postmark", json=bounce).status_code == 401
    assert c.post("/v1/ingest/postmark/wrong", json=bounce).status_code == 403
    assert _stored(s) == before


def test_unconfigured_providers_answer_404(make_settings, sqlite_url):
    s = make_settings(database_url=sqlite_url)
    with serve_api(s) as url:
        for provider in ("ses", "sendgrid", "mailgun", "postmark"):
            r = httpx.post(f"{url}/v1/ingest/{provider}", json={}, timeout=10)
            assert r.status_code == 404, provider


def test_status_and_metrics_count_what_came_in_by_source(esp):
    from bounceproc.app.status_report import status
    s, c, certs, _ = esp
    body = json.dumps(certs.sign(sns_notification(ses_bounce("src@example.com", "5.1.1", "smtp; 550 5.1.1 unknown"))))
    assert c.post("/v1/ingest/ses", content=body).status_code == 200
    spam = {"RecordType": "SpamComplaint", "ID": 7, "Email": "src2@example.com", "BouncedAt": iso()}
    assert c.post("/v1/ingest/postmark/pm-path-0123456789", json=spam).status_code == 200
    with bootstrap.engine(s).connect() as conn:
        sources = status(conn)["sources"]["last_hour"]
    assert sources["ses"] == {"items": 1, "records": 1} and sources["postmark"] == {"items": 1, "records": 1}
    text = c.get("/metrics").text
    assert 'bounceproc_received_records{source="ses",window="last_hour"} 1.0' in text
