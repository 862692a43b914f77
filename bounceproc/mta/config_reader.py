"""Read a PowerMTA-syntax config file into the domain model, with file:line in every error.

Adapter layer: file I/O (includes, wildcards) and tokenising; the meaning of each directive is in
bounceproc.domain.mta.build. In: a path. Out: MtaConfig (its `warnings` name aliases); ConfigError.

Syntax (`powermta.md` §3): `name value` per line, `#` comments outside quotes, `"..."` quoting
(`""` clears an inherited value), `<tag arg> ... </tag>` blocks, `include FILE` with wildcards,
relative to the including file. A block may sit on one line with several directives, as the seed
guide writes it: `<domain *> max-delivery-rate 1000/h retry-interval 5m bounce-after 5d </domain>`;
there the words that are directive names of the block start a new directive.
"""
from __future__ import annotations

import glob
import os
import re

from bounceproc.domain.mta.build import (
    Block, Directive, build_config, directive_names,
)
from bounceproc.domain.mta.config import ConfigError, MtaConfig, Where

MAX_INCLUDE_DEPTH = 16
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9-]*)\s*((?:\"[^\"]*\"|[^>\"])*)>")
_NAMES_CACHE: dict[str, set[str]] = {}


def _names(scope: str) -> set[str]:
    if scope not in _NAMES_CACHE:
        _NAMES_CACHE[scope] = directive_names(scope)
    return _NAMES_CACHE[scope]


def _scope_of(tag: str | None) -> str:
    return tag or "global"


def strip_comment(line: str) -> str:
    if '"' not in line:
        return line.split("#", 1)[0]
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            break
        out.append(ch)
    return "".join(out)


def _words(text: str, where: Where, errors: list[str]) -> list[tuple[str, bool]]:
    """Split on blanks, honouring quotes; each word with `was quoted`."""
    if '"' not in text:
        return [(w, False) for w in text.split()]
    out, buf, quoted, was_quoted = [], [], False, False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            was_quoted = True
        elif ch.isspace() and not quoted:
            if buf or was_quoted:
                out.append(("".join(buf), was_quoted))
            buf, was_quoted = [], False
        else:
            buf.append(ch)
    if quoted:
        errors.append(f"{where}: unbalanced quote (expected a closing \")")
    if buf or was_quoted:
        out.append(("".join(buf), was_quoted))
    return out


def _directives(text: str, where: Where, scope: str, one_line: bool, errors: list[str]) -> list[Directive]:
    words = _words(text, where, errors)
    if not words:
        return []
    groups: list[list[tuple[str, bool]]] = [[words[0]]]
    if one_line:
        names = _names(scope)
        for w in words[1:]:
            (groups.append([w]) if (not w[1] and w[0] in names) else groups[-1].append(w))
    else:
        groups[0].extend(words[1:])
    out = []
    for g in groups:
        name = g[0][0]
        rest = g[1:]
        cleared = len(rest) == 1 and rest[0] == ("", True)
        out.append(Directive(name, " ".join(w for w, _ in rest), where, cleared))
    return out


class _Reader:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def read(self, path: str, depth: int = 0, stack: list[Block] | None = None,
             root: list | None = None) -> list:
        root = [] if root is None else root
        stack = [] if stack is None else stack
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(f"{path}: cannot read: {exc}")
            return root
        base_depth = len(stack)
        for lineno, raw in enumerate(lines, 1):
            where = Where(path, lineno)
            line = strip_comment(raw).strip()
            if not line:
                continue
            pos, opened_here = 0, False
            if "<" not in line:
                self._text(line, where, stack, root, False, depth)
                continue
            for m in _TAG.finditer(line):
                self._text(line[pos:m.start()], where, stack, root, opened_here, depth)
                pos = m.end()
                closing, tag, arg = m.group(1), m.group(2).lower(), m.group(3).strip()
                if closing:
                    if len(stack) <= base_depth or stack[-1].tag != tag:
                        expected = f"</{stack[-1].tag}>" if len(stack) > base_depth else "no closing tag"
                        self.errors.append(f"{where}: unexpected </{tag}> (expected {expected})")
                    else:
                        stack.pop().end = where
                    opened_here = False
                else:
                    if len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"':
                        arg = arg[1:-1]
                    block = Block(tag, arg, where)
                    (stack[-1].children if stack else root).append(block)
                    stack.append(block)
                    opened_here = True
            if pos == 0 and "<" in line and line.lstrip().startswith("<"):
                self.errors.append(f"{where}: malformed tag (expected <tag arg> or </tag>)")
                continue
            self._text(line[pos:], where, stack, root, opened_here, depth)
        if len(stack) > base_depth:
            for b in stack[base_depth:]:
                self.errors.append(f"{b.where}: <{b.tag}> is never closed (expected </{b.tag}> "
                                   f"before the end of {path})")
            del stack[base_depth:]
        return root

    def _text(self, text: str, where: Where, stack: list[Block], root: list, one_line: bool,
              depth: int) -> None:
        if not text.strip():
            return
        scope = _scope_of(stack[-1].tag if stack else None)
        target = stack[-1].children if stack else root
        for d in _directives(text, where, scope, one_line, self.errors):
            if d.name == "include":
                self._include(d, stack, root, depth)
            else:
                target.append(d)

    def _include(self, d: Directive, stack: list[Block], root: list, depth: int) -> None:
        if depth >= MAX_INCLUDE_DEPTH:
            self.errors.append(f"{d.where}: include nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)")
            return
        if stack and stack[-1].tag not in ("source", "domain", "virtual-mta"):
            self.errors.append(f"{d.where}: 'include' is not allowed in <{stack[-1].tag}>")
            return
        pattern = d.value if os.path.isabs(d.value) else os.path.join(os.path.dirname(d.where.file), d.value)
        paths = sorted(glob.glob(pattern))
        if not paths and not glob.has_magic(pattern):
            self.errors.append(f"{d.where}: include: no such file {pattern}")
        for p in paths:
            self.read(p, depth + 1, stack, root)


def read_config(path: str) -> MtaConfig:
    """Parse and build; ConfigError lists every syntax and directive error with file:line."""
    reader = _Reader()
    nodes = reader.read(path)
    try:
        cfg = build_config(nodes)
    except ConfigError as exc:
        raise ConfigError(reader.errors + exc.errors) from None
    if reader.errors:
        raise ConfigError(reader.errors)
    return cfg
