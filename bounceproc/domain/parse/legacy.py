"""Read non-standard bounces: find each failed address and the text that explains it.

Domain layer: pure; stdlib and flufl.bounce only.
In: the human-readable notification text of a bounce (qmail, Exim, old Sendmail, Exchange,
Yahoo, Gmail, list managers ... which send no message/delivery-status), and the addresses that
must not be taken for recipients (the bounce's own From/To). Out: [(address, text)] in order,
where text is the part of the notification that belongs to that address.

How: the notification ends where the returned original begins (a separator line such as
"--- Below this line is a copy of the message." or the first Received:/Return-Path: header
line). Every distinct address in what remains starts a section that runs to the next distinct
address; text before the first address is the preamble, kept for messages that state the
cause once for all recipients. flufl.bounce is asked only when our scan finds no address.
Also here: `ses_notification`, the JSON of Amazon SES notifications delivered by e-mail.
"""
from __future__ import annotations

import re

from bounceproc.domain.lazy_regex import lazy

MAX_TEXT = 400_000          # characters of a notice's text read (1,000 recipients' sections)
MAX_RECIPIENTS = 1_000     # recipients read from a text notice (beyond: reported as cut)
MAX_SECTION = 1200

ADDRESS = re.compile(r"(?<![\w.+\-=/])([A-Za-z0-9][A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]{0,63}@"
                     r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w\-])")
# A line where the returned original starts (matched at the start of a stripped line). The run of
# dashes is possessive ({2,}+): lines of 70 dashes otherwise backtrack through every length.
_CUT_LINE = lazy(
    r"(?:[-=_*#|]{2,}+ ?(?!.{0,30}transcript|.{0,30}\bresend\b).{0,40}?(?:original|copy of|below this line|returned message|undelivered message|"
    r"message header|headers? of|message text|included|unsent message|rejected message|follows|"
    r"bounced message|the header|attached message|message was|your message|text of"
    r"|\u539f(?:\u59cb)?\u90ae\u4ef6|\u88ab\u9000\u56de|\uc6d0\ubcf8|\u5143\u306e\u30e1\u30c3\u30bb\u30fc\u30b8)"   # the CJK headings below, between dashes
    r"|(?:return-path|received|dkim-signature|message-id|delivered-to|x-original-to|domainkey-signature"
    r"|mime-version|x-mailer)\s*:\s*\S"
    r"|(?:original|the original|unsent|returned|your) message(?: follows| header| was)?\s*:?\s*$"
    r"|(?:original|returned|unsent|undelivered) message"
    r"|(?:below is a copy of|possibly truncated) (?:the )?original message"     # OpenSMTPD, GroupWise
    # the returned original's heading in Chinese, Korean and Japanese notices: 被退回(的)邮件 /
    # 原始邮件 / 原邮件 ("returned / original mail"), 원본 메일 / 원본 메시지, 元のメッセージ
    r"|\u88ab\u9000\u56de(?:\u7684)?\u90ae\u4ef6|\u539f(?:\u59cb)?\u90ae\u4ef6|\uc6d0\ubcf8 ?(?:\uba54\uc77c|\uba54\uc2dc\uc9c0)"
    r"|\u5143\u306e\u30e1\u30c3\u30bb\u30fc\u30b8"
    r"|\[?attachment:)", re.I)
_CUT_FIRST = frozenset("-=_*#|rdmxoturybpORDMXUTYBP[\u88ab\u539f\uc6d0\u5143")
MAX_LINES = 600
_SKIP_LINE = lazy(r"(?:contact|postmaster|please send|for further|help desk|helpdesk|information|"
                  r"mail from:?\s*<?|envelope-from|sender:|from:|reply-to|x-sender|generated (?:from|by)|expanded from|"
                  r"message-id|in-reply-to|references|"
                  # the new address a reply gives ("551 User not local; please try <new@x>",
                  # "has moved to"): another mailbox, never this recipient
                  r"\btry\b|forward(?:ed|ing)? to|moved to|new (?:e-?mail )?address)", re.I)
_SENDER_BEFORE = re.compile(r"(?:sent by|sender|from|originally sent|written by)\s*:?\s*$", re.I)
_NON_RECIPIENT = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailer|daemon|root|noreply|no-reply|"
                            r"abuse|bounce|bounces)@", re.I)


