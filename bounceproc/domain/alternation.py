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

and `fast_alternation_source` joins patterns so rewritten into one pattern. A search finds the
same matches (same start, same text); readable patterns stay in the rules and tables.

`pattern_anchors` reads, from the parse tree of the standard library's own regex parser, the
literal strings one of which every match of a pattern must contain. The classifier runs only the
rule alternatives whose anchors occur in a text; `prefiltered` does the same for one alternation:
a text holding none of its anchors is not searched at all.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from bounceproc.domain.derived_cache import code_stamp, derived
from bounceproc.domain.lazy_regex import LazyPattern, lazy

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


def fast_alternation_source(patterns: Iterable[str]) -> str:
    """One pattern matching where any of `patterns` does, each alternative letter-first."""
    return "|".join(letter_first(a) for p in patterns for a in split_alternatives(p))


# ------------------------------------------------------------------ anchors

try:
    from re import _constants as _sre, _parser as _sre_parse   # Python >= 3.11
except ImportError:  # pragma: no cover - older Pythons keep the same modules under other names
    try:
        import sre_constants as _sre  # type: ignore[no-redef]
        import sre_parse as _sre_parse  # type: ignore[no-redef]
    except ImportError:
        _sre = _sre_parse = None  # type: ignore[assignment]


_Anchors = tuple[frozenset, "int | None"]   # (literal strings, reach), see _required


def _better(a: _Anchors | None, b: _Anchors | None) -> _Anchors | None:
    """The more selective of two anchor sets: longest shortest member, then fewest members."""
    if b is None or not b[0] or not all(b[0]):
        return a
    if a is None:
        return b
    return b if (min(map(len, b[0])), -len(b[0])) > (min(map(len, a[0])), -len(a[0])) else a


def _add(x: int | None, y: int | None) -> int | None:
    return None if x is None or y is None else x + y


def _required(items, state) -> _Anchors | None:
    """(anchors, reach) for the parsed sequence `items`: every match contains one of the anchor
    strings, starting at most `reach` characters after the start of the match (None: no bound).
    None when no such set is found. Case-insensitive parts give nothing (the text is matched as is)."""
    S = _sre
    best: _Anchors | None = None
    run: list[str] = []
    run_at: int | None = 0      # reach of the current literal run
    at: int | None = 0          # most characters any match consumes before the current item
    for item in items:
        op, av = item
        width = _sre_parse.SubPattern(state, [item]).getwidth()[1]
        width = None if width >= S.MAXREPEAT else width
        lit = None
        if op is S.LITERAL:
            lit = chr(av)
        elif op is S.IN and len(av) == 1 and av[0][0] is S.LITERAL:
            lit = chr(av[0][1])
        if lit is not None:
            if not run:
                run_at = at
            run.append(lit)
            at = _add(at, 1)
            continue
        if op in (S.AT, S.ASSERT, S.ASSERT_NOT):
            continue            # zero-width: the literals on both sides are adjacent in the text
        repeat = op in (S.MAX_REPEAT, S.MIN_REPEAT, getattr(S, "POSSESSIVE_REPEAT", None))
        if repeat and av[0] >= 1 and len(av[2]) == 1 and av[2][0][0] is S.LITERAL:
            lo, hi, sub = av
            if not run:
                run_at = at
            run.append(chr(sub[0][1]) * min(lo, 64))
            at = _add(at, width)
            if hi == lo and lo <= 64:
                continue
            best = _better(best, (frozenset({"".join(run)}), run_at))
            run = []
            continue
        if run:
            best = _better(best, (frozenset({"".join(run)}), run_at))
            run = []
        sub_req: _Anchors | None = None
        if repeat and av[0] >= 1:
            sub_req = _required(av[2], state)     # every repetition, so the first, holds one
        elif op is S.BRANCH:
            alts = [_required(a, state) for a in av[1]]
            if all(alts):
                sub_req = (frozenset().union(*(a[0] for a in alts)),
                           None if any(a[1] is None for a in alts) else max(a[1] for a in alts))
        elif op is S.SUBPATTERN and not av[1] & re.I:
            sub_req = _required(av[3], state)
        elif op is getattr(S, "ATOMIC_GROUP", None):
            sub_req = _required(av, state)
        if sub_req is not None:
            best = _better(best, (sub_req[0], _add(at, sub_req[1])))
        at = _add(at, width)
    if run:
        best = _better(best, (frozenset({"".join(run)}), run_at))
    return best


