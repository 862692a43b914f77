"""Text a database text column can hold, and a visible escape for text it cannot.

Domain layer: pure. PostgreSQL text (and JSON) refuses NUL (U+0000), and no UTF-8 encoder
takes a lone surrogate (U+D800..U+DFFF, what `surrogateescape` decoding leaves for bad bytes).
Anything else is storable. `escape_unstorable` writes each such character as a backslash
escape (`\\x00`, `\\udc80`) and doubles existing backslashes only when it escapes something,
so the quarantine shows exactly which bytes were there and clean text is returned as is.
"""
from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(text: str) -> bool:
    """True if `text` holds a character no text column can store (NUL, lone surrogate)."""
    return _UNSTORABLE.search(text) is not None


def escape_unstorable(text: str) -> str:
    """`text` with every unstorable character as a backslash escape (unchanged when clean)."""
    if _UNSTORABLE.search(text) is None:
        return text
    text = text.replace("\\", "\\\\")
    return _UNSTORABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii")
                           if m.group() == "\x00" else "\\u%04x" % ord(m.group()), text)


def storable_value(value):
    """A str, or a JSON-like value (dict/list) made of them, with unstorable characters escaped."""
    if isinstance(value, str):
        return escape_unstorable(value)
    if isinstance(value, dict):
        return {escape_unstorable(str(k)): storable_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_value(v) for v in value]
    return value