# Sun / Oracle Communications Messaging Server quotes the returned message's header fields,
# indented, above its recipient list ("This report relates to a message you sent with the following
# header fields:" then "  Message-id: <...>", "  To: ..."): a quote, neither where the original
# starts nor a list of recipients (fixtures/dsn/sun-messaging-over-quota-no-dsn.eml).
# The intro may be wrapped anywhere ("... with the following header\nfields:").
_QUOTED_HEADERS_INTRO = re.compile(r"with\s+the\s+following\s+header\s+fields:?[ \t]*$", re.I)
_HEADER_FIELDS = re.compile(r"header\s+fields", re.I)


def _quoted_header_lines(lines: list[str]) -> list[bool]:
    """For each line: is it in an indented block of header fields quoted under a line such as
    "... with the following header fields:"."""
    out = []
    state = 0           # 0 outside, 1 after the intro line, 2 inside the indented block
    prev = ""
    for line in lines:
        if state == 0:
            out.append(False)
            if "fields" in line and _QUOTED_HEADERS_INTRO.search(prev + " " + line):
                state = 1
            prev = line
            continue
        if not line.strip():
            out.append(False)
            state = 0 if state == 2 else 1
        elif line[:1] in (" ", "\t"):
            out.append(True)
            state = 2
        else:
            out.append(False)
            state = 0
    return out


def without_quoted_headers(text: str) -> str:
    """`text` with quoted header-field blocks (see _quoted_header_lines) blanked out."""
    if not _HEADER_FIELDS.search(text):
        return text
    lines = text.split("\n")
    return "\n".join("" if q else line for line, q in zip(lines, _quoted_header_lines(lines)))


def notification_text(text: str) -> str:
    """The text up to where the returned original message starts.

    A line that goes on with the sentence of the line above (it starts in lower case, and the line
    above ends in a word or a comma), or whose sentence goes on in the line below, is prose,
    whatever its first words: a notice wrapped at another width puts "returned message." at the
    start of a line (Postfix's "delete your own text from the attached\nreturned message.") or
    ends one with "The original message was" (Courier's "... was\nreceived on ...")."""
    text = text[:MAX_TEXT]
    pos = 0
    seen_text = False
    lines = text.split("\n")
    quoted = _quoted_header_lines(lines[:MAX_LINES]) if _HEADER_FIELDS.search(text) else []
    prev = ""
    for n, line in enumerate(lines):
        if n >= MAX_LINES:
            break
        stripped = line.lstrip(" \t>")
        # Cheap first-character test before the regex: most lines cannot start a cut.
        if stripped and stripped[0] in _CUT_FIRST and seen_text and _CUT_LINE.match(stripped) and not (
                quoted and quoted[n]) and not _continues(prev, stripped) and not (
                n + 1 < len(lines) and _runs_on(stripped, lines[n + 1])):
            return text[:pos]
        if stripped.strip():
            seen_text = True
        prev = line
        pos += len(line) + 1
    return text


def _continues(prev: str, stripped: str) -> bool:
    """`stripped` (a line without its indent) goes on with the sentence of the line `prev`."""
    tail = prev.rstrip()
    return stripped[0].islower() and bool(tail) and (tail[-1].isalnum() or tail[-1] == ",")


_FIELD_LINE = re.compile(r"[!-9;-~]+:")


def _runs_on(stripped: str, nxt: str) -> bool:
    """The sentence of `stripped` (not a header field) goes on in the line `nxt`, unindented and
    in lower case."""
    tail = stripped.rstrip()
    return bool(tail) and tail[-1].isalnum() and nxt[:1].islower() and not _FIELD_LINE.match(stripped)


_BARE = re.compile(r"[\s<>\"'*\-\u2022,;:()\[\]]*")


# on the recipient's line (Postfix) or one of the two below it (Sendmail: "(reason: …)" then
# "(expanded from: <…>)")
_EXPANDED_FROM = re.compile(r"^(?:[^\n]*\n){0,2}?[^\n]*?\(expanded from:?\s+<?([^\s<>()]+@[^\s<>()]+?)>?\)", re.I)


def as_sent(secs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Postfix's "<staff7@mail.example.jp> (expanded from <contact@example.jp>):" (Sendmail's
    "(expanded from: <…>)" on a line below): the address we sent
    to is the one the alias expanded from, and that is the recipient to record, unless several
    sections name the same one (a group expanded to its members: one dead member must not
    suppress the group) or it is another section's recipient."""
    origin = {a.lower(): m.group(1) for a, sec in secs if (m := _EXPANDED_FROM.match(sec.lstrip()))}
    counts: dict[str, int] = {}
    for o in origin.values():
        counts[o.lower()] = counts.get(o.lower(), 0) + 1
    named = {a.lower() for a, _ in secs}
    return [(o, sec) if (o := origin.get(a.lower())) and counts[o.lower()] == 1 and o.lower() not in named
            else (a, sec) for a, sec in secs]


