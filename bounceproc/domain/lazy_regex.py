"""Regular expressions compiled on first use.

Domain layer: pure (stdlib only).
`bounceproc classify FILE` is a whole process for one message, and one message needs few of the
parsers' large patterns (bounce-detection heuristics for mail without a delivery report, the
cut lines of legacy notices, auto-reply subjects): compiling them all at import was start-up
time. `lazy(pattern, flags)` stands in for `re.compile(pattern, flags)` at module level and
compiles on first use; from then on the compiled pattern's methods are the object's own
attributes, so a call costs what it did.
"""
from __future__ import annotations

import re

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")


class LazyPattern:
    """`re.compile(pattern, flags)`, deferred until a method or attribute is first used."""

    def __init__(self, pattern: str | bytes, flags: int = 0):
        self._source = (pattern, flags)

    def __getattr__(self, name: str):
        # Reached before the first use (the methods are not yet attributes of the object) and
        # for the rarer attributes (pattern, flags, groups): re.compile's own cache answers those.
        if name.startswith("_"):
            raise AttributeError(name)
        compiled = re.compile(*self._source)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        return getattr(compiled, name)


def lazy(pattern: str | bytes, flags: int = 0) -> LazyPattern:
    return LazyPattern(pattern, flags)
