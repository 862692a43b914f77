"""Regular-expression alternations that Python's `re` scans quickly; a pattern's top-level alternatives.

Domain layer: pure, stdlib only.
`re` skips ahead to the characters that can start a match only when every alternative of a
pattern starts with a literal character. One alternative that starts with a word boundary, a
lookbehind or a group of alternatives (`\\bspf\\b`, `(?<!not )listed`, `(?:helo|ehlo) command`)
makes it try every alternative at every position of the text: ~5-10 times slower on a 100-character
diagnostic. `letter_first` rewrites those three forms into equivalent ones that start with a letter:

    \\bspf\\b              ->  s(?<!\\ws)pf\\b
    (?<!not )listed      ->  l(?<!not l)isted
    (?:helo|ehlo) cmd    ->  helo cmd|ehlo cmd

and `fast_alternation` joins patterns so rewritten into one compiled pattern. A search finds the
same matches (same start, same text); readable patterns stay in the rules and tables.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

_LEAD_BOUNDARY = re.compile(r"\\b(\w)")                      # \bx...
_LEAD_LOOKBEHIND = re.compile(r"\(\?<!([^()\\\[]*)\)(\w)")   # (?<!text)x...
_QUANTIFIERS = ("?", "*", "+", "{")
_LEAD_WORDS = re.compile(r"\(\?:([\w ]+(?:\|[\w ]+)+)\)")   # (?:word|word)...


def split_alternatives(pattern: str) -> list[str]:
    """`a|b(?:c|d)|[|]` -> ['a', 'b(?:c|d)', '[|]']: the top-level alternatives of a pattern.

    A search for the pattern succeeds exactly when a search for one of them does. Patterns with
    global inline flags, comments or verbose mode are not split (returned whole).
    """
    if re.match(r"\(\?[aiLmsux]+\)", pattern) or "(?#" in pattern or re.search(r"\(\?[aiLmsu]*x", pattern):
        return [pattern]
    out, depth, start, i, n = [], 0, 0, 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1          # a ']' right after '[' or '[^' is a literal
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    try:
        for p in out:
            re.compile(p, re.S)
    except re.error:
        return [pattern]
    return out


def _top_level_bar(pattern: str) -> bool:
    return len(split_alternatives(pattern)) > 1


def letter_first(pattern: str) -> str:
    """`pattern` rewritten, where it has one of the forms above, to start with a letter."""
    m = _LEAD_BOUNDARY.match(pattern)
    if m and not pattern.startswith(_QUANTIFIERS, m.end()):
        c = m.group(1)
        return f"{c}(?<!\\w{c}){pattern[m.end():]}"
    m = _LEAD_LOOKBEHIND.match(pattern)
    if m and not pattern.startswith(_QUANTIFIERS, m.end()):
        c = m.group(2)
        return f"{c}(?<!{m.group(1)}{c}){pattern[m.end():]}"
    m = _LEAD_WORDS.match(pattern)
    rest = pattern[m.end():] if m else ""
    if m and not rest.startswith(_QUANTIFIERS) and not _top_level_bar(rest):
        return "|".join(letter_first(w + rest) for w in m.group(1).split("|"))
    return pattern


def fast_alternation(patterns: Iterable[str], flags: int = 0) -> re.Pattern:
    """One pattern matching where any of `patterns` does, each alternative letter-first."""
    return re.compile("|".join(letter_first(a) for p in patterns for a in split_alternatives(p)), flags)
