"""A small, bounded MIME reader for bounce messages: headers, parts, decoded text.

Domain layer: pure; stdlib only.
In: one message as bytes (any line ending, any charset, any transfer encoding).
Out: `Part` trees with unfolded headers, decoded bodies and their text.

Why not `email.policy.default`: it is ten times slower and raises on hostile input. Bounces
are read for a few headers and a few text parts, so this reader splits the bytes itself and
bounds the work: messages are cut at MAX_BYTES, nesting stops at MAX_DEPTH and a message has at
most MAX_PARTS parts, a header field at MAX_HEADER_VALUE bytes. Header values are decoded only
when asked for, and an enclosed original message is not split at all: its few wanted fields are
looked up in its raw header block. It never raises on malformed input; a broken part is read as
text. `parse_headers` / `split_head` / `normalise_newlines` are also used by the sink's intake.
"""
from __future__ import annotations

import binascii
import codecs
import functools
import quopri
import re
from dataclasses import dataclass, field

MAX_BYTES = 12 * 1024 * 1024  # bytes of a message that are read at all (> the sink's 10 MiB default)
MAX_DEPTH = 6              # multipart / message/* nesting
MAX_PARTS = 64             # parts per message
MAX_HEADER_LINES = 50_000  # lines of one header block (a 1 MB+ Received chain is ~10,000)
MAX_HEADER_VALUE = 8192    # bytes kept of one header field
# Parts that hold a returned original (whole, or its header section): RFC 2046 message/rfc822,
# RFC 6522 text/rfc822-headers, and their SMTPUTF8 forms of RFC 6532 / RFC 6533, message/global
# and message/global-headers (Postfix uses the latter two for a bounce of an SMTPUTF8 message,
# fixtures/dsn/postfix-smtputf8-global-headers.eml).
ENCLOSED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
                  "message/global-headers")
_NOT_BASE64 = bytes(c for c in range(256) if not (chr(c).isalnum() and c < 128 or c in b"+/"))

