"""Rewrite a message's presentation without changing what it says, for the robustness tests.

Test helper, not product code. Each transformation takes the bytes of one message (LF line
endings) and returns a rewritten copy that a MIME-conforming reader must take for the same notice,
or None when it does not apply to this message (nothing to change, or no way to change it that
is surely equivalent). The message's own notice is rewritten: its header, the parts of its MIME
tree, never the returned original enclosed as message/rfc822 or text/rfc822-headers (that is
another message, quoted as is).

- `base64` / `quoted-printable`: every text/plain, text/html and delivery-status part re-encoded
  with that Content-Transfer-Encoding (RFC 2045 §6; quoted-printable with soft line breaks every
  40 characters, mid-word too); the decoded bytes, and so the charset, are unchanged.
- `refold-fields` / `refold-fields-narrow` / `refold-header`: header fields (of the
  delivery-status blocks; of the message and its parts) unfolded, then folded again at another
  width: a line break inserted before a space (RFC 5322 §2.2.3), so unfolding gives back the value.
- `rewrap-narrow` / `rewrap-72` / `rewrap-wide`: prose paragraphs of a plain-text notice
  re-wrapped at 52, 72 or 998 columns; structure lines are left as they are (see `_prose_line`),
  and so is everything from the first line where the returned original may start.
- `charset-label`: the charset label of a text part whose text is ASCII changed to another that
  reads ASCII the same (not for labels such as UTF-7 under which ASCII bytes read otherwise).
- `transcode-utf8`: a text part whose text is not ASCII re-encoded as UTF-8 and labelled so.
- `encoded-words`: an ASCII Subject and From display name as RFC 2047 encoded words.
- `field-name-case`: field names upper-cased (RFC 5322 §1.2.2 / RFC 3464 §2.1.1: case-insensitive).
- `content-type-case` / `content-type-params`: Content-Type fields with type, subtype, field and
  parameter names in another case, or unknown parameters added (RFC 2045 §5.1: both ignored).
- `content-type-quoting`: Content-Type parameter values written as quoted-strings.
- `boundary`: every multipart boundary of the notice renamed (RFC 2046 §5.1.1).
- `multipart-wrap`: a single-part text message made a multipart/mixed of its one part.
- `forward-<client>`: the whole message forwarded as a message/rfc822 attachment under "Fwd:" and
  its own subject (forwarding.wrap).
"""
from __future__ import annotations

import base64
import binascii
import quopri
import re
import textwrap
from dataclasses import dataclass, field

from forwarding import CLIENTS, wrap

_PARAM = re.compile(r';\s*([A-Za-z0-9_\-*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_ENCLOSED = ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers")
_RECODE = ("text/plain", "text/html", "message/delivery-status", "message/global-delivery-status")


@dataclass
class Field:
    name: str            # as written
    value: str           # unfolded (line breaks removed, nothing else), latin-1 text of the bytes
    start: int           # byte offsets of the whole field (all its lines, without the last \n)
    end: int


@dataclass
class Entity:
    start: int
    head_end: int        # end of the header block (the blank line follows)
    body_start: int
    end: int
    fields: list[Field]
    ctype: str = "text/plain"
    params: dict = field(default_factory=dict)
    children: list["Entity"] = field(default_factory=list)
    delimiters: list[tuple[int, int]] = field(default_factory=list)   # (start, end) of boundary lines

    def get(self, name: str) -> str:
        for f in self.fields:
            if f.name.lower() == name:
                return f.value.strip()
        return ""

    def find(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name.lower() == name), None)


def _fields(data: bytes, start: int, end: int) -> list[Field] | None:
    """The header fields of data[start:end]; None if a line is neither a field nor a continuation."""
    out: list[Field] = []
    pos = start
    if start >= end:
        return out
    for line in data[start:end].split(b"\n"):
        line_end = pos + len(line)
        if line[:1] in (b" ", b"\t") and out:
            out[-1].value += line.decode("latin-1")
            out[-1].end = line_end
        else:
            name, colon, value = line.partition(b":")
            if not colon or not name or not re.fullmatch(rb"[!-9;-~]+", name):
                return None
            out.append(Field(name.decode("latin-1"), value.decode("latin-1"), pos, line_end))
        pos = line_end + 1
    return out