def pattern_anchors(pattern: str) -> tuple[tuple[str, ...], int | None] | None:
    """Anchors of one (alternative of a) diagnostic pattern and their reach: every match contains
    one of the anchors, starting at most `reach` characters into the match (None: unbounded).
    None when the pattern has no literal every match needs (it is then always tried)."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern, re.S)
        if parsed.state.flags & re.I:
            return None
        found = _required(parsed.data, parsed.state)
    except Exception:  # noqa: BLE001 - a parser detail we do not know: no anchor, never a wrong one
        return None
    if not found:
        return None
    anchors, reach = found
    # An anchor that contains another one of the same set adds nothing; the one it contains
    # starts at most len(dropped) further into the match.
    keep = [a for a in anchors if not any(b != a and b in a for b in anchors)]
    if len(keep) != len(anchors) and reach is not None:
        reach += max(len(a) for a in anchors if a not in keep)
    return tuple(sorted(keep, key=lambda a: (-len(a), a))), reach


class Prefiltered:
    """A pattern searched only in texts that hold one of the literals every match needs (`literals`
    None: always searched). Same results as `pattern.search`. Both are worked out on the first
    search: reading the alternatives' anchors is start-up time a one-message process may not need."""

    __slots__ = ("_patterns", "_pattern", "_literals")

    def __init__(self, patterns: list[str]):
        self._patterns: list[str] | None = patterns
        self._pattern: LazyPattern | None = None
        self._literals: tuple[str, ...] | None = None

    def _build(self) -> None:
        if self._patterns is not None:
            # Splitting, rewriting and reading anchors take tens of milliseconds for the large
            # evidence tables: a one-message process reads them from the cache instead.
            patterns = self._patterns
            data = _derived_from("alternation", patterns, lambda: {
                "pattern": fast_alternation_source(patterns), "literals": _anchors_of_all(patterns)})
            self._pattern = lazy(data["pattern"])
            self._literals = None if data["literals"] is None else tuple(data["literals"])
            self._patterns = None

    @property
    def literals(self) -> tuple[str, ...] | None:
        self._build()
        return self._literals

    def search(self, text: str) -> re.Match | None:
        if self._patterns is not None:
            self._build()
        if self._literals is not None:
            for lit in self._literals:
                if lit in text:
                    break
            else:
                return None
        return self._pattern.search(text)


def fast_alternations(patterns: list[str]) -> list[LazyPattern]:
    """Each of `patterns` letter-first, compiled on first use (a one-message process needs few of
    them); the rewriting read from the cache where an earlier process did it (see Prefiltered)."""
    sources = _derived_from("letter-first", patterns, lambda: [fast_alternation_source([p]) for p in patterns])
    return [lazy(src) for src in sources]


def _derived_from(kind: str, patterns: list[str], derive):
    """derived_cache.derived for data worked out from `patterns` by this module: its source is the
    patterns and this module's code stamp (an edit of the rewriting or the anchors derives again)."""
    return derived(kind, "\n".join([f"alternation {code_stamp(__file__)}"] + patterns), derive)


def prefiltered(patterns: Iterable[str]) -> Prefiltered:
    """`fast_alternation_source(patterns)`, searched only where one of its alternatives' anchors occurs
    (with reach: an anchor later in a match than its start is still in the text)."""
    return Prefiltered(list(patterns))


def _anchors_of_all(patterns: list[str]) -> tuple[str, ...] | None:
    """The literals one of which is in every text where one of `patterns` matches (None: some
    alternative has no anchor, search always)."""
    literals: set[str] = set()
    for p in patterns:
        for alt in split_alternatives(p):
            found = pattern_anchors(alt)
            if found is None:
                return None
            literals.update(found[0])
    # A literal that contains another adds nothing: the shorter one is in every text the longer is.
    return tuple(sorted(x for x in literals if not any(y != x and y in x for y in literals)))
