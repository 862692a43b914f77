"""Read RFC 3464 delivery-status fields: one block per recipient.

Domain layer: pure; stdlib only.
In: the text of a message/delivery-status part (or of a text part that carries the same
fields, as some MTAs send). Out: the per-message fields and a list of per-recipient field
dicts (lowercased names, unfolded values), in order.

Broken variants accepted: no blank line between blocks (a new Final-Recipient starts a new
block), Original-Recipient without Final-Recipient, `Status:` with text after the code,
continuation lines of Diagnostic-Code, CR/CRLF endings (normalised by the caller), the whole
block indented, a comment after the address, a Diagnostic-Code continued on unindented lines.
"""
from __future__ import annotations

import re
import textwrap

from bounceproc.domain.parse.mime import decode_header

# Recipients read from one delivery-status part. A DSN for a message to a whole list at one
# domain carries one block per recipient (~150 bytes each): 10,000 fit in the sink's default
# 10 MiB message. Whatever is beyond is reported as cut (message.Report.cuts -> quarantine).
MAX_RECIPIENTS = 10_000
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9\-]*)\s*:\s?(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")      # "x@example.org (Jane)": an RFC 5322 comment


def parse_fields(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Delivery-status text -> (per-message fields, [per-recipient fields])."""
    message: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    name = ""
    if text.lstrip("\n")[:1] in (" ", "\t"):
        # the whole block indented (a gateway that quotes the fields): continuation lines are
        # those indented further than the fields themselves
        text = textwrap.dedent(text)
    for line in text.split("\n"):
        if not line.strip():
            if current:
                _close(current, message, blocks)
                current = {}
            name = ""
            continue
        if line[:1] in " \t":
            if name and name in current:
                current[name] += " " + line.strip()
            continue
        m = _FIELD.match(line)
        if not m:
            if name == "diagnostic-code" and name in current:
                # a long reply broken onto unindented lines (the folding lost on the way)
                current[name] += " " + line.strip()
                continue
            name = ""
            continue
        name = m.group(1).lower()
        value = m.group(2).strip()
        if (name == "final-recipient" and "final-recipient" in current) or (
                name == "original-recipient" and ("original-recipient" in current or _done_after_final(current))):
            _close(current, message, blocks)
            current = {}
        if name not in current:
            current[name] = value
        if len(blocks) >= MAX_RECIPIENTS:
            break
    if current:
        _close(current, message, blocks)
    return message, blocks[:MAX_RECIPIENTS]


def _done_after_final(fields: dict[str, str]) -> bool:
    """Action or Status came after this block's Final-Recipient (so an Original-Recipient now
    starts the next block; Amazon SES puts Action first, Postfix puts Original right after Final)."""
    keys = list(fields)
    if "final-recipient" not in keys:
        return False
    return any(k in ("action", "status") for k in keys[keys.index("final-recipient") + 1:])


def _close(fields: dict[str, str], message: dict[str, str], blocks: list[dict[str, str]]) -> None:
    # A later block with Action/Status but no recipient field is still a recipient block (its
    # address then comes from the VERP envelope or the enclosed original).
    if any(k in fields for k in _RECIPIENT_FIELDS) or ((blocks or message) and (
            "status" in fields or "action" in fields)):
        blocks.append(fields)
    else:
        for k, v in fields.items():
            message.setdefault(k, v)


def address_of(value: str) -> str:
    """`rfc822; <User@Example.com>` -> `User@Example.com` (the type prefix and brackets dropped)."""
    value = decode_header(value or "").strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    value = _COMMENT.sub("", value).strip().strip("<>").strip()
    if "<" in value and ">" in value:
        value = value[value.find("<") + 1:value.find(">")]
    return value.strip().strip("'\"")


def recipient_of(fields: dict) -> tuple[str, str]:
    """(address, field it came from) of one per-recipient block: Final-Recipient, else
    Original-Recipient, else X-Actual-Recipient. A field present but empty ("rfc822;", as some
    gateways write Final-Recipient when they only know the original) gives way to the next, and so
    does a name that is no mail address ("LOCAL; carol", an X.400 name) when another field has one."""
    found = [(a, name) for name in _RECIPIENT_FIELDS if (a := address_of(fields.get(name, "")))]
    return next((f for f in found if "@" in f[0]), found[0] if found else ("", "final-recipient"))


def mta_name(value: str) -> str:
    """A Remote-MTA field's host: `dns; mx.example.com [192.0.2.1]` and Sun / Oracle Messaging
    Server's `dns;mx.example.com (TCP|192.0.2.2|48211|192.0.2.1|25) (banner)` -> `mx.example.com`."""
    name = address_of(value)
    m = re.match(r"([^\s(\[]+)\s*[(\[]", name)
    return (m.group(1) if m else name).rstrip(".")


def looks_like_dsn(text: str) -> bool:
    """Text that carries delivery-status fields (for MTAs that send them as text/plain)."""
    low = text[:20000].lower()
    return ("final-recipient:" in low or "original-recipient:" in low) and (
        "\nstatus:" in low or "\naction:" in low)
