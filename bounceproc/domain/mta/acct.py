"""The PowerMTA accounting records a delivery outcome becomes (`powermta.md` §1).

Domain layer: pure, stdlib only. In: an Outcome (what happened to one recipient, or to a queue).
Out: a record dict keyed by PowerMTA field names, the union header of a file's record types, and
CSV lines (RFC 4180, CRLF) in that header's order. `bounceproc pipe` reads these back.

Default columns per type are the v5.0 ones (§1.2). bounceCat comes from the enhanced status code
(§2's code table); `d` rows carry `success`.
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

DLV_FIELDS = ("type", "timeLogged", "timeQueued", "orig", "rcpt", "orcpt", "dsnAction", "dsnStatus",
              "dsnDiag", "dsnMta", "bounceCat", "srcType", "srcMta", "dlvType", "dlvSourceIp",
              "dlvDestinationIp", "dlvEsmtpAvailable", "dlvSize", "vmta", "jobId", "envId", "queue",
              "vmtaPool")
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "d": DLV_FIELDS, "b": DLV_FIELDS, "t": DLV_FIELDS,
    "tq": ("type", "timeLogged", "dsnStatus", "dsnDiag", "dsnMta", "dlvType", "dlvSourceIp",
           "dlvDestinationIp", "vmta", "queue"),
    "r": ("type", "timeLogged", "orig", "rcpt", "orcpt", "srcType", "srcMta", "rcvSourceIp",
          "rcvDestinationIp", "vmta", "jobId", "envId", "vmtaPool"),
}
ACTION = {"d": "relayed", "b": "failed", "t": "delayed"}

# RFC 3463 texts PowerMTA puts in parentheses after the code.
STATUS_TEXT = {
    "2.0.0": "success", "4.0.0": "undefined status", "5.0.0": "undefined status",
    "1.1": "bad destination mailbox address", "1.2": "bad destination system address",
    "1.10": "recipient address has null MX", "2.1": "mailbox disabled, not accepting messages",
    "2.2": "mailbox full", "3.4": "message too big for system", "4.1": "no answer from host",
    "4.2": "bad connection", "4.4": "unable to route", "4.7": "delivery time expired",
    "7.1": "delivery not authorized, message refused", "5.3": "too many recipients",
}
# §2 code table: x.S.D -> bounceCat
_CATEGORY_BY_CODE = {
    "1.1": "bad-mailbox", "1.3": "bad-mailbox", "1.4": "bad-mailbox", "1.6": "bad-mailbox",
    "2.0": "bad-mailbox", "1.2": "bad-domain", "1.10": "bad-domain", "1.7": "invalid-sender",
    "1.8": "invalid-sender", "2.1": "inactive-mailbox", "2.2": "quota-issues",
    "3.3": "content-related", "7.7": "content-related", "3.5": "bad-configuration",
    "4.1": "no-answer-from-host", "4.2": "bad-connection", "4.3": "routing-errors",
    "4.4": "routing-errors", "4.6": "routing-errors", "4.7": "message-expired",
    "5.3": "policy-related", "7.0": "policy-related", "7.1": "policy-related", "7.2": "policy-related",
}


def bounce_category(status: str) -> str:
    if status.startswith("2."):
        return "success"
    tail = status.split(".", 1)[1] if "." in status else ""
    if tail in _CATEGORY_BY_CODE:
        return _CATEGORY_BY_CODE[tail]
    if tail.startswith("6."):
        return "content-related"
    if tail.startswith("5."):
        return "protocol-errors"
    return "other"


def status_with_text(status: str) -> str:
    text = STATUS_TEXT.get(status) or STATUS_TEXT.get(status.split(".", 1)[-1]) or \
        ("success" if status.startswith("2.") else "other")
    return f"{status} ({text})"


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient (`d`, `b`, `t`), to a queue (`tq`) or at reception (`r`)."""
    type: str
    time_logged: float
    orig: str = ""
    rcpt: str = ""
    orcpt: str = ""
    time_queued: float = 0.0
    status: str = ""              # enhanced code "5.1.1"
    diag: str = ""                # "smtp;550 5.1.1 ..." or "x-bounceproc;..."
    remote_host: str = ""         # the MX name
    remote_ip: str = ""
    source_ip: str = ""           # ours, for delivery; the client's for reception
    source_host: str = ""         # client name/ip (srcMta) for reception
    local_ip: str = ""            # listener address (rcvDestinationIp)
    esmtp: str = ""
    size: int = 0
    vmta: str = ""
    pool: str = ""
    job_id: str = ""
    env_id: str = ""
    queue: str = ""
    src_type: str = "smtp"
    category: str = ""            # bounceCat decided by the classifier ("" = from the status code)


def fmt_time(ts: float, iso: bool = True) -> str:
    if not iso:
        return str(int(ts))
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(ts))


def to_record(o: Outcome, iso: bool = True) -> dict[str, str]:
    """The fields of `o` under PowerMTA's names (every known field; the file picks its columns)."""
    mta = f"{o.remote_host} ({o.remote_ip})" if o.remote_host or o.remote_ip else ""
    r = {"type": o.type, "timeLogged": fmt_time(o.time_logged, iso), "orig": o.orig, "rcpt": o.rcpt,
         "orcpt": o.orcpt, "vmta": o.vmta, "vmtaPool": o.pool, "jobId": o.job_id, "envId": o.env_id,
         "queue": o.queue, "srcType": o.src_type}
    if o.type == "r":
        r.update(srcMta=o.source_host, rcvSourceIp=o.source_ip, rcvDestinationIp=o.local_ip)
        return r
    r.update(dsnStatus=status_with_text(o.status) if o.status else "", dsnDiag=o.diag, dsnMta=mta,
             dlvType="smtp", dlvSourceIp=o.source_ip, dlvDestinationIp=o.remote_ip)
    if o.type in ACTION:
        r.update(timeQueued=fmt_time(o.time_queued, iso), dsnAction=ACTION[o.type],
                 bounceCat=o.category or (bounce_category(o.status) if o.status else ""),
                 srcMta=o.source_host, dlvEsmtpAvailable=o.esmtp,
                 dlvSize=str(o.size) if o.type == "d" and o.size else "")
    return r


def columns(rtype: str, spec: str = "*") -> tuple[str, ...]:
    """Columns of one type from a `record-fields` spec: `*`, `*,header_X`, `!field`, or a list."""
    cols: list[str] = []
    for item in (x for x in spec.split(",") if x):
        if item == "*":
            cols.extend(DEFAULT_FIELDS.get(rtype, ("type", "timeLogged")))
        elif item.startswith("!"):
            cols = [c for c in cols if c != item[1:]]
        elif item not in cols:
            cols.append(item)
    if "type" in cols:
        cols.remove("type")
    return ("type", *cols)


def union_header(types: tuple[str, ...], record_fields: dict[str, str]) -> tuple[str, ...]:
    """One header for a file with several record types: the union, first-seen order (§1.4)."""
    seen: dict[str, None] = {}
    for t in types:
        for c in columns(t, record_fields.get(t, "*")):
            seen.setdefault(c)
    return tuple(seen)


def csv_line(header: tuple[str, ...], record: dict[str, str], wanted: tuple[str, ...] | None = None) -> str:
    """One CRLF-terminated CSV row; columns not of this record's type stay empty."""
    buf = io.StringIO()
    keep = set(wanted) if wanted is not None else None
    csv.writer(buf, lineterminator="\r\n").writerow(
        [record.get(c, "") if keep is None or c in keep else "" for c in header])
    return buf.getvalue()
