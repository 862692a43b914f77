"""ESP event webhooks: POST /v1/ingest/{ses,sendgrid,mailgun,postmark}.

Adapter layer. Each POST is verified as its provider specifies (esp_verify.py), translated by the
pure domain.parse.esp (diagnostics classified by our engine), then committed with its events by
app.esp_intake before the 200. A provider that is not configured answers 404; a POST that does
not verify answers 401 or 403 and stores nothing; a body that is not the provider's format 400.
These routes take no API key: the provider's signature (or Postmark's basic auth / secret path)
is the credential. An SNS `SubscriptionConfirmation` for an allowed topic is confirmed by fetching
its SubscribeURL (on an allowed SNS host only).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from bounceproc.app.esp_intake import GroupCommit
from bounceproc.app.service import classifier_for
from bounceproc.domain.classify import default_classifier
from bounceproc.domain.parse.esp import PayloadError, esp_events, ses_sns_message
from bounceproc.entrypoints.http import esp_verify
from bounceproc.entrypoints.http.common import ApiContext, ctx
from bounceproc.entrypoints.http.problems import Problem

log = logging.getLogger("bounceproc.esp")
router = APIRouter(prefix="/v1/ingest", tags=["esp webhooks"])
RESPONSES = {401: {"description": "the signature / credentials do not verify; nothing stored"},
             403: {"description": "not an allowed topic, certificate host or path; nothing stored"},
             404: {"description": "this provider is not configured"}}


class Verifiers:
    """Per-app verifier state (SNS certificate cache, Mailgun token replay cache)."""

    def __init__(self, settings) -> None:
        s = settings
        self.sns = (esp_verify.SnsVerifier(s.esp_ses_cert_origins, s.esp_ses_topic_arns, s.esp_max_age_seconds)
                    if s.esp_ses_topic_arns else None)
        self.sendgrid = (esp_verify.load_ec_public_key(s.esp_sendgrid_public_key)
                         if s.esp_sendgrid_public_key else None)
        self.mailgun = (esp_verify.MailgunVerifier(s.esp_mailgun_signing_key, s.esp_max_age_seconds)
                        if s.esp_mailgun_signing_key else None)
        self.writer = GroupCommit(settings, run_in_threadpool)


def verifiers(request: Request) -> Verifiers:
    app = request.app
    v = getattr(app.state, "esp_verifiers", None)
    if v is None:
        v = app.state.esp_verifiers = Verifiers(app.state.ctx.settings)
    return v


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not JSON: {exc}"[:300], slug="bad-payload") from None


def _unverified(exc: esp_verify.Unverified) -> Problem:
    return Problem(exc.status, exc.detail, slug="unverified")


async def _store(c: ApiContext, v: "Verifiers", provider: str, body: bytes, payload) -> JSONResponse:
    classify = (classifier_for(c.settings) or default_classifier()).classify
    try:
        events = esp_events(provider, payload, classify, datetime.now(timezone.utc))
    except PayloadError as exc:
        raise Problem(400, str(exc), slug="bad-payload") from None
    try:
        await v.writer.submit(provider, body, events)
    except Exception as exc:  # not committed: the provider retries on a non-2xx
        log.exception("ESP %s POST not stored", provider)
        raise Problem(503, f"not stored ({type(exc).__name__}); retry later", slug="not-stored",
                      headers={"Retry-After": "30"}) from None
    if events:
        c.kick_webhooks()
    return JSONResponse({"events": len(events)})


@router.post("/ses", responses=RESPONSES)
async def ingest_ses(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Amazon SES notifications delivered by SNS (HTTPS subscription, raw delivery off)."""
    if v.sns is None:
        raise Problem(404, "SES ingestion is not configured (esp_ses_topic_arns)", slug="not-configured")
    body = await request.body()
    msg = _json(body)
    if not isinstance(msg, dict):
        raise Problem(400, "an SNS message is a JSON object", slug="bad-payload")
    try:
        url = str(msg.get("SigningCertURL") or "")
        if not v.sns.has_key(url) and v.sns.url_ok(url):
            await run_in_threadpool(v.sns.public_key, url)       # fetched once, then cached
        v.sns.verify(msg)                                        # ~0.1 ms with the key cached
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    kind = msg.get("Type")
    if kind == "SubscriptionConfirmation":
        url = str(msg.get("SubscribeURL", ""))
        if not c.settings.esp_ses_confirm_subscriptions or not v.sns.subscribe_url_allowed(url):
            log.warning("SNS subscription to %s not confirmed automatically: %s", msg.get("TopicArn"), url[:200])
            return JSONResponse({"confirmed": False})
        try:
            await run_in_threadpool(esp_verify._http_get, url)
        except esp_verify.Unverified as exc:
            raise Problem(502, f"confirming the subscription failed: {exc.detail}", slug="confirm-failed") from None
        log.info("SNS subscription to %s confirmed", msg.get("TopicArn"))
        return JSONResponse({"confirmed": True})
    if kind != "Notification":
        return JSONResponse({"events": 0, "new": 0})
    try:
        inner = ses_sns_message(msg)
    except PayloadError as exc:
        raise Problem(400, str(exc), slug="bad-payload") from None
    return await _store(c, v, "ses", body, inner)


@router.post("/sendgrid", responses=RESPONSES)
async def ingest_sendgrid(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """SendGrid Event Webhook with Signed Event Webhook (ECDSA) turned on."""
    if v.sendgrid is None:
        raise Problem(404, "SendGrid ingestion is not configured (esp_sendgrid_public_key)", slug="not-configured")
    body = await request.body()
    try:
        esp_verify.verify_sendgrid(v.sendgrid, request.headers.get("x-twilio-email-event-webhook-signature", ""),
                                   request.headers.get("x-twilio-email-event-webhook-timestamp", ""), body,
                                   c.settings.esp_max_age_seconds)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    return await _store(c, v, "sendgrid", body, _json(body))


@router.post("/mailgun", responses=RESPONSES)
async def ingest_mailgun(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Mailgun webhooks (v3 JSON, with the signature object)."""
    if v.mailgun is None:
        raise Problem(404, "Mailgun ingestion is not configured (esp_mailgun_signing_key)", slug="not-configured")
    body = await request.body()
    payload = _json(body)
    try:
        v.mailgun.verify(payload.get("signature") if isinstance(payload, dict) else None)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    return await _store(c, v, "mailgun", body, payload)


async def _postmark(request: Request, c: ApiContext, v: Verifiers, secret: str) -> JSONResponse:
    s = c.settings
    if not (s.esp_postmark_credentials or s.esp_postmark_path_secret):
        raise Problem(404, "Postmark ingestion is not configured", slug="not-configured")
    try:
        esp_verify.verify_postmark(s.esp_postmark_credentials, s.esp_postmark_path_secret,
                                   request.headers.get("authorization", ""), secret)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    body = await request.body()
    return await _store(c, v, "postmark", body, _json(body))


@router.post("/postmark", responses=RESPONSES)
async def ingest_postmark(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Postmark webhooks, with basic-auth credentials in the webhook URL."""
    return await _postmark(request, c, v, "")


@router.post("/postmark/{secret}", responses=RESPONSES)
async def ingest_postmark_secret_path(secret: str, request: Request, c: ApiContext = Depends(ctx),
                                      v: Verifiers = Depends(verifiers)):
    """Postmark webhooks, authenticated by a secret path segment."""
    return await _postmark(request, c, v, secret)
