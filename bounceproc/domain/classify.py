"""Classify one delivery failure (status, reply code, diagnostic, remote MTA) into reason/category/hard/rule.

Domain layer: pure; stdlib only (tomllib, re and its parser re._parser).
In: the four facts an MTA gives about a failed recipient, in DSN or PowerMTA acct form
(`5.1.1 (bad destination mailbox address)`, `smtp;550 5.1.1 <u@x>: user unknown`).
Out: `Classification(reason, category, hard, rule)`; reason in the vocabulary of
reference/taxonomy.md, category the PowerMTA bounceCat, `hard` per taxonomy.md.

Rules are data: `rules/bounces.toml` is an ordered table, the first matching rule wins, and a
user file loaded with `load_classifier(path)` goes before it. `rules/reasons.toml` maps each
reason to its category, hardness and the placeholder status used when a message gives no code.

Compiled once, per classifier:
- every rule without a diagnostic pattern becomes one alternative of ONE anchored expression
  over `status NUL reply NUL remote-mta`, whose first matching alternative is the best fallback;
  which diagnostic rules above it have their status / reply / MTA conditions met is worked out
  once per such key (memoised);
- every diagnostic pattern is split into its top-level alternatives, and each alternative gets
  its "anchors": literal strings, one of which every match must contain, read automatically from
  the pattern's parse tree (`(?:user|mailbox) unknown` -> " unknown"; an alternative whose parts
  have different literals gets one anchor per part). A diagnostic is cut into its three-letter
  pieces, the anchors present are found through them, and only the alternatives whose anchors
  occur are searched, in rule order, from where the anchor can first be in a match;
- the winner is the lowest-numbered rule whose conditions all hold, exactly as if every rule
  were tried in order (tests/unit/test_classify_speed.py checks both agree). An alternative
  without any required literal is always searched.
Diagnostic patterns are matched against lowercased text, so they are written in lowercase.
Results are memoised on the normalised inputs (addresses stripped), because a stream of
bounces repeats the same few hundred diagnostics; a new diagnostic costs tens of microseconds
(bench/classify_miss).
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field

from bounceproc.domain import precedence
from bounceproc.domain.alternation import pattern_anchors, split_alternatives
from bounceproc.domain.derived_cache import code_stamp, derived
from bounceproc.domain.lazy_regex import lazy

# Not part of a longer dotted number: "2.0.0.0" is an IP address, not status 2.0.0.
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
_REPLY_START = re.compile(r"^\s*\(?([245]\d\d)(?![\d.])")
_REPLY_ANY = re.compile(r"(?<![\d.\-/:#])([245][0-5]\d)(?:[ \-](?![\d]{2}:)|:(?= )|$)")
# Zoho's notices label the code: "Invalid Address, ERROR_CODE :550, ERROR_CODE :5.2.1 ..." (wordings.md 1.11).
_REPLY_LABELLED = re.compile(r"error_code ?: ?([245][0-5]\d)\b", re.I)
MAX_DIAGNOSTIC = 2000
# Memos are bounded in entries AND in key size: diagnostics carry message-specific text (ids,
# addresses, a whole notice for a one-recipient report), so a memo keyed on them grows with the
# mail that arrives (issue 13, item 9: a worker grew from 78 to 324 MB). An input longer than
# MEMO_MAX_KEY characters is classified without the memo (such text never repeats anyway).
MEMO_ENTRIES = 8192
MEMO_MAX_KEY = 2048


def bounded_memo(fn, entries: int = MEMO_ENTRIES, max_key: int = MEMO_MAX_KEY):
    """`fn(*str_args)` memoised in an LRU of `entries`, skipped for args longer than `max_key`
    characters in all: at most entries x max_key characters of keys are ever held."""
    cached = functools.lru_cache(maxsize=entries)(fn)

    def call(*args):
        if sum(map(len, args)) > max_key:
            return fn(*args)
        return cached(*args)

    call.cache_info, call.cache_clear, call.maxsize, call.max_key = cached.cache_info, cached.cache_clear, entries, max_key
    return call

HARD_REASONS = precedence.HARD_REASONS


@dataclass(frozen=True, slots=True)
class Classification:
    reason: str      # taxonomy.md vocabulary
    category: str    # PowerMTA bounceCat
    hard: bool       # the address itself is bad (taxonomy.md)
    rule: str        # id of the rule that decided
    step: str = field(default="rule", compare=False)     # precedence step that decided (precedence.py)
    evidence: str = field(default="", compare=False)     # what that step saw


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    reason: str
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    receiver: str = ""       # regex over the receiving side: Remote-MTA, hosts named in the text, recipient domain
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
    """The packaged rules file (a plain path: importlib.resources costs start-up time)."""
    from pathlib import Path
    path = Path(__file__).with_name("rules") / name
    if path.is_file():
        return path
    from importlib import resources     # a zipped install
    return resources.files("bounceproc.domain").joinpath("rules", name)


@functools.cache
def load_reasons() -> dict[str, ReasonInfo]:
    data = _packaged_toml("reasons.toml")
    return {name: ReasonInfo(v["category"], bool(v.get("hard", False)), v.get("pseudo_status", ""))
            for name, v in data["reason"].items()}


def category_for(reason: str) -> str:
    """PowerMTA bounceCat of a taxonomy reason ("other" when unknown)."""
    info = load_reasons().get(reason)
    return info.category if info else "other"


def is_hard(reason: str, status: str = "", reply_code: str = "") -> bool:
    """taxonomy.md: userunknown/hostunknown/hasmoved/notaccept, never under a temporary (4xx) code."""
    return precedence.is_hard(reason, status, reply_code)


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
    if m is None and "_CODE" in text[:600]:
        m = _REPLY_LABELLED.search(text[:600])
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
    import tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source or 'rules'}: TOML: {exc}") from None
    return _rules_from_data(data, source)


def _rules_from_data(data: dict, source: str) -> list[Rule]:
    rules = []
    for n, r in enumerate(data.get("rule", []), 1):
        if not isinstance(r, dict) or not r.get("id") or not r.get("reason"):
            raise RulesError(f"{source}: rule #{n} needs an id and a reason")
        unknown = set(r) - {"id", "reason", "status", "reply_code", "diagnostic", "remote_mta", "receiver",
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
            receiver=str(r.get("receiver", "")),
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
        for fld in ("diagnostic", "remote_mta", "receiver"):
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
        key = (rule.status, rule.reply_code, rule.remote_mta, rule.receiver, rule.diagnostic)
        for (st, rc, mta, rcv, dg), earlier in uncond.items():
            if (st in ("", rule.status) and rc in ("", rule.reply_code) and mta in ("", rule.remote_mta)
                    and rcv in ("", rule.receiver) and dg in ("", rule.diagnostic)):
                problems.append(f"{rule.id}: unreachable, shadowed by earlier rule {earlier}")
                break
        uncond.setdefault(key, rule.id)
    return problems


# ---------------------------------------------------------------------------- engine

# A diagnostic pattern is split into its top-level alternatives; each alternative gets the
# literal strings one of which every match must contain ("anchors", alternation.pattern_anchors).
# Only the alternatives whose anchors occur in the text are run, so a diagnostic no rule matches
# costs a few hundred substring tests instead of every pattern tried at every offset.


def _straddles(gram: str) -> bool:
    """A trigram with a space between two other characters ("r u"): it spans two words."""
    return gram[1] == " " and gram[0] != " " and gram[2] != " "


class _WordGrams(dict):
    """word -> trigrams of " word " (memo; words repeat across diagnostics).

    Only words that can repeat are kept: ids, queue ids, IPs and host numbers (any word with a
    digit) and long tokens are unique to a message, and each kept word costs ~1 KB (its trigram
    set). Kept: at most WORDS_MAX words, then the memo starts again (issue 13, item 9: 100,000
    one-off ids held ~120 MB in every worker)."""

    WORDS_MAX = 20_000
    WORD_MAX_LEN = 24

    def __missing__(self, word: str) -> frozenset[str]:
        padded = f" {word} "
        grams = frozenset(map("".join, zip(padded, padded[1:], padded[2:])))
        if len(word) <= self.WORD_MAX_LEN and (word.isalpha() or not any(map(str.isdigit, word))):
            if len(self) >= self.WORDS_MAX:
                self.clear()
            self[word] = grams
        return grams


class Classifier:
    """An ordered rule list compiled once (see module docstring)."""

    def __init__(self, rules: list[Rule]):
        self.rules = tuple(rules)
        self.reasons = load_reasons()

        def checked_plan() -> dict:
            # The packaged rules are checked by the test suite (test_default_rules_pass_the_checker);
            # only a user's rules are checked here (start-up without a cache).
            own = [r for r in rules if r.source not in RULE_FILES]
            problems = [p for p in check_rules(own) if "unreachable" not in p and "upper-case" not in p]
            if problems:
                raise RulesError("; ".join(problems))
            return self._make_plan(rules)
        sig = _signature(rules)
        plan = derived("rules", sig, checked_plan) if sig else checked_plan()
        key_alts = plan["key_alts"]
        # Patterns are compiled when first used (start-up: one file rarely needs most of them).
        self._cond = _LazyPatterns(plan["cond"], 0)
        # Every top-level alternative of every diagnostic pattern is a "unit", numbered in rule
        # order: _unit_rule[u] is its rule, _unit_rx[u] its compiled pattern.
        self._unit_rule: list[int] = [u[0] for u in plan["units"]]
        self._unit_rx = _LazyPatterns([u[1] for u in plan["units"]], re.S)
        self._unit_reach: list[int | None] = [u[2] for u in plan["units"]]      # see pattern_anchors
        always = [n for n, u in enumerate(plan["units"]) if not u[3]]           # no anchor: always run
        by_anchor: dict[str, list[int]] = {}
        for n, u in enumerate(plan["units"]):
            for anchor in u[3]:
                by_anchor.setdefault(anchor, []).append(n)
        self._diag_rules = tuple(sorted(set(self._unit_rule)))
        self._always = frozenset(always)
        # Anchors are looked up by their first trigram among the trigrams of the text, and
        # searched for only when all their trigrams occur; anchors without a usable trigram are
        # tested directly. Trigrams that straddle a space ("r u") are not used: the text's
        # trigrams are then the union of those of its words, which are cached (see _text_grams).
        by_gram: dict[str, list[tuple[str, frozenset[str], tuple[int, ...]]]] = {}
        short = []
        for a, units in by_anchor.items():
            grams = [g for g in (a[k:k + 3] for k in range(len(a) - 2)) if not _straddles(g)]
            if grams:
                by_gram.setdefault(grams[0], []).append((a, frozenset(grams), tuple(units)))
            else:
                short.append((a, tuple(units)))
        self._word_grams = _WordGrams()
        self._by_gram = {g: tuple(v) for g, v in by_gram.items()}
        self._gram_keys = frozenset(by_gram)
        self._short = tuple(short)
        self._keys_source = "(?:%s)" % "|".join(key_alts) if key_alts else None
        self._plan = bounded_memo(self._plan_for_key, 1024)   # keyed by the MTA's name too
        self._wording_plan = bounded_memo(self._wording_plan_for_key, 1024)
        # Rules for one receiver: (id, pattern); which of them a receiver matches is memoised per
        # evidence string and goes into the key as ",id,id," (see receiver_evidence).
        self._receiver_rules = tuple((r.id, r.receiver) for r in rules if r.receiver)
        self._receiver_rx: list | None = None
        self._receiver_ids = bounded_memo(self._receiver_ids_for, 4096)
        # Two memo levels: the raw 4-tuple (a stream repeats identical diagnostics) and the
        # normalised one (diagnostics that differ only by the address in them). Both bounded.
        self._raw_memo = bounded_memo(self._classify_raw)
        self._memo = bounded_memo(self._classify_normalised, 2 * MEMO_ENTRIES)
        self._explain_memo = bounded_memo(self._explain_raw, 2048)

    @staticmethod
    def _make_plan(rules: list[Rule]) -> dict:
        """Everything the engine derives from the rule texts, as plain data (cached, see _signature):
        per rule its code / MTA condition; per unit (rule, source, reach, anchors)."""
        key_alts, cond, units = [], [], []
        for i, rule in enumerate(rules):
            c = Classifier._key_condition(rule)
            cond.append(c)
            if not rule.diagnostic:
                key_alts.append(f"{c}(?P<r{i}>)")
                continue
            for alt in split_alternatives(rule.diagnostic):
                found = pattern_anchors(alt)
                anchors, reach = found if found is not None else ((), None)
                units.append([i, alt, reach, list(anchors)])
        return {"key_alts": key_alts, "cond": cond, "units": units}

    @functools.cached_property
    def _keys(self) -> re.Pattern | None:
        return re.compile(self._keys_source, re.S) if self._keys_source else None

    @staticmethod
    def _key_condition(rule: Rule) -> str:
        parts = []
        if rule.status:
            parts.append("(?=%s\x00)" % _code_pattern(rule.status.split(","), 5))
        if rule.reply_code:
            parts.append("(?=[^\x00]*\x00%s\x00)" % _code_pattern(rule.reply_code.split(","), 3))
        if rule.remote_mta:
            parts.append("(?=[^\x00]*\x00[^\x00]*\x00[^\x00]*?(?:%s))" % rule.remote_mta)
        if rule.receiver:
            # The fourth field lists the ids of the receiver rules whose pattern the evidence matched.
            parts.append("(?=(?:[^\x00]*\x00){3}[^\x00]*,%s,)" % re.escape(rule.id))
        return "".join(parts)

    def _receiver_ids_for(self, evidence: str) -> str:
        """",id,id," of the receiver rules whose pattern is found in `evidence` ("" when none)."""
        if not evidence:
            return ""
        if self._receiver_rx is None:
            self._receiver_rx = [(i, re.compile(p, re.S)) for i, p in self._receiver_rules]
        ids = [i for i, rx in self._receiver_rx if rx.search(evidence)]
        return ",%s," % ",".join(ids) if ids else ""

    def receiver_key(self, remote_mta: str, recipient: str, diagnostic: str) -> str:
        """The receiver field of the key: which receiver rules the receiving side matches."""
        if not self._receiver_rules:
            return ""
        return self._receiver_ids(receiver_evidence(remote_mta, recipient, diagnostic))

    def _plan_for_key(self, key: str) -> tuple[int, tuple]:
        """For `status NUL reply NUL mta NUL`: the best rule without a diagnostic pattern, and the
        diagnostic rules above it whose code / MTA conditions hold, in rule order."""
        best = len(self.rules)
        if self._keys is not None:
            m = self._keys.match(key)
            if m:
                best = int(m.lastgroup[1:])
        return best, self._diag_rules_for_key(key, best)

    def _wording_plan_for_key(self, key: str) -> frozenset:
        """The diagnostic rules whose code / MTA conditions hold for `key`, code-only rules passed over."""
        return self._diag_rules_for_key(key, len(self.rules))

    def _diag_rules_for_key(self, key: str, below: int) -> frozenset:
        return frozenset(i for i in self._diag_rules
                         if i < below and (self._cond[i] is None or self._cond[i].match(key)))

    def classify(self, status: str = "", reply_code: str = "", diagnostic: str = "",
                 remote_mta: str = "", recipient: str = "") -> Classification:
        """`recipient`: the failed address (or its domain), evidence for rules with a `receiver`."""
        return self._raw_memo(status, reply_code, diagnostic, remote_mta, recipient_domain(recipient))

    def _classify_raw(self, status: str, reply_code: str, diagnostic: str, remote_mta: str,
                      domain: str) -> Classification:
        return self._decided(status, reply_code, diagnostic, remote_mta, domain)[0]

    def _decided(self, status: str, reply_code: str, diagnostic: str, remote_mta: str,
                 domain: str) -> tuple[Classification, str, str, str, str]:
        """The classification and the normalised (status, reply, diagnostic, MTA) that gave it. When no
        rule matches and the text names the recipient's own domain bare ("550 example.com does not
        exist", "Host example.com not found, try again"), the text is read again with that name
        called the destination domain: a wording about it is then read as the domain rules read it."""
        st, rc, diag, mta = normalise_inputs(status, reply_code, diagnostic, remote_mta)
        rk = self.receiver_key(mta, domain, diagnostic)
        c = self._memo(st, rc, diag, mta, rk)
        if c.rule == "none" and domain and domain in diag:
            named = name_recipient_domain(diag, domain)
            if named != diag:
                c2 = self._memo(st, rc, named, mta, rk)
                if c2.rule != "none":
                    return c2, st, rc, named, mta
        return c, st, rc, diag, mta

    def explain(self, status: str = "", reply_code: str = "", diagnostic: str = "",
                remote_mta: str = "", recipient: str = "") -> str:
        """One line saying which rule decided and on what evidence."""
        return self._explain_memo(status, reply_code, diagnostic, remote_mta, recipient_domain(recipient))

    def _explain_raw(self, status: str, reply_code: str, diagnostic: str, remote_mta: str, domain: str) -> str:
        c, st, rc, diag, mta = self._decided(status, reply_code, diagnostic, remote_mta, domain)
        rule = next((r for r in self.rules if r.id == c.rule), None)
        step = f" [precedence {c.step}: {c.evidence}]" if c.step != "rule" else " [precedence: rule stood]"
        if rule is None:
            return f"no rule matched status={st or '-'} reply={rc or '-'}{step}"
        ev = []
        if rule.status:
            ev.append(f"status {st} ~ {rule.status}")
        if rule.reply_code:
            ev.append(f"reply {rc} ~ {rule.reply_code}")
        if rule.remote_mta:
            ev.append(f"remote-mta ~ /{rule.remote_mta}/")
        if rule.receiver:
            ev.append(f"receiver {receiver_evidence(mta, domain, diagnostic)!r} ~ /{rule.receiver}/")
        if rule.diagnostic:
            m = re.search(rule.diagnostic, diag, re.S)
            ev.append("diagnostic says %r" % (m.group(0)[:80] if m else ""))
        return f"rule {rule.id} ({rule.source}) -> {c.reason}: " + "; ".join(ev or ["default"]) + step

    def rule_index(self, status: str, reply: str, diag: str, mta: str, receiver: str = "") -> int:
        """Index of the winning rule for normalised inputs (len(rules): none): the lowest-numbered
        rule whose status / reply / MTA / receiver conditions hold and whose diagnostic pattern, if
        any, is found in `diag`. `receiver` is receiver_key()'s ",id,id," list."""
        best, allowed = self._plan(f"{status}\x00{reply}\x00{mta}\x00{receiver}\x00")
        return self._first_match(diag, best, allowed)

    def wording_rule_index(self, status: str, reply: str, diag: str, mta: str, receiver: str = "") -> int:
        """Like rule_index, but the first rule that reads the text (one with a diagnostic pattern),
        passing over the rules that read codes only."""
        allowed = self._wording_plan(f"{status}\x00{reply}\x00{mta}\x00{receiver}\x00")
        return self._first_match(diag, len(self.rules), allowed)

    def _first_match(self, diag: str, best: int, allowed: frozenset) -> int:
        if not diag or not allowed:
            return best
        # Units whose anchors occur, with the first position of one: a match of the unit starts
        # at most `reach` characters before it, so its search starts there.
        first: dict[int, int] = dict.fromkeys(self._always, 0)
        grams = self._text_grams(diag)
        for g in self._gram_keys.intersection(grams):
            for a, need, us in self._by_gram[g]:
                p = diag.find(a) if need.issubset(grams) else -1
                if p >= 0:
                    for u in us:
                        if p < first.get(u, p + 1):
                            first[u] = p
        for a, us in self._short:
            p = diag.find(a)
            if p >= 0:
                for u in us:
                    if p < first.get(u, p + 1):
                        first[u] = p
        unit_rule, unit_rx, unit_reach = self._unit_rule, self._unit_rx, self._unit_reach
        for u in sorted(first):
            i = unit_rule[u]
            if i >= best:
                break
            if i in allowed:
                reach = unit_reach[u]
                start = 0 if reach is None else max(0, first[u] - reach)
                if unit_rx[u].search(diag, start):
                    return i
        return best

    def _text_grams(self, diag: str) -> set[str]:
        """A superset of the trigrams of `diag` that do not straddle a space."""
        if "  " in diag:
            return set(map("".join, zip(diag, diag[1:], diag[2:])))
        # Single spaces (normalised text): every such trigram lies within " word " of one word.
        return set().union(*map(self._word_grams.__getitem__, diag.split(" ")))

    def _classify_normalised(self, status: str, reply: str, diag: str, mta: str, receiver: str) -> Classification:
        best = self.rule_index(status, reply, diag, mta, receiver)
        if best == len(self.rules):
            reason, rule_id, one_receiver, code_only = "undefined", "none", False, False
        else:
            rule = self.rules[best]
            reason, rule_id, one_receiver = rule.reason, rule.id, bool(rule.receiver)
            code_only = not rule.diagnostic
        v = precedence.decide(reason, rule_id, status, reply, diag, one_receiver, code_only)
        if code_only and diag and precedence.code_verdict_in_doubt(reason, v, diag):
            # A hard verdict read from a code alone (x.1.2, x.1.6, 521 / 556 are tried before the
            # wording rules) over a text that a wording rule reads as something that is not about
            # the address ("556 ... IP=... (BL)", "521 Message body contains NUL characters"), or a
            # counted one (x.2.x) over a text that does not say the mailbox is full / disabled: the
            # text decides (taxonomy: the text decides more often than the code; step 6: in doubt, soft).
            alt = self.wording_rule_index(status, reply, diag, mta, receiver)
            text_rule = self.rules[alt] if alt < len(self.rules) else None
            tv = text_rule and precedence.decide(text_rule.reason, text_rule.id, status, reply, diag,
                                                 bool(text_rule.receiver))
            if tv and tv.reason not in precedence.HARD_REASONS and tv.reason != v.reason:
                # (a hard wording counts when the precedence turns it: "Sender domain not found")
                v = precedence.text_over_code(tv, text_rule.id, rule_id, reason, status or reply)
                rule_id = text_rule.id
        info = self.reasons.get(v.reason)
        return Classification(v.reason, info.category if info else "other", v.hard, rule_id, v.step, v.evidence)


