"""Sign ESP webhook payloads the way each provider does, with keys the test makes (no tests here).

- `CertServer`: a real HTTP server on loopback that serves an SNS-style signing certificate (and
  records the SubscribeURL confirmations it receives).
- `sns_envelope(...)`: an SNS Notification / SubscriptionConfirmation around a message, signed
  with SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA).
- `SendGridSigner`, `mailgun_signature`, and sample payloads modelled on each provider's
  documented examples.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

from bp_testing import HTTPRequest, LoopbackHTTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from bounceproc.entrypoints.http.esp_verify import sns_string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"


def _cert(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.amazonaws.com")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class CertServer:
    """Serves /cert.pem (the signing certificate) and records GETs of /confirm?... (SubscribeURL)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = _cert(self.key)
        self.confirmed: list[str] = []
        self.cert_fetches = 0
        self.http = LoopbackHTTP(self._answer)
        self.origin = self.http.url()

    def _answer(self, request: HTTPRequest) -> tuple[int, dict, bytes]:
        if request.method == "GET" and request.path == "/cert.pem":
            self.cert_fetches += 1
            return 200, {}, self.pem
        if request.method == "GET" and request.path.startswith("/confirm"):
            self.confirmed.append(request.path)
            return 200, {}, b"<ConfirmSubscriptionResponse/>"
        return 404, {}, b""

    def close(self) -> None:
        self.http.close()

    def sign(self, msg: dict, version: str = "1", cert_url: str | None = None) -> dict:
        msg = dict(msg, SignatureVersion=version, SigningCertURL=cert_url or f"{self.origin}/cert.pem")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        msg["Signature"] = base64.b64encode(self.key.sign(sns_string_to_sign(msg), padding.PKCS1v15(), digest)).decode()
        return msg


def iso(at: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if at is None else at, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def sns_notification(message: dict, topic: str = TOPIC, at: float | None = None) -> dict:
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
            "Message": json.dumps(message), "Timestamp": iso(at),
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}


def ses_bounce(address: str, status: str, diagnostic: str, bounce_type: str = "Permanent",
               sub_type: str = "General", event_publishing: bool = False) -> dict:
    kind = {"eventType": "Bounce"} if event_publishing else {"notificationType": "Bounce"}
    return {**kind, "bounce": {
        "bounceType": bounce_type, "bounceSubType": sub_type, "feedbackId": f"fb-{uuid.uuid4()}",
        "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": status,
                               "diagnosticCode": diagnostic}],
        "timestamp": iso(), "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"},
        "mail": {"timestamp": iso(), "messageId": f"ses-{uuid.uuid4()}", "source": "news@sender.example.net",
                 "destination": [address]}}


def ses_complaint(address: str) -> dict:
    return {"notificationType": "Complaint", "complaint": {
        "complainedRecipients": [{"emailAddress": address}], "timestamp": iso(),
        "feedbackId": f"fb-{uuid.uuid4()}", "userAgent": "Yahoo!-Mail-Feedback/2.0",
        "complaintFeedbackType": "abuse", "arrivalDate": iso()},
        "mail": {"timestamp": iso(), "messageId": f"ses-{uuid.uuid4()}", "source": "news@sender.example.net",
                 "destination": [address]}}


class SendGridSigner:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, at: int | None = None) -> dict:
        ts = str(int(time.time()) if at is None else at)
        sig = self.key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": ts, "Content-Type": "application/json"}


def sendgrid_event(event: str, email: str, **fields) -> dict:
    return {"email": email, "timestamp": int(time.time()), "event": event,
            "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            "sg_message_id": f"{uuid.uuid4().hex}.filter0001", "smtp-id": f"<{uuid.uuid4().hex}@sender.example.net>",
            **fields}


def mailgun_signature(key: str, at: int | None = None, token: str | None = None) -> dict:
    ts = str(int(time.time()) if at is None else at)
    token = token or uuid.uuid4().hex * 2
    return {"timestamp": ts, "token": token,
            "signature": hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()}


def mailgun_failed(address: str, code: int, message: str, severity: str = "permanent",
                   enhanced: str = "") -> dict:
    return {"event": "failed", "id": uuid.uuid4().hex[:22], "timestamp": time.time(), "severity": severity,
            "reason": "bounce", "recipient": address,
            "delivery-status": {"code": code, "message": message, "enhanced-code": enhanced,
                                "attempt-no": 1, "mx-host": "mx.example.com", "description": ""},
            "message": {"headers": {"message-id": f"{uuid.uuid4().hex}@sender.example.net",
                                    "from": "news@sender.example.net", "to": address, "subject": "News"}}}
