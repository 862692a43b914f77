"""domain/lazy_regex.py: a pattern compiled on first use answers as re.compile's would."""
from __future__ import annotations

import re

from bounceproc.domain.lazy_regex import lazy


def test_a_lazy_pattern_answers_as_the_compiled_one():
    source, flags = r"user (unknown|not found)", re.I
    rx, compiled = lazy(source, flags), re.compile(source, flags)
    assert "search" not in vars(rx)                       # nothing compiled yet
    text = "550 5.1.1 User Unknown; and user not found"
    assert rx.search(text).group(1) == compiled.search(text).group(1)
    assert "search" in vars(rx)                           # the compiled pattern's own methods now
    assert rx.findall(text) == compiled.findall(text)
    assert rx.sub("-", text) == compiled.sub("-", text)
    assert rx.match(text) is None and rx.fullmatch("USER UNKNOWN")
    assert [m.span() for m in rx.finditer(text)] == [m.span() for m in compiled.finditer(text)]
    assert rx.split(text) == compiled.split(text) and rx.subn("", text) == compiled.subn("", text)
    assert (rx.pattern, rx.flags, rx.groups) == (compiled.pattern, compiled.flags, compiled.groups)


def test_bytes_patterns_and_errors_surface_on_first_use():
    assert lazy(rb"\r\n?").sub(b"\n", b"a\r\nb\rc") == b"a\nb\nc"
    bad = lazy("(unclosed")
    try:
        bad.search("x")
    except re.error:
        pass
    else:
        raise AssertionError("a bad pattern must raise re.error when used")
