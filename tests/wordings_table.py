"""Read the tables of reference/wordings.md into test entries (wording, code, expected reasons, class).

Test helper, not product code. Every backticked fragment of a row's text column is one entry; when a
row lists as many reasons (or classes, or codes) as fragments, they are paired in order, otherwise
every listed reason is accepted. Placeholders (`<addr>`, `<ip>`, `<dom>`, `<host>`, `N`, `…`) are
filled with documentation values. The stage named in bold outside the fragment ("**in reply to end
of DATA**") is appended the way Postfix writes it. §0, §5 and §6 are explanations, not wordings.
Each entry of a provider's table carries that provider's domain as its `receiver` (what a DSN's
Final-Recipient would name), so that rules for one receiver are tested where they apply and only there.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REASONS = {"userunknown", "hostunknown", "hasmoved", "notaccept", "suspend", "mailboxfull", "exceedlimit",
           "mesgtoobig", "systemfull", "filtered", "rejected", "blocked", "badreputation", "requireptr",
           "spamdetected", "virusdetected", "contenterror", "policyviolation", "authfailure", "securityerror",
           "failedstarttls", "norelaying", "toomanyconn", "speeding", "expired", "networkerror", "systemerror",
           "mailererror", "notcompliantrfc", "syntaxerror", "onhold", "undefined"}
WORDINGS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "wordings.md"
CLASSES = ("DNS-TEMP", "TEMP-final", "ADDR", "MBOX", "SNDR", "TEMP")
SOFT_ONLY = {"SNDR", "TEMP", "DNS-TEMP", "TEMP-final", "MBOX"}

_FILL = [("<addr>", "user@example.com"), ("<ip>", "192.0.2.1"), ("<dom>", "example.com"),
         ("<host>", "mx.example.com"), ("<h>", "mx.example.com"), ("<name>", "group"), ("<u>", "user"),
         ("<reply>", "550 5.7.1 rejected"), ("<zone>", "zen.spamhaus.org"), ("<path>", "/var/mail/user"),
         ("<file>", "/var/mail/user"), ("<gai error>", "Name or service not known"), ("<stage>", "sending message body"),
         ("<CMD>", "RCPT TO"), ("<reason>", "connection timed out"), ("<id>", "abc123"),
         ("<TXT reason>", "listed"), ("<class>", "Client host"), ("$recipientDomain", "example.com"), ("$range", "/64"),
         ("<addr@i.softbank.jp>", "user@i.softbank.jp"), ("…", " ")]


# A provider / carrier (first word of its cell, lowercased) or a section -> a domain it receives for.
_RECEIVERS = {"gmx/web.de/ionos": "gmx.net", "gmx": "gmx.net", "web.de": "web.de", "ionos": "ionos.de",
              "t-online": "t-online.de", "freenet": "freenet.de", "lycos": "lycos.com", "compuserve": "compuserve.com",
              "orange/wanadoo": "orange.fr", "interia": "interia.pl", "yandex": "yandex.ru", "mail.ru": "mail.ru",
              "ru-center": "nic.ru", "netease": "163.com", "qq": "qq.com", "qq/tencent": "qq.com",
              "coremail": "coremail.cn", "docomo": "docomo.ne.jp", "au": "ezweb.ne.jp", "softbank": "softbank.ne.jp"}
_SECTION_RECEIVERS = {"1.1": "gmail.com", "1.2": "outlook.com", "1.4": "yahoo.com", "1.5": "icloud.com",
                      "1.11": "zoho.com"}


@dataclass(frozen=True)
class Entry:
    section: str
    text: str            # the wording as a server would write it
    reply: str           # SMTP reply code ("" when none given)
    status: str          # enhanced status code ("" when none given)
    reasons: frozenset   # accepted reasons (empty: no reason stated)
    classes: frozenset   # accepted classes (ADDR, MBOX, SNDR, TEMP, DNS-TEMP, TEMP-final)
    line: int
    receiver: str = ""   # the provider's domain ("" for gateways, MTAs, blocklists)

    @property
    def soft_only(self) -> bool:
        return bool(self.classes) and self.classes <= (SOFT_ONLY - {"MBOX"})

    @property
    def must_be_hard(self) -> bool:
        return self.classes == {"ADDR"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _split_alternatives(cell: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s+/\s+|,\s+(?=[a-zA-Z])", cell) if p.strip()]


def _reasons(cell: str) -> list[frozenset]:
    parts = [p for p in re.split(r"\s+/\s+", cell) if p.strip()]
    return [frozenset(re.findall(r"[a-z]+", p)) & REASONS for p in parts]


def _classes(cell: str) -> tuple[list[frozenset], dict[str, str]]:
    """Per-alternative classes, and overrides by code ("421: TEMP", "4xx: TEMP")."""
    overrides = dict((k, v) for k, v in re.findall(r"\(([0-9x]{3}|4xx|5xx)\s*:\s*([A-Z-]+)\)", cell))
    base = re.sub(r"\([^)]*\)", "", cell)
    parts = [p for p in re.split(r"\s+/\s+", base) if p.strip()]
    out = []
    for p in parts:
        found = set()
        rest = p
        for c in CLASSES:
            if c in rest:
                found.add(c)
                rest = rest.replace(c, "")
        out.append(frozenset(found))
    return out, overrides


def _codes(cell: str) -> list[tuple[str, str]]:
    """(reply, status) pairs named in a code cell, in order."""
    out = []
    for chunk in re.split(r"\s+/\s+|,\s+|\bor\b", re.sub(r"\([^)]*\)", "", cell)):
        reply = re.search(r"(?<![\d.])([245]\d\d)(?![\d.])", chunk)
        status = re.search(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d])", chunk)
        if reply or status:
            out.append((reply.group(1) if reply else "", status.group(1) if status else ""))
    return out


def _fill(text: str) -> str:
    for k, v in _FILL:
        text = text.replace(k, v)
    text = re.sub(r"\bN\b", "10", text)
    return re.sub(r"\s+", " ", text).strip()


def parse(path: Path) -> list[Entry]:
    lines = path.read_text(encoding="utf-8").splitlines()
    entries: list[Entry] = []
    section = ""
    header: list[str] | None = None
    for n, line in enumerate(lines, 1):
        if line.startswith("#"):
            m = re.match(r"#+\s+(\d+(?:\.\d+)?)\.?\s+(.*)", line)
            section = f"{m.group(1)} {m.group(2)[:40]}" if m else line.strip("# ")[:40]
            header = None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line) <= set("|-: "):
            continue
        if section.split(" ")[0].split(".")[0] in ("0", "5", "6"):
            continue
        entries.extend(_row(section, header, cells, n))
    return entries


def _col(header: list[str], *names: str) -> int | None:
    for i, h in enumerate(header):
        if any(h == x or h.startswith(x) for x in names):
            return i
    return None


def _row(section: str, header: list[str], cells: list[str], n: int) -> list[Entry]:
    if len(cells) != len(header):
        return []
    t = _col(header, "text / fragment", "tail", "fragment", "code")
    r = _col(header, "reason")
    k = _col(header, "class")
    c = _col(header, "code", "postfix status")
    if c == t:
        c = None
    if t is None:
        return []
    who = _col(header, "provider", "carrier")
    receiver = _RECEIVERS.get(cells[who].split(" ")[0].lower(), "") if who is not None else ""
    receiver = receiver or _SECTION_RECEIVERS.get(section.split(" ")[0], "")
    text_cell = cells[t]
    if re.search(r"amazon ses|bouncetype", " ".join(cells).lower()):
        return []    # SES API enumerations, not wordings
    # `CODE` `text` written side by side is one reply ("ETP100 Invalid recipient").
    text_cell = re.sub(r"`([A-Z0-9_:]{3,12})` `([^`]+)`", r"`\1 \2`", text_cell)
    frags = [f for f in re.findall(r"`([^`]+)`", text_cell)
             if f not in ("2nd", "obs") and not f.startswith(("…", "...")) and not re.fullmatch(r"[a-z]+_[A-Za-z_]+|[a-z]+[A-Z]+_\w+", f)]
    if not frags:
        return []
    if section.startswith("3"):
        # "All `blocked`, class SNDR", unless the row names another reason ("→ spamdetected").
        named = frozenset(re.findall(r"→ ([a-z]+)", " ".join(cells))) & REASONS
        reasons, classes, overrides = [named or frozenset({"blocked"})], [frozenset({"SNDR"})], {}
    elif r is None or k is None:
        return []
    else:
        reasons = _reasons(cells[r])
        classes, overrides = _classes(cells[k])
    codes = _codes(cells[c]) if c is not None else []
    stage = ""
    low = text_cell.lower()
    if "in reply to end of data" in low:
        stage = " (in reply to end of DATA command)"
    elif "in reply to rcpt to" in low:
        stage = " (in reply to RCPT TO command)"
    if header[t] == "tail":
        frags = [f"Host or domain name not found. Name service error for name=example.com type=MX: {f}"
                 if not f.lower().startswith("name service") else f"Host or domain name not found. {f}"
                 for f in frags]
    out = []
    for i, frag in enumerate(frags):
        rs = reasons[i] if len(reasons) == len(frags) else frozenset().union(*reasons) if reasons else frozenset()
        cs = classes[i] if len(classes) == len(frags) else frozenset().union(*classes) if classes else frozenset()
        reply, status = (codes[i] if len(codes) == len(frags) else codes[0]) if codes else ("", "")
        text = _fill(frag)
        own = re.match(r"^#?([245]\d\d)\b", text)
        if own:
            reply = own.group(1)
        own_status = re.search(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d])", text)
        if own_status:
            status = own_status.group(1)
        code = reply or (status[0] + "xx" if status else "")
        for key, cls in overrides.items():
            if code and (key == code or (key.endswith("xx") and code.startswith(key[0]))):
                cs = frozenset({cls})
        out.append(Entry(section, text + stage, reply, status, rs, cs, n, receiver))
    return out


def as_diagnostic(e: Entry) -> str:
    """The entry as an MTA's Diagnostic-Code would carry it."""
    prefix = " ".join(x for x in (e.reply, e.status) if x and x not in e.text)
    return f"smtp; {prefix} {e.text}".replace("  ", " ")


def entries_or_skip() -> list[Entry]:
    """The entries of reference/wordings.md, read in place; the test is skipped where the reference
    is absent, and fails under CI, which must have it."""
    if not WORDINGS.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"reference/wordings.md absent at {WORDINGS} (CI must have it)")
        pytest.skip(f"reference/wordings.md absent at {WORDINGS}")
    return parse(WORDINGS)
