"""Our tracking header, so a complaint or bounce can be tied back to recipient, list and job.

Domain layer: pure; stdlib only.
The sending core (and any sender that wants it) adds `X-Bounceproc-Ref: v1.<token>` where the
token is base64url (no padding) of compact JSON `{"r": recipient, "l": list_id, "j": job_id}`.
ISPs that redact the recipient in ARF reports usually keep such headers of the enclosed original.
"""
from __future__ import annotations

import base64
import binascii
import json

TRACKING_HEADER = "X-Bounceproc-Ref"
_VERSION = "v1."
MAX_STAMP = 2048


def encode_stamp(recipient: str, list_id: str = "", job_id: str = "") -> str:
    payload = json.dumps({"r": recipient, "l": list_id, "j": job_id}, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    return _VERSION + base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_stamp(value: str) -> dict | None:
    """Header value -> {"r": ..., "l": ..., "j": ...} (all str), or None if it is not ours."""
    if not isinstance(value, str):
        return None
    value = "".join(value.split())
    if not value.startswith(_VERSION) or len(value) > MAX_STAMP:
        return None
    token = value[len(_VERSION):]
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("r", ""), str):
        return None
    return {k: str(data.get(k, "") or "") for k in ("r", "l", "j")}
