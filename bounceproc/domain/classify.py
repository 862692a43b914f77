"""Classify one delivery failure (status, reply code, diagnostic, remote MTA) into reason/category/hard/rule.

Domain layer: pure; stdlib only (tomllib, re).
In: the four facts an MTA gives about a failed recipient, in DSN or PowerMTA acct form
(`5.1.1 (bad destination mailbox address)`, `smtp;550 5.1.1 <u@x>: user unknown`).
Out: `Classification(reason, category, hard, rule)`; reason in the vocabulary of
reference/taxonomy.md, category the PowerMTA bounceCat, `hard` per taxonomy.md.

Rules are data: `rules/bounces.toml` is an ordered table, the first matching rule wins, and a
user file loaded with `load_classifier(path)` goes before it. `rules/reasons.toml` maps each
reason to its category, hardness and the placeholder status used when a message gives no code.

Compiled once, per classifier:
- every rule that names a diagnostic pattern becomes one alternative of ONE regular expression
  `(?=(?P<r0>...)|(?P<r1>...)|...)` scanned over the lowercased diagnostic; the scan yields the
  (few) rules whose wording occurs;
- every rule without a diagnostic pattern becomes one alternative of ONE anchored expression
  over `status NUL reply NUL remote-mta`, whose first matching alternative is the best fallback;
- the winner is the lowest-numbered candidate whose status / reply / MTA conditions hold.
Diagnostic patterns are matched against lowercased text, so they are written in lowercase.
Results are memoised on the normalised inputs (addresses stripped), because a stream of
bounces repeats the same few hundred diagnostics.
"""
from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
_REPLY_START = re.compile(r"^\s*\(?([245]\d\d)(?![\d.])")
_REPLY_ANY = re.compile(r"(?<![\d.\-/:#])([245][0-5]\d)(?:[ \-](?![\d]{2}:)|:(?= )|$)")
MAX_DIAGNOSTIC = 2000

HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})


@dataclass(frozen=True, slots=True)
class Classification:
    reason: str      # taxonomy.md vocabulary
    category: str    # PowerMTA bounceCat
    hard: bool       # the address itself is bad (taxonomy.md)
    rule: str        # id of the rule that decided


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    reason: str
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    sample: str = ""         # corpus file or fixture that justifies the rule
    source: str = ""         # rules file it came from


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    category: str
    hard: bool
    pseudo_status: str       # x.0.9xx placeholder when a message gives no code ("" = none)


class RulesError(ValueError):
    """A rules file that cannot be used (syntax, unknown reason, bad pattern)."""


def _data_path(name: str):
    return resources.files("bounceproc.domain").joinpath("rules", name)


@functools.cache
def load_reasons() -> dict[str, ReasonInfo]:
    data = tomllib.loads(_data_path("reasons.toml").read_text(encoding="utf-8"))
    return {name: ReasonInfo(v["category"], bool(v.get("hard", False)), v.get("pseudo_status", ""))
            for name, v in data["reason"].items()}


def category_for(reason: str) -> str:
    """PowerMTA bounceCat of a taxonomy reason ("other" when unknown)."""
    info = load_reasons().get(reason)
    return info.category if info else "other"


def is_hard(reason: str, status: str = "", reply_code: str = "") -> bool:
    """taxonomy.md: userunknown/hostunknown/hasmoved always; notaccept unless temporary (4xx)."""
    if reason not in HARD_REASONS:
        return False
    if reason == "notaccept":
        return not (status.startswith("4") or (not status and reply_code.startswith("4")))
    return True


def pseudo_status(reason: str, temporary: bool = False) -> str:
    """The placeholder code for a reason when the message carries none (`5.0.911` ...)."""
    info = load_reasons().get(reason)
    code = info.pseudo_status if info else ""
    if code and temporary:
        code = "4" + code[1:]
    return code


def find_status(text: str) -> str:
    m = _STATUS.search(text or "")
    return "%s.%s.%s" % m.groups() if m else ""


