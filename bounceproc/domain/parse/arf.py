"""Read abuse reports: RFC 5965 ARF (and RFC 6591 auth-failure), plus the non-ARF variants ISPs send.

Domain layer: pure; stdlib only.
In: the parsed message tree. Out: an `ArfReport` (feedback type, user agent, arrival date,
source IP, reported domain, original mail-from, the reported recipients) or None.

Variants understood besides message/feedback-report:
- Microsoft JMRP: multipart/mixed with the complained message enclosed, the recipient in
  `X-HmXmrOriginalRecipient` of the enclosed message (feedback type abuse).
- Apple Mail "unsubscribe" mails (`X-Apple-Unsubscribe: true`), reported as `opt-out`; the
  complaining recipient is the From of that mail.
Recipients redacted by the ISP are recovered later (message.py) from the enclosed original.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from bounceproc.domain.parse.dsn import address_of
from bounceproc.domain.parse.mime import ENCLOSED_TYPES, Part

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9\-]*)\s*:\s?(.*)$")
MAX_FIELDS = 500


@dataclass
class ArfReport:
    feedback_type: str = ""
    user_agent: str = ""
    arrival_date: str = ""
    source_ip: str = ""
    reported_domain: str = ""
    original_mail_from: str = ""
    recipients: list[str] = field(default_factory=list)
    original: Part | None = None        # enclosed original message (or its headers)
    variant: str = "arf"                # "arf" | "jmrp" | "apple-unsubscribe"


def report_fields(text: str) -> dict[str, list[str]]:
    """message/feedback-report text -> {lowercased name: [values]} (fields may repeat)."""
    out: dict[str, list[str]] = {}
    name = ""
    for n, line in enumerate(text.split("\n")):
        if n > MAX_FIELDS:
            break
        if line[:1] and line[:1] in " \t" and name and out.get(name):
            out[name][-1] += " " + line.strip()
            continue
        m = _FIELD.match(line)
        if m:
            name = m.group(1).lower()
            out.setdefault(name, []).append(m.group(2).strip())
        else:
            name = ""
    return out


def _enclosed(root: Part) -> Part | None:
    for p in root.walk():
        if p is not root and p.ctype in ENCLOSED_TYPES and p.children:
            return p.children[0]
    return None


def parse_arf(root: Part) -> ArfReport | None:
    """The abuse report in this message, or None if it is not one."""
    report_part = None
    for p in root.walk():
        if p.ctype == "message/feedback-report":
            report_part = p
            break
    if report_part is None and root.ctype == "multipart/report" and \
            root.params.get("report-type", "").lower() == "feedback-report":
        for p in root.children[1:2]:
            report_part = p
    if report_part is not None:
        f = report_fields(report_part.text())
        one = lambda k: f.get(k, [""])[0]  # noqa: E731
        return ArfReport(
            feedback_type=one("feedback-type").lower().split(";")[0].strip() or "abuse",
            user_agent=one("user-agent"), arrival_date=one("arrival-date") or one("received-date"),
            source_ip=one("source-ip"), reported_domain=one("reported-domain"),
            original_mail_from=address_of(one("original-mail-from")),
            recipients=[a for a in (address_of(v) for v in f.get("original-rcpt-to", [])
                                    + f.get("removal-recipient", [])) if a][:MAX_FIELDS],
            original=_enclosed(root))
    if root.get("x-apple-unsubscribe").strip().lower() == "true":
        return ArfReport(feedback_type="opt-out", user_agent="Apple Mail",
                         arrival_date=root.get("date"), variant="apple-unsubscribe",
                         recipients=[address_of(root.get("from"))] if root.get("from") else [])
    if root.ctype.startswith("multipart/"):
        original = _enclosed(root)
        if original is not None and original.get("x-hmxmroriginalrecipient"):
            return ArfReport(feedback_type="abuse", user_agent="JMRP",
                             source_ip=original.get("x-reporter-ip"), arrival_date=root.get("date"),
                             recipients=[address_of(original.get("x-hmxmroriginalrecipient"))],
                             original=original, variant="jmrp")
    return None