def sections(text: str, exclude: set[str]) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(address, section text)]) for the distinct addresses in the notification.

    A section runs from a line naming a recipient to the next line naming another. An address
    named again further on (Exchange 2010-2019 lists the recipients, then repeats each above its
    server reply under "Diagnostic information for administrators") gets each of its stretches,
    joined. A recipient alone on its line right above another (a list: Domino's "was not delivered
    to:" / addresses / "because:" / cause) shares the text after the list."""
    found: list[tuple[int, str]] = []      # (line start, address) of every line naming a recipient
    first: dict[str, str] = {}             # lowercased -> address as first written, in order
    seen: set[str] = set()
    skipped: set[str] = set()
    prev_end = -1
    for m in ADDRESS.finditer(text):
        addr = m.group(1).strip(".")
        low = addr.lower()
        gap, prev_end = m.start() - prev_end if prev_end >= 0 else 0, m.end()
        if 0 < gap <= 4 and not text[m.start() - gap:m.start()].strip(" \t<"):
            # "a@x <b@y>": one mailbox written as display name and address (Exim "incorrectly
            # constructed" notices, corpus:maildir/bsd/lhost-exim-52.eml), not two recipients.
            if low not in first:
                skipped.add(low)
            continue
        if low in skipped or low in exclude or _NON_RECIPIENT.match(low):
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        if low in seen:
            if found and found[-1][0] != line_start and found[-1][1].lower() != low:
                found.append((line_start, first[low]))     # named again after another recipient
            continue
        line = text[line_start:m.start()]
        if _SKIP_LINE.search(line):
            continue
        if not line.strip(" \t<\"'"):
            # Alone on its line: the line before may say whose address it is (Exim: "A message
            # sent by\n  <sender>\ncould not be delivered").
            prev = text[text.rfind("\n", 0, max(0, line_start - 1)) + 1:max(0, line_start - 1)]
            if _SENDER_BEFORE.search(prev):
                skipped.add(low)
                continue
        seen.add(low)
        first[low] = addr
        found.append((line_start, addr))
        if len(first) >= MAX_RECIPIENTS:
            break
    if not found:
        return text, []
    stretches: dict[str, list[str]] = {}
    for n, (start, addr) in enumerate(found):
        end = found[n + 1][0] if n + 1 < len(found) else len(text)
        if end <= start:
            end = text.find("\n\n", start + 1)
            end = len(text) if end < 0 else end
        stretches.setdefault(addr.lower(), []).append(text[start:end])
    out = []
    for low, addr in first.items():
        parts = stretches[low]
        out.append((addr, "\n".join(parts)[:MAX_SECTION]))
    # A list of addresses alone on their lines shares what follows the list.
    for n in range(len(out) - 2, -1, -1):
        addr, sec = out[n]
        if len(stretches[addr.lower()]) == 1 and _BARE.fullmatch(sec.replace(addr, "")) is not None:
            nxt = out[n + 1][1]
            rest = nxt.split("\n", 1)[1] if "\n" in nxt.strip("\n") else ""
            if rest.strip():
                out[n] = (addr, (sec.rstrip("\n") + "\n" + rest)[:MAX_SECTION])
    return text[:found[0][0]], out


# MailMarshal (Trustwave) states the cause BEFORE the recipients it applies to: "Could not be
# delivered because of" / the reply / "The following recipients were affected:" / the indented
# addresses; a notice may hold several such blocks, and what follows an address ("Additional
# Information", Remote-MTA lines) is not its cause (fixtures/dsn/mailmarshal-user-unknown.eml).
_CAUSE_THEN_LIST = re.compile(
    r"^[ \t]*could not be delivered because of:?[ \t]*\n(?P<cause>(?:.*\n){1,12}?)"
    r"[ \t]*the following recipients? (?:were|was) affected:?[ \t]*\n"
    r"(?P<list>(?:[ \t]*\n)?(?:[ \t]+\S+@\S+[ \t]*(?:\n|$))+)",
    re.I | re.M)


# Openwave InterMail / Netscape-iPlanet Messaging Server (Verizon, BigPond-era notices) do the same:
# "This Message was undeliverable due to the following reason:" / the cause in a paragraph or
# more (no address in it) / optionally "The following recipients did not receive this message:" /
# the addresses alone on their lines; the "Please reply to Postmaster@..." after the list is not a
# cause (fixtures/dsn/intermail-queue-expired.eml, intermail-over-quota-list.eml).
_REASON_THEN_LIST = re.compile(
    r"^[ \t]*this message was undeliverable due to the following reason:?[ \t]*\n"
    r"(?P<cause>(?:[^@\n]*\n){1,30}?)"
    r"(?:[ \t]*the following recipients? did not receive this message:?[ \t]*\n)?"
    r"(?P<list>(?:[ \t]*\n)?(?:[ \t]*<?[^\s<>@]+@[^\s<>]+>?[ \t]*(?:\n|$))+)",
    re.I | re.M)


def causes_before_lists(text: str) -> dict[str, str]:
    """{address (lowercased): the cause stated above it} for notices that give the cause first."""
    lowered = text[:MAX_TEXT].lower()
    patterns = [p for p, word in ((_CAUSE_THEN_LIST, "affected"), (_REASON_THEN_LIST, "due to the following reason"))
                if word in lowered]
    out: dict[str, str] = {}
    for pattern in patterns:
        for m in pattern.finditer(text):
            cause = m.group("cause").strip()
            if not cause:
                continue
            for a in ADDRESS.findall(m.group("list")):
                out.setdefault(a.lower(), cause)
    return out


# The line of a section that quotes the answering server's reply (or the notice's own cause), where
# the notice labels it: Sun / Oracle Messaging Server "Diagnostic code: smtp;550 ...", Exchange
# 2010-2019 "Remote Server returned '550 ...'" or "#550 5.1.1 ... ##", hMailServer / Kerio
# "Remote server replied: 550 ...", Trend Micro IMSS "Received >>> 550 ...", qmail-style "Remote
# host said: 550 ...", MDaemon's transcript "<-- 552 ...", CommuniGate Pro "SMTP module(domain x)
# reports:" / next line (without the "mx.host:" it starts with), Domino "because:" / next line,
# BIGLOBE "----- Non-delivered information -----" / next line, a bare "Reason: ..." (MessageLabs,
# SmarterMail, InterMail, whose reply may wrap onto indented lines; Japanese notices' "理由:"),
# Exchange 2000/2003's line under "<addr> on <date>", and last OpenSMTPD's "addr: reply" line.
# Earlier labels are preferred.
_LABELLED_REPLY = (
    re.compile(r"^[ \t]*diagnostic[ -]code:[ \t]*(?:smtp|x-[\w.-]+)?[ \t]*;?[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"remote server returned '([^\n]+?)'?[ \t]*$", re.I | re.M),
    re.compile(r"#([245]\d\d [^#\n]+?)[ \t]*##"),
    re.compile(r"^[ \t]*remote server replied:[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"^[ \t]*received >>>[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"(?:^|[ \t])remote host said:[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"<--[ \t]*([45]\d\d\b[^\n]*)"),
    re.compile(r"\bmodule\([^()\n]{0,200}\) reports:[ \t]*\n[ \t]*(?:[a-z0-9-]+(?:\.[a-z0-9-]+)+:[ \t]+)?(\S[^\n]*)",
               re.I),
    re.compile(r"^[ \t]*because:[ \t]*\n(?:[ \t]*\n)?[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"^[ \t]*-{3,} ?non-delivered information ?-{3,}[ \t]*\n(?:[ \t]*\n)?[ \t]*(\S[^\n]*)", re.I | re.M),
    re.compile(r"^[ \t]*(?:reason|\u7406\u7531)[:\uff1a][ \t]*(\S[^\n]*)", re.I | re.M),
    # Exchange 2000 / 2003: "<addr> on <date>" / the reply / "<host #5.x.x>", indented.
    re.compile(r"^[ \t]*<?[^\s<>@]+@[^\s<>]+>? on \d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}[^\n]*\n[ \t]+(?!<[^\s<>]+ #)(\S[^\n]*)",
               re.M),
    # OpenSMTPD: "addr: reply" on a line of its own (a blank line or the end after it; Postfix's
    # "<addr>: host ... said:" continues on indented lines and is left whole).
    re.compile(r"\A[ \t]*<?[^\s<>@]+@[^\s<>:]+>?:[ \t]*(\S[^\n]*)(?:\n[ \t]*(?:\n|\Z)|\Z)"),
)
_LABEL_WORDS = ("diagnostic", "returned '", "##", "replied:", "received >>>", "said:", "<--", "reports:", "because:",
                "non-delivered", "reason:", "\u7406\u7531", ": ", " on ")
# Labels whose reply a notice wraps onto lines indented under its start (InterMail "Reason:    ...").
_WRAPPED_LABELS = ("reason", "\u7406\u7531")


def labelled_reply(section: str) -> str:
    """The remote reply a section quotes under a known label (see _LABELLED_REPLY), else ""."""
    low = section.lower()
    if not any(w in low for w in _LABEL_WORDS):
        return ""
    for pattern in _LABELLED_REPLY:
        m = pattern.search(section)
        if m and m.group(1).strip():
            said = m.group(1).strip()
            if m.group(0).lstrip().lower().startswith(_WRAPPED_LABELS):
                # Lines indented as far as the reply's start go on with it.
                column = m.start(1) - (section.rfind("\n", 0, m.start(1)) + 1)
                for line in section[m.end(1):].split("\n")[1:12]:
                    indent = len(line) - len(line.lstrip(" "))
                    if not line.strip() or indent < column or line[:column].strip():
                        break
                    said += " " + line.strip()
            elif _MULTILINE_REPLY.match(said):
                # A multi-line reply ("550-5.7.26 ..." lines up to "550 5.7.26 ..."): all of it.
                for line in section[m.end(1):].split("\n")[1:12]:
                    line = line.strip()
                    if not _MULTILINE_REPLY.match(line) and not _LAST_REPLY_LINE.match(line):
                        break
                    said += " " + line
                    if _LAST_REPLY_LINE.match(line):
                        break
            return said
    return ""


_MULTILINE_REPLY = re.compile(r"[245]\d\d-")
_LAST_REPLY_LINE = re.compile(r"[245]\d\d(?: |$)")


# Sendmail's session transcript ends each failed recipient with a summary line
# "554 <user@host>... Remote protocol error"; the remote server's reply that explains it ("<<< 550
# ...", which need not name the address) and the host line ("550 host (smtp)... 550 Host unknown")
# come BEFORE it, after the previous recipient's summary line. Old (V5) Sendmail has no
# delivery-status part, so this order is all there is (corpus:maildir/bsd/lhost-v5sendmail-05.eml).
_SUMMARY_LINE = re.compile(r"^[ \t]*[45]\d\d(?: [45]\.\d{1,3}\.\d{1,3})? <([^<>\s]+@[^<>\s]+)>\.\.\. ", re.M)


def transcript_blocks(text: str) -> dict[str, str]:
    """{address (lowercased): its lines of a Sendmail transcript, up to and including its summary
    line, from the last "While talking to" session among them}, for transcripts whose summary lines follow the remote replies ("<<< ..."); else {}."""
    if "<<< " not in text or "... " not in text:
        return {}
    out: dict[str, str] = {}
    start = 0
    for m in _SUMMARY_LINE.finditer(text):
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        block = text[start:end]
        talk = block.lower().rfind("while talking to ")
        if talk > 0:
            block = block[talk:]    # the session that ended with this recipient's summary line
        low = m.group(1).lower()
        if low not in out:
            out[low] = block[-MAX_SECTION:]
        start = end + 1
        if len(out) >= MAX_RECIPIENTS:
            break
    return out


def flufl_addresses(raw_message) -> list[str]:
    """Addresses flufl.bounce finds (for formats our scan does not cover)."""
    try:
        import email
        from email.policy import compat32

        from flufl.bounce import scan_message
        # flufl.bounce logs a traceback for every detector that trips on odd input; the
        # processes quiet its logger where they configure logging (bounceproc/logs.py).
        found = scan_message(email.message_from_bytes(raw_message[:1_000_000], policy=compat32))
    except Exception:  # noqa: BLE001 - a third-party heuristic must never stop a parse
        return []
    out = []
    for a in found or ():
        if isinstance(a, bytes):
            a = a.decode("utf-8", "replace")
        a = str(a).strip().strip("<>")
        if "@" in a:
            out.append(a)
    return out[:MAX_RECIPIENTS]


def ses_notification(text: str) -> dict | None:
    """An Amazon SES notification delivered by mail (SNS e-mail subscription): its JSON, else None.

    The JSON arrives wrapped at a fixed width with a space starting each continuation line.
    """
    if "notificationType" not in text and "eventType" not in text:
        return None
    start = text.find('{"notificationType"')
    if start < 0:
        start = text.find('{"eventType"')
    if start < 0:
        start = text.find("{")   # SNS envelope: {"Type": "Notification", "Message": "<JSON string>"}
    if start < 0:
        return None
    body = text[start:start + 200000]
    end = body.find("\n\n")
    if end > 0:
        body = body[:end]
    import json
    for candidate in (body, body.replace("\n ", ""), body.replace("\n", "")):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            try:
                data = json.loads(data["Message"])
            except ValueError:
                return None
        return data if isinstance(data, dict) and ("notificationType" in data or "eventType" in data) else None
    return None