class _LazyPatterns:
    """A list of regex sources compiled on first access ("" -> None)."""

    __slots__ = ("_src", "_rx", "_flags")

    def __init__(self, sources: list[str], flags: int):
        self._src, self._flags = sources, flags
        self._rx: list = [False] * len(sources)

    def __len__(self) -> int:
        return len(self._src)

    def __getitem__(self, i: int) -> re.Pattern | None:
        rx = self._rx[i]
        if rx is False:
            rx = self._rx[i] = re.compile(self._src[i], self._flags) if self._src[i] else None
        return rx


# The plan of the default rules is cached between processes (start-up of `bounceproc classify`):
# a JSON file keyed by a hash of the rules and of this module, in BOUNCEPROC_CACHE_DIR, else
# $XDG_CACHE_HOME/bounceproc, else ~/.cache/bounceproc. Any problem with it: computed again.
# So is the data of the packaged TOML files (see _packaged_toml).
_PLAN_VERSION = "plan-1"


def _signature(rules: list[Rule]) -> str:
    """Everything the plan depends on: this module's size and mtime, Python, the rules' texts
    ("" when this module cannot be read: no cache)."""
    stamp = code_stamp(__file__)
    if not stamp:
        return ""
    return "\n".join([f"{_PLAN_VERSION} {stamp}"] + [
        repr((r.id, r.reason, r.status, r.reply_code, r.diagnostic, r.remote_mta, r.receiver)) for r in rules])