def _content_type(value: str) -> tuple[str, dict]:
    ctype = value.partition(";")[0].strip().lower()
    params = {}
    for m in _PARAM.finditer(value):
        v = m.group(2)
        params[m.group(1).lower()] = v[1:-1] if v.startswith('"') else v
    return ctype, params


def parse(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Entity | None:
    """The entity data[start:end] with byte offsets; None where its structure is not plain enough
    to rewrite with confidence (the transformations then leave the message alone)."""
    end = len(data) if end is None else end
    if depth == 0 and data.startswith(b"From "):
        start = data.find(b"\n") + 1     # an mbox separator line: not a header field, kept as is
    if data[start:start + 1] == b"\n":
        head_end, body_start = start, start + 1
    else:
        i = data.find(b"\n\n", start, end)
        head_end, body_start = (i, i + 2) if i >= 0 else (end, end)
    fields = _fields(data, start, head_end)
    if fields is None or depth > 4:
        return None
    e = Entity(start, head_end, body_start, end, fields)
    ct = e.get("content-type")
    if ct:
        e.ctype, e.params = _content_type(ct)
        if "/" not in e.ctype:
            return None
    if e.ctype.startswith("multipart/"):
        boundary = e.params.get("boundary", "").encode("latin-1")
        if not boundary:
            return None
        delim = re.compile(rb"(?m)^--" + re.escape(boundary) + rb"(--)?[ \t]*$")
        marks = list(delim.finditer(data, body_start, end))
        if not marks:
            return None
        e.delimiters = [(m.start(), m.end()) for m in marks]
        # No close delimiter (a cut message): the last part runs to the end.
        ends = [m.start() - 1 for m in marks[1:]] + ([] if marks[-1].group(1) is not None else [end])
        for a, cend in zip(marks, ends):
            if a.group(1) is not None:
                return None
            cstart = a.end() + 1
            if cstart > cend:
                return None
            child = parse(data, cstart, cend, depth + 1)
            if child is None:
                return None
            e.children.append(child)
    return e


def notice_parts(e: Entity):
    """The entities of the notice itself (not inside an enclosed message), depth first."""
    yield e
    if e.ctype not in _ENCLOSED:
        for c in e.children:
            yield from notice_parts(c)


def _splice(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out, pos = [], 0
    for a, b, new in sorted(edits):
        assert a >= pos, "overlapping edits"
        out += [data[pos:a], new]
        pos = b
    out.append(data[pos:])
    return b"".join(out)


def _decode(data: bytes, cte: str) -> bytes | None:
    cte = cte.lower()
    if cte in ("", "7bit", "8bit", "binary"):
        return data
    try:
        if cte == "base64":
            return base64.b64decode(data, validate=False)
        if cte == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return None
    return None


def _qp(data: bytes, width: int = 40) -> bytes:
    """Quoted-printable (RFC 2045 §6.7) with soft line breaks every `width` characters, in the
    middle of words too: a narrow encoder's output, equally valid."""
    out = []
    for line in data.split(b"\n"):
        chars = [chr(c) if (33 <= c <= 126 and c != 61) or c == 32 else "=%02X" % c for c in line]
        if chars and chars[-1] == " ":
            chars[-1] = "=20"     # trailing white space is encoded (§6.7 rule 3)
        cur, lines = "", []
        for ch in chars:
            if len(cur) + len(ch) > width - 1:
                lines.append(cur + "=")
                cur = ""
            cur += ch
        lines.append(cur)
        out.append("\n".join(lines))
    return "\n".join(out).encode("ascii")


def _encode(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return _qp(data)
    return data


def _set_cte(data: bytes, e: Entity, cte: str) -> tuple[int, int, bytes]:
    """An edit that sets the entity's Content-Transfer-Encoding field."""
    f = e.find("content-transfer-encoding")
    line = b"Content-Transfer-Encoding: " + cte.encode()
    if f is not None:
        return (f.start, f.end, line)
    if e.head_end == e.start:
        return (e.start, e.start, line + b"\n")
    return (e.head_end, e.head_end, b"\n" + line)


def _body(data: bytes, e: Entity) -> bytes:
    return data[e.body_start:e.end]


def _decoded_body(data: bytes, e: Entity) -> bytes | None:
    cte = e.get("content-transfer-encoding")
    body = _body(data, e)
    decoded = _decode(body, cte)
    if decoded is None:
        return None
    if cte.lower() == "base64" and base64.b64encode(decoded).rstrip(b"=") != b"".join(body.split()).rstrip(b"="):
        return None     # junk in the base64: another reader may decode it otherwise
    return decoded


def _rebody(data: bytes, e: Entity, new_body: bytes, cte: str) -> list[tuple[int, int, bytes]]:
    """Edits that put `new_body` (encoded with `cte`) in place of the entity's body; the line
    break an encoder ends with is not kept before a boundary line (it would add a blank line)."""
    if cte in ("base64", "quoted-printable") and e.end < len(data):
        new_body = new_body.rstrip(b"\n")
    return [_set_cte(data, e, cte), (e.body_start, e.end, new_body)]


def recode(data: bytes, cte: str) -> bytes | None:
    root = parse(data)
    if root is None:
        return None
    edits = []
    for e in notice_parts(root):
        if e.children or e.ctype not in _RECODE or e.get("content-transfer-encoding").lower() == cte:
            continue
        decoded = _decoded_body(data, e)
        if decoded is None or not decoded.strip():
            continue
        edits += _rebody(data, e, _encode(decoded, cte), cte)
    return _splice(data, edits) if edits else None


def _fold(name: str, value: str, width: int) -> str:
    """`name:value` folded before spaces so that no line is longer than `width` where it can be."""
    words = re.findall(r"[ \t]*\S+", value)     # each piece: its whitespace, then a word
    lines, cur = [], name + ":"
    for w in words:
        if len(cur) + len(w) > width and w[:1] in " \t" and len(cur) > len(name) + 1:
            lines.append(cur)
            cur = w
        else:
            cur += w
    lines.append(cur + value[len(value.rstrip()):])
    return "\n".join(lines)


def _refold(data: bytes, fields: list[Field], width: int) -> list[tuple[int, int, bytes]]:
    edits = []
    for f in fields:
        folded = _fold(f.name, f.value, width)
        new = folded.encode("latin-1")
        if new != data[f.start:f.end]:
            edits.append((f.start, f.end, new))
    return edits


def refold_fields(data: bytes, width: int = 34) -> bytes | None:
    """The delivery-status part's fields refolded (RFC 3464 fields are RFC 5322-style fields)."""
    root = parse(data)
    if root is None:
        return None
    edits = []
    for e in notice_parts(root):
        if e.ctype not in ("message/delivery-status", "message/global-delivery-status") or \
                e.get("content-transfer-encoding").lower() not in ("", "7bit", "8bit", "binary"):
            continue
        pos = e.body_start
        for block in re.split(rb"(\n[ \t]*\n)", _body(data, e)):
            if block.strip() and not block.startswith(b"\n"):
                fs = _fields(data, pos, pos + len(block.rstrip(b"\n")))
                if fs is not None:
                    edits += _refold(data, fs, width)
            pos += len(block)
    return _splice(data, edits) if edits else None


def refold_header(data: bytes, width: int = 40) -> bytes | None:
    """The header fields of the message and of its parts refolded (not the enclosed original's)."""
    root = parse(data)
    if root is None:
        return None
    edits = [x for e in notice_parts(root) for x in _refold(data, e.fields, width)]
    return _splice(data, edits) if edits else None


# A prose line: starts with a letter, has several words, and is not a label line ("Reason: ...",
# "Remote host said: ..."), a quote, a transcript line or a field.
_LABEL = re.compile(r"^[\w'()\-]+(?: [\w'()\-]+){0,4}:(?:\s|$)")
_ADDRESS_ALONE = re.compile(r"^[\s<\"']*\S+@\S+?[>\"':,]*\s*$")


def _prose_line(line: str) -> bool:
    return (bool(re.match(r"[A-Za-z]", line)) and " " in line.strip() and not _LABEL.match(line)
            and "<<<" not in line and ">>>" not in line
            and not _ADDRESS_ALONE.match(line) and "@" not in line.split(" ", 1)[0]
            and not re.search(r"[ \t]{2,}|\t", line.rstrip()))


def _prose_paragraph(lines: list[str]) -> bool:
    return bool(lines) and all(_prose_line(x) for x in lines)


_ORIGINAL_STARTS = re.compile(r"^(?:[-=_*#|]{3,}|[A-Za-z][\w-]*:\s|\s*>|.*\b(?:original message|"
                              r"copy of the message|message follows|headers? follow)\b)", re.I)


def rewrap_text(text: str, width: int) -> str:
    """Prose paragraphs of `text` re-wrapped at `width`, up to the first line that may start the
    returned original (a separator line, a header-like field, a quote): nothing after it changes."""
    lines = text.split("\n")
    out: list[str] = []
    para: list[str] = []

    def flush():
        if _prose_paragraph(para):
            out.extend(textwrap.wrap(" ".join(x.strip() for x in para), width, break_long_words=False,
                                     break_on_hyphens=False))
        else:
            out.extend(para)
        para.clear()

    for n, line in enumerate(lines):
        if _ORIGINAL_STARTS.match(line) and not _prose_line(line):
            flush()
            out.extend(lines[n:])
            return "\n".join(out)
        if line.strip():
            para.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


def rewrap(data: bytes, width: int) -> bytes | None:
    root = parse(data)
    if root is None:
        return None
    plain = [e for e in notice_parts(root) if not e.children and e.ctype == "text/plain"]
    if len(plain) != 1 and root.ctype != "multipart/report":
        return None
    edits = []
    for e in plain[:1]:
        charset = e.params.get("charset", "us-ascii").lower()
        decoded = _decoded_body(data, e)
        if decoded is None:
            continue
        try:
            text = decoded.decode("ascii" if charset in ("us-ascii", "ascii") else charset)
            if text.encode("ascii" if charset in ("us-ascii", "ascii") else charset) != decoded:
                continue
        except (UnicodeError, LookupError):
            continue
        new = rewrap_text(text, width)
        if new != text:
            cte = e.get("content-transfer-encoding").lower()
            body = new.encode(charset if charset != "us-ascii" else "ascii")
            if cte in ("base64", "quoted-printable"):
                body = _encode(body, cte)
                body = body.rstrip(b"\n") if e.end < len(data) else body
            edits.append((e.body_start, e.end, body))
    return _splice(data, edits) if edits else None


def charset_label(data: bytes) -> bytes | None:
    root = parse(data)
    if root is None:
        return None
    edits = []
    for e in notice_parts(root):
        if e.children or not e.ctype.startswith("text/"):
            continue
        decoded = _decoded_body(data, e)
        if decoded is None or not decoded.isascii() or b"\x1b" in decoded:
            continue
        old = e.params.get("charset", "")
        try:
            if old and decoded.decode(old) != decoded.decode("ascii"):
                continue    # UTF-7 and the like: ASCII bytes that read otherwise
        except (UnicodeError, LookupError):
            continue
        new = "utf-8" if old.lower() not in ("utf-8", "utf8") else "us-ascii"
        f = e.find("content-type")
        if f is None:
            edits.append(_add_field(e, f"Content-Type: text/plain; charset={new}"))
            continue
        value = f.value
        if "charset" in e.params:
            value = re.sub(r"(?i)(charset\s*=\s*)(\"[^\"]*\"|[^;\s]*)", lambda m: m.group(1) + '"%s"' % new, value, count=1)
        else:
            value = value.rstrip() + f"; charset={new}"
        edits.append((f.start, f.end, (f.name + ":" + value).encode("latin-1")))
    return _splice(data, edits) if edits else None


def transcode(data: bytes) -> bytes | None:
    """Text parts whose text is not ASCII re-encoded as UTF-8 (labelled so): where the declared
    charset decodes them without error, the same characters."""
    root = parse(data)
    if root is None:
        return None
    edits = []
    for e in notice_parts(root):
        charset = e.params.get("charset", "").lower()
        if e.children or not e.ctype.startswith("text/") or charset in ("", "utf-8", "utf8"):
            continue
        decoded = _decoded_body(data, e)
        if decoded is None:
            continue
        try:
            text = decoded.decode(charset)
        except (UnicodeError, LookupError):
            continue
        if text.isascii():
            continue
        cte = e.get("content-transfer-encoding").lower()
        cte = cte if cte in ("base64", "quoted-printable") else "8bit"
        f = e.find("content-type")
        value = re.sub(r"(?i)(charset\s*=\s*)(\"[^\"]*\"|[^;\s]*)", lambda m: m.group(1) + '"utf-8"', f.value, count=1)
        edits.append((f.start, f.end, (f.name + ":" + value).encode("latin-1")))
        edits += _rebody(data, e, _encode(text.encode("utf-8"), cte), cte)
    return _splice(data, edits) if edits else None


def _add_field(e: Entity, line: str) -> tuple[int, int, bytes]:
    if e.head_end == e.start:
        return (e.start, e.start, line.encode() + b"\n")
    return (e.head_end, e.head_end, b"\n" + line.encode())


def _content_type_fields(data: bytes):
    root = parse(data)
    if root is None:
        return []
    return [(e, e.find("content-type")) for e in notice_parts(root) if e.find("content-type") is not None]


def content_type_case(data: bytes) -> bytes | None:
    """Field name, type, subtype, parameter names and the charset value upper-cased (all
    case-insensitive); other parameter values (boundary, report-type's) are left as they are."""
    edits = []
    for _e, f in _content_type_fields(data):
        main, semi, rest = f.value.partition(";")
        rest = re.sub(r"(;|^)(\s*)([A-Za-z0-9_\-*]+)(\s*=)", lambda m: m.group(1) + m.group(2) + m.group(3).upper() + m.group(4), rest)
        rest = re.sub(r"(?i)(charset\s*=\s*)(\"[^\"]*\"|[^;\s]*)", lambda m: m.group(1) + m.group(2).upper(), rest)
        new = ("CONTENT-TYPE:" + main.upper() + semi + rest).encode("latin-1")
        if new != data[f.start:f.end]:
            edits.append((f.start, f.end, new))
    return _splice(data, edits) if edits else None


def content_type_params(data: bytes) -> bytes | None:
    """An unknown parameter added first and last (RFC 2045 §5.1: ignored by a MIME reader)."""
    edits = []
    for _e, f in _content_type_fields(data):
        main, semi, rest = f.value.partition(";")
        new = f'{f.name}:{main.rstrip()}; x-origin="gateway"{";" + rest if semi else ""}; x-note=1'
        edits.append((f.start, f.end, new.encode("latin-1")))
    return _splice(data, edits) if edits else None


def content_type_quoting(data: bytes) -> bytes | None:
    """Every parameter value written as a quoted-string (RFC 2045 §5.1: token and quoted-string
    are the same value)."""
    edits = []
    for _e, f in _content_type_fields(data):
        value = re.sub(r'(;\s*[A-Za-z0-9_\-*]+\s*=\s*)([^";\s][^;\s]*)', r'\1"\2"', f.value)
        if value != f.value:
            edits.append((f.start, f.end, (f.name + ":" + value).encode("latin-1")))
    return _splice(data, edits) if edits else None


def rename_boundary(data: bytes) -> bytes | None:
    root = parse(data)
    if root is None:
        return None
    edits = []
    for n, e in enumerate(x for x in notice_parts(root) if x.ctype.startswith("multipart/")):
        old = e.params["boundary"]
        new = f"=_Part_{n}_robust.{len(data)}"
        if new.encode() in data:
            return None
        f = e.find("content-type")
        value = re.sub(r"(?i)(boundary\s*=\s*)(\"[^\"]*\"|[^;\s]*)", lambda m: m.group(1) + '"%s"' % new, f.value, count=1)
        edits.append((f.start, f.end, (f.name + ":" + value).encode("latin-1")))
        for a, b in e.delimiters:
            close = data[a:b].rstrip().endswith(old.encode("latin-1") + b"--")
            edits.append((a, b, b"--" + new.encode() + (b"--" if close else b"")))
    return _splice(data, edits) if edits else None


def multipart_wrap(data: bytes) -> bytes | None:
    """A single-part text message made a multipart/mixed of that one part (as a gateway does to
    add a footer part): the part takes the message's Content-Type and Content-Transfer-Encoding."""
    root = parse(data)
    if root is None or root.ctype != "text/plain" or not root.fields:
        return None
    moved = [f for f in root.fields if f.name.lower() in ("content-type", "content-transfer-encoding")]
    edits = [(f.start, f.end + 1, b"") for f in moved]      # each with its line break
    head = _splice(data[:root.head_end + 1], edits).rstrip(b"\n")
    if root.find("mime-version") is None:
        head += b"\nMIME-Version: 1.0"
    boundary = b"=_wrapped_%d" % len(data)
    if boundary in data:
        return None
    part_head = b"\n".join(data[f.start:f.end] for f in moved)
    return (head + b'\nContent-Type: multipart/mixed; boundary="' + boundary + b'"\n\n--' + boundary + b"\n" +
            part_head + b"\n\n" + data[root.body_start:].rstrip(b"\n") + b"\n--" + boundary + b"--\n")


def forward(data: bytes, client: str) -> bytes:
    """The message forwarded as an attachment, under "Fwd: " and its own subject (as clients do)."""
    root = parse(data)
    subject = (root.get("subject") if root is not None else "") or "message"
    return wrap(data, client, re.sub(r"\s+", " ", subject.strip())[:200])


def encoded_words(data: bytes) -> bytes | None:
    """An ASCII Subject, and the display name of an ASCII From, written as RFC 2047 encoded words
    (UTF-8, B encoding, at most 30 characters per word: the space between two words is not text)."""
    root = parse(data)
    if root is None:
        return None
    edits = []

    def words(text: str) -> str:
        chunks = [text[i:i + 30] for i in range(0, len(text), 30)]
        return " ".join("=?UTF-8?B?%s?=" % base64.b64encode(c.encode()).decode() for c in chunks)

    for name in ("subject", "from"):
        f = root.find(name)
        if f is None or not f.value.strip() or "=?" in f.value or not f.value.isascii():
            continue
        value = f.value.strip()
        if name == "from":
            m = re.fullmatch(r'"?([^"<>]*?)"?\s*(<[^<>]+>)', value)
            if m is None or not m.group(1).strip() or re.search(r'[()\\]', m.group(1)):
                continue
            new = words(m.group(1).strip()) + " " + m.group(2)
        else:
            new = words(re.sub(r"\s+", " ", value))
        edits.append((f.start, f.end, f"{f.name}: {new}".encode()))
    return _splice(data, edits) if edits else None


def field_name_case(data: bytes) -> bytes | None:
    """Field names (of the message, its parts and the delivery-status fields) in upper case."""
    root = parse(data)
    if root is None:
        return None
    fields = [f for e in notice_parts(root) for f in e.fields]
    for e in notice_parts(root):
        if e.ctype in ("message/delivery-status", "message/global-delivery-status") and \
                e.get("content-transfer-encoding").lower() in ("", "7bit", "8bit", "binary"):
            pos = e.body_start
            for block in re.split(rb"(\n[ \t]*\n)", _body(data, e)):
                if block.strip() and not block.startswith(b"\n"):
                    fields += _fields(data, pos, pos + len(block.rstrip(b"\n"))) or []
                pos += len(block)
    edits = [(f.start, f.start + len(f.name), f.name.upper().encode("latin-1")) for f in fields if f.name != f.name.upper()]
    return _splice(data, edits) if edits else None


TRANSFORMS = {
    "base64": lambda d: recode(d, "base64"),
    "quoted-printable": lambda d: recode(d, "quoted-printable"),
    "refold-fields": refold_fields,
    "refold-fields-narrow": lambda d: refold_fields(d, 16),
    "refold-header": refold_header,
    "rewrap-narrow": lambda d: rewrap(d, 52),
    "rewrap-72": lambda d: rewrap(d, 72),
    "rewrap-wide": lambda d: rewrap(d, 998),
    "charset-label": charset_label,
    "transcode-utf8": transcode,
    "encoded-words": encoded_words,
    "field-name-case": field_name_case,
    "content-type-case": content_type_case,
    "content-type-params": content_type_params,
    "content-type-quoting": content_type_quoting,
    "boundary": rename_boundary,
    "multipart-wrap": multipart_wrap,
    **{f"forward-{c}": (lambda c: lambda d: forward(d, c))(c) for c in CLIENTS},
}
