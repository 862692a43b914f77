"""What the sending core adds to an outgoing message: the VERP envelope sender, the list it
belongs to, and the RFC 8058 List-Unsubscribe header pair.

Domain layer: pure; stdlib and bounceproc.domain (address, parse.mime, parse.verp, parse.stamp,
parse.report_events, unsubscribe_token).
In: the message bytes as spooled, its envelope, the settings that say what to add.
Out: the new envelope sender, the list id, the headers to add, and the message with them.

- VERP: `prefix+local=domain@bounce-domain`, built with the same VerpFormat the SMTP sink
  decodes (settings `verp_separator` / `verp_prefix`). The return path (prefix and bounce
  domain) is the source's `verp-return-path`, else the message's own envelope sender (PowerMTA's
  `verp-default`). An address the sink would not decode back to the recipient is never sent:
  the envelope stays as it was (a DSN still names the recipient in its body).
  A null sender (our own DSNs) is never rewritten.
- The list: the message's `List-Id` (RFC 2919, `<news.example.net>` -> `news.example.net`),
  else the `l` of our X-Bounceproc-Ref stamp; the same reading the sink and the ARF parser use.
- List-Unsubscribe: when the message names a list and a public base URL is set, and it has no
  List-Unsubscribe of its own: `<{public_url}/u/TOKEN>` and `List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`, the token made exactly as `bounceproc unsubscribe-url` makes it.
- Headers are added at the top, in the message's own line ending (CRLF as received over SMTP).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from bounceproc.domain.address import try_normalise
from bounceproc.domain.parse.mime import normalise_newlines, parse_headers, split_head
from bounceproc.domain.parse.report_events import normalise_list_id
from bounceproc.domain.parse.stamp import TRACKING_HEADER, decode_stamp
from bounceproc.domain.parse.verp import DEFAULT, VerpFormat, decode_verp, encode_verp
from bounceproc.domain.unsubscribe_token import DEFAULT_LIFETIME, header_pair, make_token, unsubscribe_url

HEAD_LIMIT = 256 * 1024       # headers beyond this are not looked at


def head_end(data: bytes) -> int:
    """Offset of the blank line that ends the header block (len(data) if there is none)."""
    crlf, lf = data.find(b"\r\n\r\n", 0, HEAD_LIMIT), data.find(b"\n\n", 0, HEAD_LIMIT)
    ends = [i for i in (crlf, lf) if i >= 0]
    return min(ends) if ends else min(len(data), HEAD_LIMIT)


def message_headers(data: bytes) -> dict[str, list[str]]:
    """{lowercased name: [unfolded values]} of the message's header block."""
    head, _ = split_head(normalise_newlines(data[:head_end(data) + 4]))
    return parse_headers(head)


def message_list_id(headers: dict[str, list[str]]) -> str:
    """The list a message belongs to: List-Id, else our stamp's list; "" when none."""
    list_id = normalise_list_id((headers.get("list-id") or [""])[0])
    if list_id:
        return list_id
    stamp = decode_stamp((headers.get(TRACKING_HEADER.lower()) or [""])[0])
    return normalise_list_id(stamp["l"]) if stamp else ""


def add_headers(data: bytes, fields: list[tuple[str, str]]) -> bytes:
    """The message with `Name: value` lines put first, in its own line ending."""
    if not fields:
        return data
    eol = b"\r\n" if data.find(b"\r\n", 0, HEAD_LIMIT) >= 0 or not data else b"\n"
    return b"".join(f"{n}: {v}".encode("utf-8") + eol for n, v in fields) + data


def verp_sender(mail_from: str, recipient: str, fmt: VerpFormat = DEFAULT, return_path: str = "") -> str:
    """The VERP envelope sender for one recipient; `mail_from` unchanged when it cannot be one."""
    if not mail_from or "@" not in recipient:
        return mail_from
    base = (return_path or mail_from).strip().strip("<>")
    if "@" not in base:
        return mail_from
    candidate = encode_verp(recipient, base, fmt)
    r_local, _, r_domain = recipient.strip().rpartition("@")
    if decode_verp(candidate, fmt) != f"{r_local}@{r_domain.lower()}" or len(candidate) > 254:
        return mail_from
    return candidate


def unsubscribe_fields(headers: dict[str, list[str]], recipient: str, list_id: str, secret: str | bytes,
                       public_url: str, now: datetime, lifetime: timedelta = DEFAULT_LIFETIME) -> list[tuple[str, str]]:
    """The List-Unsubscribe pair to add, or [] (no list, no public URL, or the message has its own)."""
    if not list_id or not public_url or "list-unsubscribe" in headers:
        return []
    address = try_normalise(recipient)
    if address is None:
        return []
    url = unsubscribe_url(public_url, make_token(secret, address, list_id, now + lifetime))
    return list(header_pair(url).items())