def _packaged_toml(name: str) -> dict:
    """The data of a packaged TOML file (rules, reasons). Kept as JSON beside the plan with the
    text it came from, and used while that text is unchanged: importing tomllib and parsing the
    rules is a fifth of `bounceproc classify FILE`'s start-up, reading JSON a fiftieth of it."""
    text = _data_path(name).read_text(encoding="utf-8")

    def parse() -> dict:
        import tomllib
        return tomllib.loads(text)
    return derived(f"toml-{name}", text, parse)


_AFTER_ADDRESS = re.compile(r"(?<=[a-z0-9>]):[a-z][a-z-]{1,30}\)?$")
# "User suspended:user@example.com" (Coremail): a word glued before the address with a colon; not
# an address's own type ("rfc822:", "mailto:", "to:<…>")
_BEFORE_ADDRESS = re.compile(r"^(?!(?:rfc822|smtp|mailto|from|to|x-postfix):)[a-z][a-z-]{2,30}:(?=[^<:@\s]+@)")


# An address inside a link ("…/Why?s=mfrom;id=u@example.com;ip=…"): only the address is folded,
# the link's words (a rule may read "openspf.net/why") stay.
_ADDRESS_IN_LINK = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")


def _fold_address(word: str) -> str:
    """A word holding an address as "<>", keeping a word glued before or after it with a colon."""
    if "://" in word:
        return _ADDRESS_IN_LINK.sub("<>", word)
    before = _BEFORE_ADDRESS.match(word)
    after = _AFTER_ADDRESS.search(word)
    return (before.group(0) + " " if before else "") + "<>" + (after.group(0) if after else "")


