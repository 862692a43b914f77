"""A verdict does not depend on presentation: every corpus message, rewritten in ways that change
how it is written but not what it says, gets the same (address, reason, hard) per recipient.

The corpus (../shared/corpus) is read in place; the test skips where it is absent and fails under
CI, which must have it. The rewrites are tests/presentation.py's (each one's RFC in its docstring):
text/plain, text/html and delivery-status parts re-encoded as base64 and as quoted-printable (soft
breaks mid-word), header fields of the message, of its parts and of the delivery-status blocks
refolded at other widths, prose paragraphs of a plain-text notice re-wrapped at 52, 72 and 998
columns (structure lines kept: addresses alone, "<<<" / ">>>" transcripts, indented blocks,
"Label: value" lines, everything from where the returned original starts), the charset label of
ASCII text changed, non-ASCII text transcoded to UTF-8, Subject and From's display name as RFC 2047
encoded words, field names upper-cased, Content-Type in another case, with unknown parameters or
with quoted values, multipart boundaries renamed, a single-part notice made a multipart of its one
part, and the whole message forwarded as a message/rfc822 attachment by three mail clients
(tests/forwarding.py). A rewrite applies only where it is surely equivalent (presentation.py
returns None otherwise: ten corpus files whose MIME structure is broken are left alone by all but
the forward); test_the_rewrites_change_presentation_only checks with Python's email package, an
independent MIME reader, that each rewrite keeps every part's text.

Not equivalent, so not tested:
- forwarding a message that is not a report (an auto-reply, a delivery notice, a non-bounce):
  domain/parse/forwarded.py unwraps reports only (kinds "dsn" and "arf"), by design; the forward
  of anything else is a person's message, and reads as the forward it is.
- delivery-status parts in base64 / quoted-printable are outside RFC 3464 (which asks for 7bit;
  RFC 6533's message/global-delivery-status allows them); they are kept, for gateways re-encode
  them anyway and the reader must not care.

Fragilities this test found, fixed in the reader (not per file): a notice wrapped at another width
was cut where a line began "returned message." (Postfix) or ended "The original message was"
(Courier), losing the recipients' sections (legacy.notification_text: prose that goes on from or
into the next line is not a cut line); a Subject written as encoded words was classified raw in a
DSN recipient's fallback text (message._Reader.subject); an Amazon SES notification made a
multipart of its one text part (as a gateway adding a footer does) was not read
(message._Reader.read_ses). No exception is allowed (ALLOWED is empty).
"""
from __future__ import annotations

import email
import functools
import os
import re
from email import policy
from pathlib import Path

import pytest
from presentation import TRANSFORMS

from bounceproc.domain.parse.forwarded import merged, read_reports

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
REPORT_KINDS = ("dsn", "arf")
# (rewrite, corpus file) -> why its verdict may change. Empty: every change found was a fragility.
ALLOWED: dict[tuple[str, str], str] = {}
# Files each rewrite applies to at least (it measured ~1.3x these on the development corpus):
# a rewrite that silently stops applying must not pass for a robust reader.
MIN_APPLIED = {"base64": 250, "quoted-printable": 250, "refold-fields": 140, "refold-fields-narrow": 140,
               "refold-header": 260, "rewrap-narrow": 200, "rewrap-72": 120, "rewrap-wide": 120,
               "charset-label": 240, "transcode-utf8": 12, "encoded-words": 250, "field-name-case": 260,
               "content-type-case": 200, "content-type-params": 200, "content-type-quoting": 170, "boundary": 170, "multipart-wrap": 90,
               "forward-gmail": 250, "forward-outlook": 250, "forward-thunderbird": 250}


def _corpus_files() -> list[Path]:
    files = sorted((CORPUS / "maildir").glob("*/*.eml")) if (CORPUS / "maildir").is_dir() else []
    if not files:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the corpus is absent at {CORPUS} (CI must have it)")
        pytest.skip(f"the labelled corpus is not at {CORPUS} (it ships beside the project as ../shared)")
    return files


def _seen(raw: bytes) -> tuple[str, list[tuple[str, str, bool]]]:
    """The report's kind and its recipients' (address, reason, hard), as the service reads a
    received message (forwarded reports unwrapped), in a stable order."""
    report = merged(read_reports(raw))
    return report.kind, sorted((v.address.lower(), v.reason, v.hard) for v in report.recipients)


@functools.lru_cache(maxsize=1)
def _messages() -> tuple[tuple[str, bytes, tuple], ...]:
    out = []
    for path in _corpus_files():
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        out.append((str(path.relative_to(CORPUS)), raw, _seen(raw)))
    return tuple(out)


