"""Recognise auto-replies (RFC 3834 and the usual vacation / out-of-office / challenge signs).

Domain layer: pure; stdlib only.
In: the top-level headers of a message. Out: a short reason string when it is an auto-reply
(it is then not a bounce and must not count against the recipient), else "".

A bounce is also `Auto-Submitted: auto-replied` (Postfix sets it on DSNs), so the caller asks
this only after it found no delivery report; subjects and vendor headers decide the rest.
"""
from __future__ import annotations

import re

_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ \-_]?(?:reply|response|antwort|risposta|respuesta)|autoreply|auto:|"
    r"out of (?:the )?office|abwesenheit|absence|away from|away until|i am away|i'm away|on vacation|"
    r"vacation|r[ée]ponse automatique|absent|message d'absence|fuera de la oficina|ooo\b|"
    r"please confirm your (?:e-?mail|message)|confirm your e-?mail|challenge)", re.I)


def autoreply_reason(headers: dict[str, list[str]]) -> str:
    """Why these headers are those of an auto-reply, or "" if they are not."""
    get = lambda k: (headers.get(k) or [""])[0].strip().lower()  # noqa: E731
    subject = get("subject")
    auto = get("auto-submitted")
    if get("x-autoreply") or get("x-autorespond") or get("x-autoresponder"):
        return "x-autoreply header"
    if get("precedence") == "auto_reply":
        return "precedence: auto_reply"
    if get("x-auto-response-suppress") and _SUBJECT.match(subject):
        return "auto-response subject"
    if auto.startswith("auto-replied") and _SUBJECT.match(subject):
        return "auto-submitted: auto-replied"
    if _SUBJECT.match(subject) and not re.search(r"undeliver|failure|delivery status|returned", subject):
        return "auto-reply subject"
    return ""