def normalise_inputs(status: str, reply_code: str, diagnostic: str, remote_mta: str) -> tuple[str, str, str, str]:
    """The key the rules see: bare codes, lowercased one-line diagnostic without addresses."""
    diag = strip_type(diagnostic or "")[:MAX_DIAGNOSTIC]
    st = normalise_status(status)
    if not st or st[1:] == ".0.0":
        # no status, or only the generic x.0.0 over the server's own, more specific code of the
        # same class ("Status: 5.0.0" over "521 5.7.1 …"): the server's code is the evidence
        found = find_status(diag)
        if found and (not st or found[0] == st[0]):
            st = found
    rc = (reply_code or "").strip()[:3]
    if not (len(rc) == 3 and rc.isdigit()):
        rc = find_reply_code(diag)
    words = diag.replace("\x00", " ").lower().split()
    if "@" in diag:
        # Addresses make every diagnostic unique and never decide a rule: fold them away. A word
        # glued after one with a colon is kept (Barracuda's "(<addr>:blocked)" -> "<>:blocked)").
        words = [_fold_address(w) if "@" in w else w for w in words]
    diag = reply_first(join_continuations(" ".join(words)))
    mta = strip_type(remote_mta or "").replace("\x00", " ").strip().lower()[:255]
    return st, rc, diag, mta


