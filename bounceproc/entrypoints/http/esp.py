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


def verifiers_of(state) -> Verifiers:
    """The app's verifiers (made on first use), from `app.state`."""
    v = getattr(state, "esp_verifiers", None)
    if v is None:
        v = state.esp_verifiers = Verifiers(state.ctx.settings)
    return v


def verifiers(request: Request) -> Verifiers:
    return verifiers_of(request.app.state)


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not JSON: {exc}"[:300], slug="bad-payload") from None


def _unverified(exc: esp_verify.Unverified) -> Problem:
    return Problem(exc.status, exc.detail, slug="unverified")


async def _store(c: ApiContext, v: "Verifiers", provider: str, body: bytes, payload) -> dict:
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
    return {"events": len(events)}


# Each provider's handling, apart from HTTP: (context, verifiers, body, header(name) -> str,
# path secret) -> the JSON answer, or a Problem. The FastAPI routes below and the fast path
# (EspFastPath, in front of FastAPI) both call these, so they answer identically.

async def handle_ses(c: ApiContext, v: Verifiers, body: bytes, header, secret: str = "") -> dict:
    if v.sns is None:
        raise Problem(404, "SES ingestion is not configured (esp_ses_topic_arns)", slug="not-configured")
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
            return {"confirmed": False}
        try:
            await run_in_threadpool(esp_verify._http_get, url)
        except esp_verify.Unverified as exc:
            raise Problem(502, f"confirming the subscription failed: {exc.detail}", slug="confirm-failed") from None
        log.info("SNS subscription to %s confirmed", msg.get("TopicArn"))
        return {"confirmed": True}
    if kind != "Notification":
        return {"events": 0, "new": 0}
    try:
        inner = ses_sns_message(msg)
    except PayloadError as exc:
        raise Problem(400, str(exc), slug="bad-payload") from None
    return await _store(c, v, "ses", body, inner)


async def handle_sendgrid(c: ApiContext, v: Verifiers, body: bytes, header, secret: str = "") -> dict:
    if v.sendgrid is None:
        raise Problem(404, "SendGrid ingestion is not configured (esp_sendgrid_public_key)", slug="not-configured")
    try:
        esp_verify.verify_sendgrid(v.sendgrid, header("x-twilio-email-event-webhook-signature"),
                                   header("x-twilio-email-event-webhook-timestamp"), body,
                                   c.settings.esp_max_age_seconds)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    return await _store(c, v, "sendgrid", body, _json(body))


async def handle_mailgun(c: ApiContext, v: Verifiers, body: bytes, header, secret: str = "") -> dict:
    if v.mailgun is None:
        raise Problem(404, "Mailgun ingestion is not configured (esp_mailgun_signing_key)", slug="not-configured")
    payload = _json(body)
    try:
        v.mailgun.verify(payload.get("signature") if isinstance(payload, dict) else None)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    return await _store(c, v, "mailgun", body, payload)


async def handle_postmark(c: ApiContext, v: Verifiers, body: bytes, header, secret: str = "") -> dict:
    s = c.settings
    if not (s.esp_postmark_credentials or s.esp_postmark_path_secret):
        raise Problem(404, "Postmark ingestion is not configured", slug="not-configured")
    try:
        esp_verify.verify_postmark(s.esp_postmark_credentials, s.esp_postmark_path_secret,
                                   header("authorization"), secret)
    except esp_verify.Unverified as exc:
        raise _unverified(exc) from None
    return await _store(c, v, "postmark", body, _json(body))


HANDLERS = {"ses": handle_ses, "sendgrid": handle_sendgrid, "mailgun": handle_mailgun, "postmark": handle_postmark}


async def _route(handler, request: Request, c: ApiContext, v: Verifiers, secret: str = "") -> JSONResponse:
    body = await request.body()
    return JSONResponse(await handler(c, v, body, lambda name: request.headers.get(name, ""), secret))


@router.post("/ses", responses=RESPONSES)
async def ingest_ses(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Amazon SES notifications delivered by SNS (HTTPS subscription, raw delivery off)."""
    return await _route(handle_ses, request, c, v)


@router.post("/sendgrid", responses=RESPONSES)
async def ingest_sendgrid(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """SendGrid Event Webhook with Signed Event Webhook (ECDSA) turned on."""
    return await _route(handle_sendgrid, request, c, v)


@router.post("/mailgun", responses=RESPONSES)
async def ingest_mailgun(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Mailgun webhooks (v3 JSON, with the signature object)."""
    return await _route(handle_mailgun, request, c, v)


@router.post("/postmark", responses=RESPONSES)
async def ingest_postmark(request: Request, c: ApiContext = Depends(ctx), v: Verifiers = Depends(verifiers)):
    """Postmark webhooks, with basic-auth credentials in the webhook URL."""
    return await _route(handle_postmark, request, c, v)


@router.post("/postmark/{secret}", responses=RESPONSES)
async def ingest_postmark_secret_path(secret: str, request: Request, c: ApiContext = Depends(ctx),
                                      v: Verifiers = Depends(verifiers)):
    """Postmark webhooks, authenticated by a secret path segment."""
    return await _route(handle_postmark, request, c, v, secret)
