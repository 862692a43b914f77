"""A receiver's synonym must not make a refusal hard: every diagnostic our fixtures hold, with one
word swapped for another that receivers also write ("inbox" for "mailbox", "declined" for
"rejected", "doesn't" for "does not", "the message" for "this message", ...), never turns a soft
verdict into a suppression. Rules that hang on one word fail here (issue 12: never call a block or
a temporary failure hard). The corpus is not read: these are our own fixtures, so the test holds
wherever the project is checked out."""
from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

import pytest

from bounceproc.domain.classify import classify, find_reply_code
from bounceproc.domain.parse.message import parse_message

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsn"

# (pattern, replacement): each is a wording receivers use for the same thing.
SYNONYMS = [
    (r"\bdoes not exist\b", "doesn't exist"), (r"\bdoes not exist\b", "no longer exists"),
    (r"\bdoes not exist\b", "is not existing"), (r"\bdoes not\b", "doesn't"), (r"\bdoesn't\b", "does not"),
    (r"\bmailbox\b", "mail box"), (r"\bmailbox\b", "inbox"), (r"\bmailbox\b", "account"),
    (r"\buser\b", "recipient"), (r"\brecipient\b", "addressee"), (r"\buser\b", "account"),
    (r"\brejected\b", "refused"), (r"\brejected\b", "denied"), (r"\brejected\b", "declined"),
    (r"\brefused\b", "rejected"), (r"\bdenied\b", "rejected"),
    (r"\bblocked\b", "blacklisted"), (r"\bblocked\b", "banned"), (r"\bblocked\b", "rejected"),
    (r"\bblacklist", "blocklist"), (r"\bblocklist", "denylist"),
    (r"\bunknown\b", "not known"), (r"\bunknown\b", "invalid"), (r"\binvalid\b", "not valid"),
    (r"\bnot found\b", "could not be found"), (r"\bnot found\b", "was not found"),
    (r"\bfull\b", "over quota"), (r"\bover quota\b", "full"), (r"\bquota\b", "limit"),
    (r"\bcannot\b", "can't"), (r"\bcan't\b", "cannot"), (r"\bdo not\b", "don't"),
    (r"\bmessage\b", "email"), (r"\bmail\b", "email"), (r"\be-?mail\b", "message"),
    (r"\bthis message\b", "the message"), (r"\bthis message\b", "your message"),
    (r"\bunavailable\b", "not available"), (r"\bexceeded\b", "exceeds"),
    (r"\btemporarily\b", "currently"), (r"\btry again later\b", "retry later"),
    (r"\bspam\b", "junk mail"), (r"\bspam\b", "unsolicited mail"),
    (r"\bdisabled\b", "deactivated"), (r"\bdisabled\b", "suspended"), (r"\bsuspended\b", "disabled"),
    (r"\bdomain\b", "domain name"), (r"\bhost\b", "server"), (r"\bsender\b", "from address"),
]


@functools.cache
def _fixture_diagnostics() -> tuple[tuple[str, str, str, str], ...]:
    """(status, diagnostic, remote MTA, recipient) of every recipient the fixtures' notices and
    the acct samples hold."""
    seen = set()
    for path in sorted(FIXTURES.glob("*.eml")):
        for v in parse_message(path.read_bytes()).recipients:
            if v.diagnostic:
                seen.add((v.status, v.diagnostic, v.remote_mta, v.address))
    with open(FIXTURES / "pmta-acct-diagnostics.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            seen.add(((row["dsnStatus"].split() or [""])[0], row["dsnDiag"], "", ""))
    return tuple(sorted(seen))


def _verdict(status: str, diagnostic: str, mta: str, recipient: str):
    return classify(status, find_reply_code(diagnostic), diagnostic, mta, recipient)


@pytest.mark.parametrize("pattern,replacement", SYNONYMS, ids=lambda x: x)
def test_a_synonym_never_turns_a_soft_verdict_hard(pattern, replacement):
    rx = re.compile(pattern, re.I)
    turned = []
    for status, diag, mta, rcpt in _fixture_diagnostics():
        if not rx.search(diag):
            continue
        swapped = rx.sub(replacement, diag)
        before, after = _verdict(status, diag, mta, rcpt), _verdict(status, swapped, mta, rcpt)
        if after.hard and not before.hard:
            turned.append((swapped[:160], before.reason, after.reason, after.rule))
    assert not turned, turned


def test_the_fixtures_give_the_sweep_enough_to_read():
    diags = _fixture_diagnostics()
    assert len(diags) > 250
    swaps = sum(1 for _, d, _, _ in diags for p, _ in SYNONYMS if re.search(p, d, re.I))
    assert swaps > 800, swaps