# A multi-line SMTP reply (RFC 5321 4.2.1) that an MTA quotes joined into one line repeats the code
# at each line: "550-5.1.1 The email account that you tried to reach does not exist. Please try
# 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary
# spaces." The repeats cut the sentence the rules read; the first line's code is kept (as "550 ").
_CONTINUED = lazy(r"(?<![\w.-])([245]\d\d)-(?=\S)")


def join_continuations(diag: str) -> str:
    """`diag` (normalised) with the repeated codes of a multi-line reply removed (see above)."""
    if "-" not in diag:
        return diag
    m = _CONTINUED.search(diag)
    if not m:
        return diag
    code = m.group(1)
    status = re.match(r"[245]\.\d{1,3}\.\d{1,3} ", diag[m.end():])
    marker = re.compile(rf" {code}[- ]" + (rf"(?:{re.escape(status.group(0))})?" if status else ""))
    rest = marker.sub(" ", diag[m.end():])
    return f"{diag[:m.start()]}{code} {rest}"


# What an MTA writes around the receiving server's reply, in notices without a delivery report:
# the failed address (folded to "<>", with Postfix's "(expanded from <>)"), Postfix's
# "host mx.x[ip] said:", Exim's "host mx.x [ip]:" and "SMTP error from remote mail server after
# RCPT TO:<addr>:", qmail's "ip does not like recipient. Remote host said:" and its closing
# "Giving up on ip.". Rules read the reply itself (a pattern anchored with ^ means "the reply
# starts with"), so these are removed; the host names stay evidence for `receiver` rules
# (receiver_evidence reads the raw text) and a stage named there is kept as the
# "(smtp stage: …)" note the message reader writes.
_PREAMBLE = lazy(r"^(?:(?:<>|\((?:expanded|generated|ultimately generated) from <>\))[:,]?\s+"
                 r"|host [a-z0-9-]+(?:\.[a-z0-9-]+)+\.? ?(?:\[[0-9a-f.:]+\])?(?: said)?(?::\s+|\s+(?=smtp error))"
                 r"|smtp error from remote (?:mail server|mailer) after (?:pipelined )?(rcpt|mail|end of data|data|bdat|helo|ehlo)(?:(?<=bdat) \d+(?: last)?)?"
                 r"(?: to| from)?(?::? ?<>)?(?: size=\d+)?:?\s+"
                 r"|(?:connected to )?[0-9a-f.:]+ (?:does not like (recipient)|(?:but )?(sender) was rejected"
                 r"|failed after i sent the (message))\.?\s+"
                 r"|remote host said:\s+)+")