def normalise_status(status: str) -> str:
    """`5.1.1 (bad destination mailbox address)` -> `5.1.1`; anything without a code -> ``."""
    m = _STATUS.search(status or "")
    return "%s.%s.%s" % m.groups() if m else ""


def strip_type(diagnostic: str) -> str:
    """`smtp; 550 ...` / `x-pmta;...` -> the text after the diagnostic type."""
    if not diagnostic:
        return ""
    head, sep, rest = diagnostic.partition(";")
    word = head.strip()
    if sep and 0 < len(word) <= 24 and word.replace("-", "").isalnum() and word[0].isalpha():
        return rest.lstrip()
    return diagnostic


def find_reply_code(text: str) -> str:
    """SMTP reply code at the start of the text, else the first plausible one inside it."""
    if not text:
        return ""
    m = _REPLY_START.match(text)
    if m:
        return m.group(1)
    m = _REPLY_ANY.search(text[:600])
    return m.group(1) if m else ""


# ---------------------------------------------------------------------------- rules files

def _code_pattern(spec: str | list, width: int) -> str:
    """`5.1.1`, `x.1.1`, `5.7.*`, `55x`, `none` (the message gave no code), or a list of those
    -> regex source (anchored, exact)."""
    specs = spec if isinstance(spec, list) else [spec]
    out = []
    for s in specs:
        s = str(s).strip().lower()
        if not s:
            continue
        if s == "none":
            out.append("")      # empty alternative: the field is empty (anchored by the NUL after it)
            continue
        body = ""
        for i, ch in enumerate(s):
            if ch == "x":
                body += "[45]" if i == 0 and width == 5 else "\\d"
            elif ch == "*":
                body += "[0-9.]*"
            elif ch == ".":
                body += "\\."
            elif ch.isdigit():
                body += ch
            else:
                raise RulesError(f"bad code pattern {s!r}")
        out.append(body)
    return "(?:%s)" % "|".join(out) if out else ""


