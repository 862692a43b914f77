"""VERP return paths: the failed recipient encoded in the bounce address itself.

Domain layer: pure; stdlib only.
In: an envelope recipient of a bounce (the return path we sent with). Out: the original
recipient, or None when the address carries none.

Two shapes are understood by DEFAULT: `prefix+local=domain@bounce.domain` (separator "+", the
usual VERP form) and PowerMTA's `verp-default` form `sender-local=domain@senderdomain`
(separator "-"). The local part of the recipient may itself hold "+" or "-"; the domain is taken
after the LAST "=" and the local part between the first separator and that "=". A return path
whose own local part holds a separator (`bounce-handler+alice=example.com@...`) needs the format
said: `for_settings` builds it from the settings `verp_separator` (only that separator) and
`verp_prefix` (the part before it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class VerpFormat:
    separator: str = "+"          # between the prefix and the encoded recipient (encode and decode)
    equals: str = "="             # stands for "@" in the encoded recipient
    prefix: str = ""              # required prefix ("" accepts any)
    also: tuple[str, ...] = ("-",)  # further separators accepted when decoding (PowerMTA's "-")

    @property
    def separators(self) -> tuple[str, ...]:
        return (self.separator,) + tuple(s for s in self.also if s != self.separator)


DEFAULT = VerpFormat()


def for_settings(separator: str = "", prefix: str = "") -> VerpFormat:
    """The format the settings name: "" separator = DEFAULT's ("+", or PowerMTA's "-")."""
    if not separator and not prefix:
        return DEFAULT
    if not separator:
        return VerpFormat(prefix=prefix)
    return VerpFormat(separator=separator, prefix=prefix, also=())


def decode_verp(address: str, fmt: VerpFormat = DEFAULT) -> str | None:
    """`bounces+alice=example.com@bounce.example.net` -> `alice@example.com`, else None."""
    if not address:
        return None
    address = address.strip().strip("<>").strip()
    local, at, _domain = address.rpartition("@")
    if not at or fmt.equals not in local:
        return None
    if fmt.prefix and not local.lower().startswith(fmt.prefix.lower()):
        return None
    enc_local, _, enc_domain = local.rpartition(fmt.equals)
    if not _DOMAIN.match(enc_domain):
        return None
    start = len(fmt.prefix) if fmt.prefix else 0
    best = -1
    for sep in fmt.separators:
        i = enc_local.find(sep, start)
        if i >= 0 and (best < 0 or i < best):
            best = i
    if best < 0:
        return None
    rcpt_local = enc_local[best + 1:]
    if not rcpt_local or len(rcpt_local) > 64:
        return None
    return f"{rcpt_local}@{enc_domain.lower()}"


def encode_verp(recipient: str, return_path: str, fmt: VerpFormat = DEFAULT) -> str:
    """`alice@example.com`, `bounces@bounce.example.net` -> `bounces+alice=example.com@bounce.example.net`."""
    r_local, _, r_domain = recipient.strip().rpartition("@")
    p_local, _, p_domain = return_path.strip().strip("<>").rpartition("@")
    return f"{p_local}{fmt.separator}{r_local}{fmt.equals}{r_domain}@{p_domain}"