_QMAIL_CLOSING = lazy(r"\s*giving up on [0-9a-f.:]+\.?(?= \(|$)")
_PREAMBLE_STAGE = {"rcpt": "rcpt", "mail": "mail", "end of data": "end of data", "data": "data", "bdat": "end of data",
                   "helo": "connect", "ehlo": "connect", "recipient": "rcpt", "sender": "mail", "message": "end of data"}


# Notices that introduce the receiving server's reply with a phrase of their own (Gmail's "The
# error that the other server returned was:" / "The response from the remote server was:",
# Exchange's "Remote Server returned '…'"): the boilerplate before it ("it was rejected by the
# server for the recipient domain …") is the relaying MTA's, not the receiver's, and must not
# decide. The last such phrase starts the reply.
_REPLY_MARKERS = ("the error that the other server returned was: ", "the response from the remote server was: ",
                  "remote server returned '")


# Exchange 2013 and later / Microsoft 365 write the reply between "#" and "##" after the host
# ("mx.example.com #550 5.1.1 RESOLVER.ADR.RecipientNotFound; … ##"); Courier and Sendmail show
# the session: where it shows one reply only ("<<< "), that is the refusal (up to the next command
# or separator); a transcript of several sessions is left whole.
_EXCHANGE_REPLY = lazy(r"#((?:[245]\d\d[ -]|[245]\.\d{1,3}\.\d{1,3} )[^#]*?) ?##")
_TRANSCRIPT_END = lazy(r" (?:>>> |-{3,}|\.\.\. while talking|[0-9a-z.-]+ \[[0-9a-f.:]+\]:|[245]\d\d <>\.\.\. )")
_NOTES_AT_END = lazy(r"(?: \((?:smtp stage|local mailer|notice): [a-z\- ]+\))+$")