def parse_rules(text: str, source: str = "") -> list[Rule]:
    """Rules TOML text -> [Rule]; raises RulesError with the reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source or 'rules'}: TOML: {exc}") from None
    rules = []
    for n, r in enumerate(data.get("rule", []), 1):
        if not isinstance(r, dict) or not r.get("id") or not r.get("reason"):
            raise RulesError(f"{source}: rule #{n} needs an id and a reason")
        unknown = set(r) - {"id", "reason", "status", "reply_code", "diagnostic", "remote_mta",
                            "sample", "fixture", "note"}
        if unknown:
            raise RulesError(f"{source}: rule {r['id']}: unknown keys {sorted(unknown)}")
        status = r.get("status", "")
        reply = r.get("reply_code", "")
        rules.append(Rule(
            id=str(r["id"]), reason=str(r["reason"]),
            status=",".join(status) if isinstance(status, list) else str(status),
            reply_code=",".join(reply) if isinstance(reply, list) else str(reply),
            diagnostic=str(r.get("diagnostic", "")), remote_mta=str(r.get("remote_mta", "")),
            sample=str(r.get("sample", r.get("fixture", ""))), source=source))
    return rules


def check_rules(rules: list[Rule]) -> list[str]:
    """Problems in a rule list: unknown reason, bad regex, duplicate id, shadowed rule."""
    problems = []
    reasons = load_reasons()
    seen: dict[str, int] = {}
    uncond: dict[tuple, str] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(f"{rule.id}: duplicate rule id")
        seen[rule.id] = 1
        if rule.reason not in reasons:
            problems.append(f"{rule.id}: unknown reason {rule.reason!r}")
        for fld in ("diagnostic", "remote_mta"):
            pat = getattr(rule, fld)
            if not pat:
                continue
            try:
                rx = re.compile(pat)
            except re.error as exc:
                problems.append(f"{rule.id}: bad {fld} regex: {exc}")
                continue
            if rx.groups:
                problems.append(f"{rule.id}: {fld} has capturing groups; use (?:...)")
            if re.search(r"(?<!\\)[A-Z]", re.sub(r"\\[A-Za-z]|\[[^\]]*\]|\(\?[A-Za-z]+", "", pat)):
                problems.append(f"{rule.id}: {fld} has upper-case letters; text is lowercased first")
            if rx.match(""):
                problems.append(f"{rule.id}: {fld} matches the empty string")
        try:
            _code_pattern(rule.status.split(",") if rule.status else "", 5)
            _code_pattern(rule.reply_code.split(",") if rule.reply_code else "", 3)
        except RulesError as exc:
            problems.append(f"{rule.id}: {exc}")
        # A rule is unreachable when an earlier rule has the same or weaker conditions.
        key = (rule.status, rule.reply_code, rule.remote_mta, rule.diagnostic)
        for (st, rc, mta, dg), earlier in uncond.items():
            if (st in ("", rule.status) and rc in ("", rule.reply_code) and mta in ("", rule.remote_mta)
                    and dg in ("", rule.diagnostic)):
                problems.append(f"{rule.id}: unreachable, shadowed by earlier rule {earlier}")
                break
        uncond.setdefault(key, rule.id)
    return problems


# ---------------------------------------------------------------------------- engine

class Classifier:
    """An ordered rule list compiled into two regular expressions (see module docstring)."""

    def __init__(self, rules: list[Rule]):
        problems = [p for p in check_rules(rules) if "unreachable" not in p and "upper-case" not in p]
        if problems:
            raise RulesError("; ".join(problems))
        self.rules = tuple(rules)
        self.reasons = load_reasons()
        diag_alts, key_alts = [], []
        self._cond: list[re.Pattern | None] = []
        for i, rule in enumerate(rules):
            cond = self._key_condition(rule)
            self._cond.append(re.compile(cond) if cond else None)
            if rule.diagnostic:
                diag_alts.append(f"(?P<r{i}>{rule.diagnostic})")
            else:
                key_alts.append(f"{cond}(?P<r{i}>)")
        self._diag = re.compile("(?=%s)" % "|".join(diag_alts), re.S) if diag_alts else None
        self._single = [re.compile(r.diagnostic, re.S) if r.diagnostic else None for r in rules]
        self._diag_ids = [i for i, r in enumerate(rules) if r.diagnostic]
        self._keys = re.compile("(?:%s)" % "|".join(key_alts), re.S) if key_alts else None
        # Two memo levels: the raw 4-tuple (a stream repeats identical diagnostics) and the
        # normalised one (diagnostics that differ only by the address in them).
        self._raw_memo = functools.lru_cache(maxsize=65536)(self._classify_raw)
        self._memo = functools.lru_cache(maxsize=65536)(self._classify_normalised)
        self._explain_memo = functools.lru_cache(maxsize=4096)(self._explain_raw)

    def _diag_rules_after(self, i: int, best: int):
        for j in self._diag_ids:
            if i < j < best:
                yield j

    @staticmethod
    def _key_condition(rule: Rule) -> str:
        parts = []
        if rule.status:
            parts.append("(?=%s\x00)" % _code_pattern(rule.status.split(","), 5))
        if rule.reply_code:
            parts.append("(?=[^\x00]*\x00%s\x00)" % _code_pattern(rule.reply_code.split(","), 3))
        if rule.remote_mta:
            parts.append("(?=[^\x00]*\x00[^\x00]*\x00[^\x00]*?(?:%s))" % rule.remote_mta)
        return "".join(parts)

    def classify(self, status: str = "", reply_code: str = "", diagnostic: str = "",
                 remote_mta: str = "") -> Classification:
        return self._raw_memo(status, reply_code, diagnostic, remote_mta)

    def _classify_raw(self, status: str, reply_code: str, diagnostic: str, remote_mta: str) -> Classification:
        return self._memo(*normalise_inputs(status, reply_code, diagnostic, remote_mta))

    def explain(self, status: str = "", reply_code: str = "", diagnostic: str = "",
                remote_mta: str = "") -> str:
        """One line saying which rule decided and on what evidence."""
        return self._explain_memo(status, reply_code, diagnostic, remote_mta)

    def _explain_raw(self, status: str, reply_code: str, diagnostic: str, remote_mta: str) -> str:
        st, rc, diag, mta = normalise_inputs(status, reply_code, diagnostic, remote_mta)
        c = self._memo(st, rc, diag, mta)
        rule = next((r for r in self.rules if r.id == c.rule), None)
        if rule is None:
            return f"no rule matched status={st or '-'} reply={rc or '-'}"
        ev = []
        if rule.status:
            ev.append(f"status {st} ~ {rule.status}")
        if rule.reply_code:
            ev.append(f"reply {rc} ~ {rule.reply_code}")
        if rule.remote_mta:
            ev.append(f"remote-mta ~ /{rule.remote_mta}/")
        if rule.diagnostic:
            m = re.search(rule.diagnostic, diag, re.S)
            ev.append("diagnostic says %r" % (m.group(0)[:80] if m else ""))
        return f"rule {rule.id} ({rule.source}) -> {c.reason}: " + "; ".join(ev or ["default"])

    def _classify_normalised(self, status: str, reply: str, diag: str, mta: str) -> Classification:
        key = f"{status}\x00{reply}\x00{mta}\x00"
        best = len(self.rules)
        if self._keys is not None:
            m = self._keys.match(key)
            if m:
                best = int(m.lastgroup[1:])
        if self._diag is not None and diag:
            for m in self._diag.finditer(diag):
                i = int(m.lastgroup[1:])
                if i >= best:
                    continue
                cond = self._cond[i]
                if cond is None or cond.match(key):
                    best = i
                else:
                    # A rule whose code condition fails hides the later rules that match at the
                    # same position; try those (rare: only rules with a code condition get here).
                    pos = m.start()
                    for j in self._diag_rules_after(i, best):
                        c = self._cond[j]
                        if self._single[j].match(diag, pos) and (c is None or c.match(key)):
                            best = j
                            break
        if best == len(self.rules):
            reason, rule_id = "undefined", "none"
        else:
            reason, rule_id = self.rules[best].reason, self.rules[best].id
        info = self.reasons.get(reason)
        return Classification(reason, info.category if info else "other",
                              is_hard(reason, status, reply), rule_id)


def normalise_inputs(status: str, reply_code: str, diagnostic: str, remote_mta: str) -> tuple[str, str, str, str]:
    """The key the rules see: bare codes, lowercased one-line diagnostic without addresses."""
    diag = strip_type(diagnostic or "")[:MAX_DIAGNOSTIC]
    st = normalise_status(status) or find_status(diag)
    rc = (reply_code or "").strip()[:3]
    if not (len(rc) == 3 and rc.isdigit()):
        rc = find_reply_code(diag)
    words = diag.replace("\x00", " ").lower().split()
    if "@" in diag:
        # Addresses make every diagnostic unique and never decide a rule: fold them away.
        words = ["<>" if "@" in w else w for w in words]
    diag = " ".join(words)
    mta = strip_type(remote_mta or "").replace("\x00", " ").strip().lower()[:255]
    return st, rc, diag, mta


def default_rules() -> list[Rule]:
    return parse_rules(_data_path("bounces.toml").read_text(encoding="utf-8"), "bounces.toml")


def load_classifier(extra_rules: str | os.PathLike | None = None) -> Classifier:
    """Default rules, with the rules of `extra_rules` (a TOML file) taking precedence."""
    rules = default_rules()
    if extra_rules:
        with open(extra_rules, encoding="utf-8") as fh:
            rules = parse_rules(fh.read(), os.fspath(extra_rules)) + rules
    return Classifier(rules)


@functools.cache
def default_classifier() -> Classifier:
    return load_classifier()


def classify(status: str = "", reply_code: str = "", diagnostic: str = "", remote_mta: str = "") -> Classification:
    """Classify with the default rules (compiled once, memoised)."""
    return _classify_cached(status, reply_code, diagnostic, remote_mta)


@functools.lru_cache(maxsize=65536)
def _classify_cached(status: str, reply_code: str, diagnostic: str, remote_mta: str) -> Classification:
    return default_classifier().classify(status, reply_code, diagnostic, remote_mta)