def _rewrites(name: str):
    """(file, original verdicts, rewritten bytes) for every corpus message the rewrite applies to."""
    for rel, raw, (kind, verdicts) in _messages():
        if name.startswith("forward-") and (kind not in REPORT_KINDS or not verdicts):
            continue    # only reports are unwrapped (module docstring)
        new = TRANSFORMS[name](raw)
        if new is not None:
            yield rel, raw, verdicts, new


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_a_verdict_does_not_depend_on_presentation(name):
    applied, changed, allowed_seen = 0, [], set()
    for rel, _raw, verdicts, new in _rewrites(name):
        applied += 1
        got = _seen(new)[1]
        if got != verdicts:
            if (name, rel) in ALLOWED:
                allowed_seen.add((name, rel))
            else:
                changed.append(f"{rel}: {verdicts} -> {got}")
    assert applied >= MIN_APPLIED[name], f"{name} applied to {applied} files only"
    assert not changed, f"{name} changed {len(changed)} verdict(s):\n" + "\n".join(changed)
    stale = {k for k in ALLOWED if k[0] == name} - allowed_seen
    assert not stale, f"allowed exceptions that no longer differ (remove them): {sorted(stale)}"


_DSN_TYPE = re.compile(r"(?im)^(content-type:[ \t]*)message/(?:global-)?delivery-status")
_FIELD_NAME = re.compile(r"(?m)^([A-Za-z][\w-]*)[ \t]*:")


def _email_view(raw: bytes) -> tuple[list, str]:
    """What Python's email package reads: each part's type and whitespace-folded text (field names
    of delivery-status blocks lower-cased), and the decoded Subject."""
    # The email package splits message/delivery-status into header blocks without undoing a
    # transfer encoding: it is read as text here, on both sides.
    raw = _DSN_TYPE.sub(r"\1text/x-delivery-status", raw.decode("latin-1")).encode("latin-1")
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    parts = []
    for p in msg.walk():
        ctype = " ".join(p.get_content_type().split())
        if p.is_multipart():
            continue    # containers: their leaves are compared (multipart-wrap adds one)
        if ctype in ("message/rfc822", "text/rfc822-headers"):
            parts.append(ctype)
            continue
        data = p.get_payload(decode=True) or b""
        try:
            text = data.decode(p.get_content_charset() or "ascii")
        except (UnicodeError, LookupError):
            text = data.decode("latin-1")
        text = _DSN_TYPE.sub(r"\1text/x-delivery-status", text)
        if ctype == "text/x-delivery-status":
            text = _FIELD_NAME.sub(lambda m: m.group(1).lower() + ":", text)
        parts.append((ctype, " ".join(text.split())))
    subject = msg.get("subject")
    subject = str(email.header.make_header(email.header.decode_header(subject))) if subject else ""
    return parts, " ".join(subject.split())


def test_the_rewrites_change_presentation_only():
    """Checked with another MIME reader: every part of a rewritten message has the same type and
    the same text (up to line breaks and spacing), and the Subject reads the same."""
    differ = []
    views: dict[str, tuple | None] = {}
    for name in TRANSFORMS:
        if name.startswith("forward-"):
            continue    # a forward adds a wrapper; tests/unit/test_forwarded.py covers its reading
        for rel, raw, _verdicts, new in _rewrites(name):
            if rel not in views:
                try:
                    views[rel] = _email_view(raw)
                except Exception:  # noqa: BLE001 - a message the email package cannot read is not compared
                    views[rel] = None
            if views[rel] is not None and _email_view(new) != views[rel]:
                differ.append(f"{name}: {rel}")
    assert not differ, "rewrites that changed more than presentation:\n" + "\n".join(differ)


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@functools.lru_cache(maxsize=1)
def _fixture_messages() -> tuple[tuple[str, bytes, tuple, str], ...]:
    """The project's own classifier fixtures (mail systems the corpus lacks), with the kind the
    message itself reads as (a forward unwraps only a message that is itself a report: a list
    manager's notice enclosing a member's bounce is not)."""
    from bounceproc.domain.parse.message import parse_message
    out = []
    for path in sorted(p for k in ("dsn", "arf", "autoreply", "not-a-bounce") for p in (FIXTURES / k).glob("*.eml")):
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        out.append((f"{path.parent.name}/{path.name}", raw, _seen(raw), parse_message(raw).kind))
    return tuple(out)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_the_fixtures_verdicts_do_not_depend_on_presentation(name):
    """The same for fixtures/ (found: Sun Messaging Server's quoted-header intro wrapped over two
    lines was not recognised, and a list manager's contact address, once re-wrapped onto a line of
    its own, was taken for a recipient)."""
    applied, changed = 0, []
    for rel, raw, (kind, verdicts), own_kind in _fixture_messages():
        if name.startswith("forward-") and (own_kind not in REPORT_KINDS or not verdicts):
            continue
        new = TRANSFORMS[name](raw)
        if new is None:
            continue
        applied += 1
        got = _seen(new)[1]
        if got != verdicts:
            changed.append(f"{rel}: {verdicts} -> {got}")
    assert applied >= 5, f"{name} applied to {applied} fixtures only"
    assert not changed, f"{name} changed {len(changed)} verdict(s):\n" + "\n".join(changed)
