"""Normalise email addresses before they are used as keys (suppressions, events, lookups).

Domain layer: pure, stdlib only.
Trim, strip angle brackets and a `mailto:`/`rfc822;` prefix, IDNA-encode the domain, and
lower-case the whole address. RFC 5321 lets a receiver treat local parts case-sensitively, but
mailbox providers do not, and one key must match however a sender, a DSN (some MTAs and
flufl.bounce lower-case addresses) or the acct stream spelled it: a case-split key would keep
mailing a dead address. Hostile input (no @, control characters, oversize) raises AddressError.
"""
from __future__ import annotations

from functools import lru_cache


class AddressError(ValueError):
    pass


MAX_LOCAL, MAX_DOMAIN, MAX_TOTAL = 64, 253, 320
_PREFIXES = ("rfc822;", "mailto:", "smtp;")


@lru_cache(maxsize=131072)
def normalise_address(raw: str) -> str:
    a = raw.strip()
    low = a[:8].lower()
    for p in _PREFIXES:
        if low.startswith(p):
            a = a[len(p):].strip()
            break
    if a.startswith("<") and a.endswith(">"):
        a = a[1:-1].strip()
    if not a or len(a) > MAX_TOTAL:
        raise AddressError(f"not an email address: {raw[:80]!r}")
    local, at, domain = a.rpartition("@")
    if not at or not local or not domain:
        raise AddressError(f"not an email address (no local part or domain): {raw[:80]!r}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in a) or "<" in a or ">" in a:
        raise AddressError(f"not an email address (forbidden characters): {raw[:80]!r}")
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AddressError(f"invalid internationalised domain in {raw[:80]!r}") from exc
    if len(local) > MAX_LOCAL or len(domain) > MAX_DOMAIN or "." not in domain and not domain.startswith("["):
        raise AddressError(f"not an email address (bad length or domain): {raw[:80]!r}")
    return f"{local.lower()}@{domain}"


def try_normalise(raw: str) -> str | None:
    try:
        return normalise_address(raw)
    except AddressError:
        return None
