"""Normalise email addresses before they are used as keys (suppressions, events, lookups).

Domain layer: pure, stdlib only.
In: an address as someone spelled it. Out: the key, or AddressError (a ValueError) naming what
is wrong.

This is the one normaliser, so the same address gives the same key whichever way it arrived:
the acct parser (parse/acct.py) and the report parser (parse/report_events.py) call it, and
tests/unit/test_address.py checks that they, and the acct parser's inline fast path for `d`
rows, agree with it. The API and the CLI call it too.

Trim, strip a `rfc822;`/`mailto:`/`smtp;` prefix and angle brackets (repeatedly, so
`<mailto:a@example.com>` works too), strip trailing dots from the domain, IDNA-encode a non-ASCII
domain, and lower-case the whole address. RFC 5321 lets a receiver treat local parts
case-sensitively, but mailbox providers do not, and one key must match however a sender, a DSN
(some MTAs and flufl.bounce lower-case addresses) or the acct stream spelled it: a case-split key
would keep mailing a dead address.

Rejected: no local part or domain; whitespace, control characters (C0, DEL, C1), U+FFFD (bytes
that were not valid UTF-8: a guessed key would never match), or <> inside; a local part over 64
characters, a domain over 253 or without a dot (RFC 5321 §4.5.3.1; `user@localhost` is never one
of our recipients), a domain IDNA cannot encode, a domain with `[` or `]` that is not a whole
address literal (`[192.0.2.1]`, `[ipv6:2001:db8::1]`, RFC 5321 §4.1.3; the IPv6 text is put in
its compressed form). Lengths are checked after lower-casing and IDNA, so the result is itself a
valid input and normalises to itself.

This is the ONE validity rule (issue 13, item 7): every entry point accepts exactly what this
function accepts. The parsers store what it accepts and quarantine the rest, and the API reads,
writes and lifts every key it returns: an address that is odd but deliverable enough to have
bounced (`a..b@example.com`, `a@b..com`, `user@exa_mple.com`, `a@-bad-.com`, `a@[192.0.2.1]`)
is kept as a suppression rather than dropped, and the sender can check and lift it by the same
spelling (the API refusing it would leave a sender unable to ask about a dead address it mails).
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache


class AddressError(ValueError):
    pass


MAX_LOCAL, MAX_DOMAIN, MAX_TOTAL = 64, 253, 320
_PREFIXES = ("rfc822;", "mailto:", "smtp;")
_DOTS = ".\u3002\uff0e\uff61"       # the label separators of IDNA (RFC 3490 §3.1)


# Whitespace (\s is str.isspace()), C0, DEL, C1, angle brackets, U+FFFD.
_BAD_CHAR = re.compile(r"[\s\x00-\x20\x7f-\x9f<>\ufffd]")


# General-address-literal (RFC 5321 §4.1.3): Standardized-tag ":" 1*dcontent (printable but [\]).
_GENERAL_LITERAL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?:[\x21-\x5a\x5e-\x7e]+")


def _fail(why: str, raw: str) -> AddressError:
    return AddressError(f"not an email address ({why}): {raw[:80]!r}")


def _literal(domain: str, raw: str) -> str:
    """The canonical form of an address literal `[...]` (RFC 5321 §4.1.3), or AddressError."""
    if domain[0] != "[" or domain[-1] != "]" or domain.count("[") != 1 or domain.count("]") != 1:
        raise _fail("brackets in the domain that are not an address literal", raw)
    inner = domain[1:-1]
    tag, colon, rest = inner.partition(":")
    try:
        if not colon:
            return f"[{ipaddress.IPv4Address(inner)}]"
        if tag == "ipv6":
            return f"[ipv6:{ipaddress.IPv6Address(rest)}]"
    except ValueError as exc:
        raise _fail("invalid address literal", raw) from exc
    if _GENERAL_LITERAL.fullmatch(inner):
        return domain
    raise _fail("invalid address literal", raw)


def _unwrap(a: str, raw: str) -> str:
    """Strip prefixes and angle brackets until none is left (`<mailto:a@example.com>`)."""
    for _ in range(4):
        before = a
        low = a[:8].lower()
        for p in _PREFIXES:
            if low.startswith(p):
                a = a[len(p):].strip()
                break
        if a.startswith("<") and a.endswith(">"):
            a = a[1:-1].strip()
        if a == before:
            return a
    raise _fail("nested prefixes or brackets", raw)


@lru_cache(maxsize=131072)
def normalise_address(raw: str) -> str:
    a = raw.strip().lower()
    if a[:1] == "<" or ":" in a or ";" in a:      # every prefix has one of these
        a = _unwrap(a, raw)
    if not a or len(a) > MAX_TOTAL:
        raise _fail("empty" if not a else f"longer than {MAX_TOTAL} characters", raw)
    local, at, domain = a.rpartition("@")
    if not at or not local or not domain:
        raise _fail("no local part or domain", raw)
    # isprintable() leaves only the space of all whitespace and control characters, so the
    # regex runs only on the rare address that needs it.
    if (not a.isprintable() or " " in a or "<" in a or ">" in a or "\ufffd" in a) and _BAD_CHAR.search(a):
        raise _fail("whitespace, control characters, <> or invalid bytes", raw)
    if domain[-1] == "." or not domain.isascii():
        domain = domain.rstrip(_DOTS)
        if not domain.isascii():
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise _fail("invalid internationalised domain", raw) from exc
        a = f"{local}@{domain}"
    if len(local) > MAX_LOCAL:
        raise _fail(f"local part longer than {MAX_LOCAL} characters", raw)
    if not domain or len(domain) > MAX_DOMAIN:
        raise _fail(f"domain empty or longer than {MAX_DOMAIN} characters", raw)
    if "[" in domain or "]" in domain:
        literal = _literal(domain, raw)
        if literal != domain:
            domain, a = literal, f"{local}@{literal}"
    elif "." not in domain:
        raise _fail("domain without a dot", raw)
    return a


def try_normalise(raw: str) -> str | None:
    try:
        return normalise_address(raw)
    except AddressError:
        return None