def _reply_part(diag: str) -> str:
    """The receiving server's reply where the notice marks it (see above); `diag` otherwise."""
    if "returned" in diag or "the response from" in diag:
        at = max(diag.rfind(m) + len(m) if m in diag else -1 for m in _REPLY_MARKERS)
        if 0 < at < len(diag):
            return diag[at:]
    if "##" in diag:
        m = _EXCHANGE_REPLY.search(diag)
        if m:
            return m.group(1)
    at = diag.rfind("received >>> ")
    if at >= 0:
        # Trend Micro InterScan MSS turns the arrows round: "Sent <<< RCPT TO:<…>" then
        # "Received >>> 550 …" (fixtures/dsn/trendmicro-imss-other-recipients.eml).
        end = diag.find(" sent <<< ", at)
        return diag[at + 13:end if end > 0 else len(diag)]
    at = diag.find("<<< ")
    # One reply only (one session), and no reply before it (a notice quoting its summary first).
    if at >= 0 and at + 4 < len(diag) and diag.find("<<< ", at + 4) < 0 and not _REPLY_START.match(diag):
        end = _TRANSCRIPT_END.search(diag, at + 4)
        return diag[at + 4:end.start() if end else len(diag)]
    return diag


def reply_first(diag: str) -> str:
    """`diag` (normalised) without the MTA's words around the reply; unchanged when they are all
    there is."""
    if "returned" in diag or "the response from" in diag or "##" in diag or "<<< " in diag or ">>> " in diag:
        notes = _NOTES_AT_END.search(diag)
        body = diag[:notes.start()] if notes else diag
        reply = _reply_part(body).strip()
        if reply and reply != body:
            diag = reply + (notes.group(0) if notes else "")
    if not diag.startswith(("<>", "host ", "smtp error", "remote host", "(", "connected to ")) and not (
            diag[:1].isdigit() and " does not like " in diag[:60] or " failed after " in diag[:60]):
        return diag
    m = _PREAMBLE.match(diag)
    if not m or m.end() >= len(diag):
        return diag
    rest = diag[m.end():]
    if "giving up on " in rest:
        rest = _QMAIL_CLOSING.sub("", rest)
    stage = _PREAMBLE_STAGE.get(next((g for g in m.groups() if g), ""), "")
    if stage and "(smtp stage: " not in rest:
        rest = f"{rest} (smtp stage: {stage})"
    return rest