_LINE_ENDINGS = re.compile(rb"\r\n?")
_PARAM = re.compile(r';\s*([A-Za-z0-9_\-*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_ENCODED_WORD_GAP = re.compile(r"(\?=)\s+(=\?)")
_LAZY_FIELDS: dict[bytes, re.Pattern] = {}


def normalise_newlines(raw: bytes) -> bytes:
    """CRLF and bare CR to LF, so every later step sees one line ending."""
    if b"\r" in raw:
        return _LINE_ENDINGS.sub(b"\n", raw)
    return raw


@dataclass
class Part:
    headers: dict[str, list[str]] | None   # None: not parsed yet (see `lazy_part`)
    ctype: str                  # "text/plain", lowercased
    params: dict[str, str]
    body: bytes                 # raw body (transfer encoding not yet undone)
    children: list["Part"] = field(default_factory=list)
    _text: str | None = None
    _head: bytes = b""          # raw header block of a lazy part
    _found: dict[str, list[str]] | None = None
    _raw: dict[str, list[bytes]] | None = None   # split but not yet decoded header values
    _head_lower: bytes | None = None              # _head lowercased (lazy lookups)

    def get(self, name: str, default: str = "") -> str:
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        if self.headers is not None:
            return self.headers.get(name, [])
        if self._found is None:
            self._found = {}
        values = self._found.get(name)
        if values is None and self._raw is not None:
            # Values are decoded when asked for: most fields (Received, ARC-*, X-MS-*) never are.
            values = [decode_bytes(v) for v in self._raw.get(name, ())]
            self._found[name] = values
        elif values is None:
            # Lazy part: look for this one field only (a returned original carries dozens of
            # Received lines nobody reads). Field names are matched without regard to ASCII case:
            # in a lowercased copy of the header block, whose offsets are those of the original.
            key = name.encode("ascii", "replace")
            if self._head_lower is None:
                self._head_lower = self._head.lower()
            values = []
            if key in self._head_lower:
                rx = _LAZY_FIELDS.get(key)
                if rx is None:
                    rx = re.compile(rb"(?m)^" + re.escape(key.lower()) + rb"[ \t]*:(.*(?:\n[ \t].*)*)")
                    if len(_LAZY_FIELDS) < 256:     # names come from our code: a few dozen
                        _LAZY_FIELDS[key] = rx
                head = self._head
                values = [decode_bytes(b" ".join(x.strip() for x in head[m.start(1):m.end(1)].split(b"\n")))
                          for m in rx.finditer(self._head_lower)][:100]
            self._found[name] = values
        return values

    def all_headers(self) -> dict[str, list[str]]:
        if self.headers is None:
            if self._raw is not None:
                self.headers = {k: [decode_bytes(v) for v in vs] for k, vs in self._raw.items()}
            else:
                self.headers = parse_headers(self._head)
        return self.headers

    @property
    def maintype(self) -> str:
        return self.ctype.partition("/")[0]

    def decoded(self) -> bytes:
        """Body with Content-Transfer-Encoding undone (never raises)."""
        return decode_transfer(self.body, self.get("content-transfer-encoding"))

    def text(self) -> str:
        """Body decoded to str with the part's charset (replacement on errors)."""
        if self._text is None:
            self._text = decode_bytes(self.decoded(), self.params.get("charset", ""))
        return self._text

    def walk(self):
        """Depth-first parts, self first."""
        stack = [self]
        while stack:
            p = stack.pop()
            yield p
            stack.extend(reversed(p.children))


def decode_transfer(body: bytes, cte: str) -> bytes:
    cte = cte.strip().lower()
    try:
        if cte == "base64":
            # Only the alphabet is kept (line breaks, junk and the "=" padding go), then the
            # padding is put back: 2 or 3 characters left over are the last 1 or 2 bytes. (The
            # left-over used to be cut off, so a report whose length was not a multiple of 3 lost
            # its last bytes: "Action: failed" read "faile".) A single left-over carries no byte.
            data = body.translate(None, _NOT_BASE64)
            rest = len(data) % 4
            data = data[: len(data) - 1] if rest == 1 else data + b"=" * ((4 - rest) % 4)
            return binascii.a2b_base64(data)
        if cte == "quoted-printable":
            return quopri.decodestring(body)
    except (binascii.Error, ValueError):
        return body
    return body


@functools.lru_cache(maxsize=256)   # a few charsets recur; each costs a lookup and two probes
def _codec(charset: str) -> str:
    charset = charset.strip().strip('"').lower()
    if not charset:
        return "utf-8"
    try:
        name = codecs.lookup(charset).name
        try:
            b"a".decode(name)     # a text encoding? base64_codec, hex, zlib, rot13 raise LookupError
        except UnicodeDecodeError:
            pass                  # one byte is too short for utf-16 / utf-32: still text
        try:
            b"a\x80".decode(name, "replace")
        except UnicodeError:      # idna, punycode: text, but "replace" fails; read as if none were declared
            return "utf-8"
        return name
    except (LookupError, ValueError):     # unknown, not text, or not a name at all ("utf\x00-8")
        return "latin-1"


# ISO-2022-JP's switches to JIS X 0208 (ESC $ @, ESC $ B) and to JIS X 0212 (ESC $ ( D)
_ISO_2022_JP = re.compile(rb"\x1b\$(?:[@B]|\(D)")


def decode_bytes(data: bytes, charset: str = "") -> str:
    """Bytes to text: declared charset, else UTF-8, else (undeclared) Cyrillic, Japanese or
    Chinese when the bytes say so, else Latin-1; never raises. Seven-bit
    ISO-2022-JP (its escape sequences) is read as Japanese whatever the part declares: Domino
    writes it into a DSN's Diagnostic-Code, in a part that has no charset."""
    if data.isascii():
        if b"\x1b" not in data:
            return data.decode("ascii")
        if _ISO_2022_JP.search(data) and not charset.lower().startswith("iso-2022"):
            try:
                return data.decode("iso2022_jp_2")
            except UnicodeDecodeError:
                pass
    codec = _codec(charset)
    if codec in _WESTERN_SINGLE_BYTE:
        # UTF-8 labelled as Latin-1 / Windows-1252 (a gateway's default): real Latin-1 text with
        # accents is almost never also valid UTF-8, so valid UTF-8 is what was meant
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    # No charset, or US-ASCII over 8-bit bytes: Japanese or Chinese is worth a try. (A part that
    # declares another charset and breaks it keeps its old reading: au's notices declare
    # ISO-2022-JP over EUC-JP bytes, and their Japanese line, "address not found" whatever the
    # cause, would then outvote the English line that names it.)
    undeclared = charset.strip().strip('"').lower() in ("", "us-ascii", "ascii")
    return (undeclared and (_undeclared_cyrillic(data) or _undeclared_cjk(data))) or data.decode(codec if codec not in ("utf-8", "ascii") else "latin-1",
                                                                 errors="replace")


_WESTERN_SINGLE_BYTE = frozenset({"latin-1", "iso8859-1", "cp1252", "iso8859-15"})
_KANA = re.compile("[\u3041-\u30ff]")


_CYRILLIC_WORD = re.compile(rb"[\xc0-\xff]{3,}")


def _undeclared_cyrillic(data: bytes) -> str:
    """Russian / Ukrainian bytes under no charset: Windows-1251 or KOI8-R, whose letters are the
    bytes C0-FF in both. Read so when nearly every high byte is such a letter and they make
    words (runs of three: Latin-1 accents stand alone between plain letters; GB2312 uses A1-BF
    as much). Lower case, most of a text, is E0-FF in Windows-1251 and C0-DF in KOI8-R."""
    high = sum(b >= 0x80 for b in data)
    letters = sum(b >= 0xC0 for b in data)
    if high < 8 or letters < 0.9 * high or len(_CYRILLIC_WORD.findall(data)) < 2:
        return ""
    lower_1251 = sum(b >= 0xE0 for b in data)
    return data.decode("cp1251" if 2 * lower_1251 >= letters else "koi8_r", errors="replace")


def _undeclared_cjk(data: bytes) -> str:
    """Japanese (Shift_JIS / EUC-JP) or Chinese (GB2312) bytes that no charset, or a wrong one,
    declared: the Japanese reading if it decodes and holds full-width kana (Chinese text read as
    Shift_JIS gives half-width katakana, not these), else the Chinese one if it decodes strictly
    (both bytes of every character high, which Latin-1 text with an accent before a plain letter
    is not); "" if none: the caller reads Latin-1."""
    for codec in ("cp932", "euc_jp"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if _KANA.search(text):
            return text
    try:
        return data.decode("gb2312")
    except UnicodeDecodeError:
        return ""


def _decode_word(m: re.Match) -> str:
    charset, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
    charset = charset.split("*", 1)[0]
    try:
        if enc == "b":
            payload_b = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            payload_b = quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return m.group(0)
    return decode_bytes(payload_b, charset)


def decode_header(value: str) -> str:
    """RFC 2047 encoded words to text; anything malformed is left as is."""
    if "=?" not in value:
        return value
    value = value[:MAX_HEADER_VALUE]
    value = _ENCODED_WORD_GAP.sub(r"\1\2", value)
    return _ENCODED_WORD.sub(_decode_word, value)


def raw_header_map(block: bytes) -> dict[str, list[bytes]]:
    """Header block (LF line endings) to {lowercased name: [unfolded raw values]}."""
    headers: dict[str, list[bytes]] = {}
    name = ""
    value: list[bytes] = []
    for line in block.split(b"\n", MAX_HEADER_LINES)[:MAX_HEADER_LINES]:
        if line[:1] in (b" ", b"\t") or (name and b":" not in line and line):
            # Unindented text without a colon continues the previous field (seen from Verizon:
            # `boundary=` on its own line; fixtures/dsn/broken-folding.eml).
            if name:
                value.append(line.strip())
            continue
        if name:
            headers.setdefault(name, []).append(b" ".join(value) if len(value) > 1 else value[0])
            name = ""
        raw_name, sep, rest = line.partition(b":")
        raw_name = raw_name.rstrip()
        if sep and raw_name and b" " not in raw_name and b"\t" not in raw_name:
            name = raw_name.decode("latin-1").lower()
            value = [rest.strip()]
    if name:
        headers.setdefault(name, []).append(b" ".join(value) if len(value) > 1 else value[0])
    for vs in headers.values():
        for i, v in enumerate(vs):
            if len(v) > MAX_HEADER_VALUE:
                vs[i] = v[:MAX_HEADER_VALUE]
    return headers


def parse_headers(block: bytes) -> dict[str, list[str]]:
    """Header block (LF line endings) to {lowercased name: [unfolded values]}."""
    return {k: [decode_bytes(v) for v in vs] for k, vs in raw_header_map(block).items()}


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body of an LF-normalised entity."""
    if data.startswith(b"\n"):
        return b"", data[1:]
    i = data.find(b"\n\n")
    if i < 0:
        return data, b""
    return data[:i], data[i + 2:]


def content_type(value: str, default: str = "text/plain") -> tuple[str, dict[str, str]]:
    main, _, _rest = value.partition(";")
    words = main.split(None, 1)
    ctype = words[0].lower() if words else default
    if "/" not in ctype:
        ctype = default
    if len(words) > 1:
        # a parameter folded onto the next line without its ";" ("text/plain\n   charset=…", as
        # some Japanese gateways write it): a media type holds no space, so the rest is parameters
        value = f"{words[0]}; {words[1]}{value[len(main):]}"
    params = {}
    for m in _PARAM.finditer(value):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"')
        params[m.group(1).lower().rstrip("*")] = v
    return ctype, params


class _Budget:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def parse_entity(data: bytes, depth: int = 0, default_type: str = "text/plain",
                 budget: _Budget | None = None) -> Part:
    """Parse one LF-normalised entity into a Part tree (bounded; never raises)."""
    budget = budget or _Budget()
    budget.parts += 1
    head, body = split_head(data)
    raw = raw_header_map(head)
    ct = raw.get("content-type")
    ctype, params = content_type(decode_bytes(ct[0]), default_type) if ct else (default_type, {})
    part = Part(None, ctype, params, body, _raw=raw)
    if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
        return part
    if ctype.startswith("multipart/") and params.get("boundary"):
        child_type = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
        for chunk in split_multipart(body, params["boundary"]):
            if budget.parts >= MAX_PARTS:
                break
            part.children.append(parse_entity(chunk, depth + 1, child_type, budget))
    elif ctype in ENCLOSED_TYPES and body:
        inner = decode_transfer(body, part.get("content-transfer-encoding"))
        # The returned original is read for a few headers only (Message-ID, To, List-Id, our
        # stamp): they are looked up on demand and its MIME structure is not split.
        budget.parts += 1
        head, inner_body = split_head(inner.lstrip(b"\n"))
        part.children.append(Part(None, "text/plain", {}, inner_body, _head=head[:200_000]))
    return part


def header_lines(data: bytes) -> int:
    """Lines in the header block of LF-normalised `data` (counted up to MAX_HEADER_LINES + 1)."""
    head, _ = split_head(data.lstrip(b"\n"))
    return head.count(b"\n", 0) + 1 if head else 0


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """Body parts of a multipart body; tolerant of a missing close delimiter."""
    delim = b"--" + boundary.encode("latin-1", "replace")
    chunks = []
    pos = body.find(delim)
    if pos < 0:
        return [body] if body.strip() else []
    if pos > 0 and body[pos - 1:pos] != b"\n":
        pos = body.find(b"\n" + delim)
        if pos < 0:
            return [body]
        pos += 1
    while pos >= 0 and len(chunks) < MAX_PARTS:
        start = body.find(b"\n", pos)
        if body[pos + len(delim):pos + len(delim) + 2] == b"--" or start < 0:
            break
        nxt = body.find(b"\n" + delim, start)
        if nxt < 0:
            chunks.append(body[start + 1:])
            break
        chunks.append(body[start + 1:nxt])
        pos = nxt + 1
    return chunks


def parse_message_bytes(raw: bytes) -> Part:
    """Whole message bytes (any line ending) to a bounded Part tree."""
    data = normalise_newlines(raw[:MAX_BYTES])
    # Some exports start with an mbox "From " separator line; it is not a header.
    if data.startswith(b"From "):
        data = data.partition(b"\n")[2]
    return parse_entity(data.lstrip(b"\n"))
