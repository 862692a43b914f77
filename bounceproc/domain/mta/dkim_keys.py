"""DKIM: which key signs a message, and which headers the signature covers.

Domain layer: pure, stdlib only. In: `domain-key SELECTOR,DOMAIN|*,KEYFILE` values (global,
`<virtual-mta>`, `<virtual-mta-pool>`), the author domain of a message, the names of its headers.
Out: the DomainKey to sign with (and the d= domain), and the h= list. The signing itself
(dkimpy, RSA or Ed25519, relaxed/relaxed) is the adapter bounceproc.mta.dkim_signer.

Key choice, as PowerMTA: the virtual MTA's keys, then its pool's, then the global ones; within
a list the first key whose DOMAIN is the author domain (From:, else Sender:) or `*` wins. A `*`
key signs as the author domain itself (d= that domain), so one key serves many domains that
publish the same selector.

Headers (RFC 6376 §5.4.1, and M3AAWG's advice): the author, recipients, subject, dates, ids,
MIME and list headers, List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4 asks for them to
be signed, or providers show no one-click button), Feedback-ID and our X-Bounceproc-Ref.
Only headers present are listed, From twice (over-signed: a second From added later breaks
the signature).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SIGNED_HEADERS = (
    "from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding", "list-id",
    "list-unsubscribe", "list-unsubscribe-post", "list-help", "list-subscribe", "list-post",
    "list-owner", "list-archive", "feedback-id", "x-bounceproc-ref",
)
OVERSIGNED = ("from",)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class DomainKey:
    selector: str
    domain: str                   # a domain, or "*"
    keyfile: str
    where: str = ""               # file:line of the directive

    def matches(self, author_domain: str) -> bool:
        return self.domain == "*" or self.domain == author_domain


def parse_domain_key(value: str, where: str = "") -> DomainKey:
    """`s1,example.com,/etc/bounceproc/s1.key` -> DomainKey; ValueError says what was expected."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"expected SELECTOR,DOMAIN|*,KEYFILE, got {value!r}")
    selector, domain, keyfile = parts
    if not _SELECTOR.fullmatch(selector):
        raise ValueError(f"expected a DKIM selector (letters, digits, '-', '.'), got {selector!r}")
    domain = domain.lower().rstrip(".")
    if domain != "*" and ("." not in domain or any(c in domain for c in " /@")):
        raise ValueError(f"expected a domain or *, got {domain!r}")
    return DomainKey(selector, domain, keyfile, where)


def author_domain(headers: dict[str, list[str]]) -> str:
    """The domain of From: (else Sender:), lowercased; "" when there is none."""
    for name in ("from", "sender"):
        for value in headers.get(name, ()):
            addr = value.rsplit("<", 1)[-1].split(">", 1)[0].strip() if "<" in value else value.strip()
            _, at, domain = addr.rpartition("@")
            if at and domain:
                return domain.strip().rstrip(".").lower()
    return ""


def choose_key(key_lists: Sequence[Iterable[DomainKey]], domain: str) -> tuple[DomainKey, str] | None:
    """(key, d= domain) from the most specific list that has a matching key; None if none."""
    if not domain:
        return None
    for keys in key_lists:
        for key in keys:
            if key.matches(domain):
                return key, domain if key.domain == "*" else key.domain
    return None


def headers_to_sign(present: Iterable[str]) -> list[str]:
    """h= names, lowercased, in SIGNED_HEADERS order; over-signed names once more at the end."""
    have = {n.lower() for n in present}
    names = [n for n in SIGNED_HEADERS if n in have]
    return names + [n for n in OVERSIGNED if n in have]