# The receiving side, for rules that hold for one receiver only (a `receiver` pattern): the
# Remote-MTA, the hosts a diagnostic names as the one that answered (Postfix "host mx.x[ip] said",
# Exim "host mx.x [ip]", Sendmail "while talking to mx.x", Microsoft's "[xx.prod.protection.outlook.com]"
# after its reply), and the recipient's domain (without one, the domains of the addresses the
# diagnostic quotes).
_TEXT_HOST = re.compile(r"(?:\bhost|talking to|remote-mta:(?: dns;)?)\s+\[?([a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+)"
                        r"|\[([a-z][a-z0-9-]*(?:\.[a-z0-9-]+){2,})\]", re.I)
_TEXT_DOMAIN = re.compile(r"@([a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+)", re.I)


def recipient_domain(recipient: str) -> str:
    """`User@Example.JP>` -> `example.jp`; a bare domain is kept; "" -> ""."""
    if not recipient:
        return ""
    return recipient.rpartition("@")[2].strip().strip("<>[]. ").lower()[:255]


def name_recipient_domain(diag: str, domain: str) -> str:
    """`diag` with each bare mention of the recipient's `domain` (not in an address, not a host under
    it) called "destination domain <domain>"; unchanged when there is none."""
    return re.sub(r"(?<![\w@.-])(?:the )?(?:domain (?:name )?)?%s(?![\w-]|\.\w)" % re.escape(domain),
                  lambda m: "destination domain " + domain, diag)


def receiver_evidence(remote_mta: str, recipient: str, diagnostic: str) -> str:
    """Space-separated lowercase names of the receiving side (see above); the MTA's name as given."""
    text = (diagnostic or "")[:MAX_DIAGNOSTIC]
    names = [remote_mta.lower()] if remote_mta else []
    if "host" in text or "talking" in text or "Remote-MTA" in text or "[" in text:
        names += [(m.group(1) or m.group(2)).lower().rstrip(".") for m in _TEXT_HOST.finditer(text)]
    domain = recipient_domain(recipient)
    if domain:
        names.append(domain)
    elif "@" in text:
        names += [m.group(1).lower().rstrip(".") for m in _TEXT_DOMAIN.finditer(text)]
    return " ".join(dict.fromkeys(n for n in names if n))[:1024]


RULE_FILES = ("wordings.toml", "bounces.toml")   # in order: receiver-documented wordings first


def default_rules() -> list[Rule]:
    return [rule for name in RULE_FILES for rule in _rules_from_data(_packaged_toml(name), name)]


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


def classify(status: str = "", reply_code: str = "", diagnostic: str = "", remote_mta: str = "",
             recipient: str = "") -> Classification:
    """Classify with the default rules (compiled once, memoised)."""
    return _classify_cached(status, reply_code, diagnostic, remote_mta, recipient_domain(recipient))


def _classify_default(status: str, reply_code: str, diagnostic: str, remote_mta: str, domain: str) -> Classification:
    return default_classifier().classify(status, reply_code, diagnostic, remote_mta, domain)


_classify_cached = bounded_memo(_classify_default)
