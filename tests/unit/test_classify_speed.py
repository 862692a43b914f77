"""The fast rules engine never changes a verdict: the anchored search in Classifier gives the same
winning rule as trying every rule in order, on real diagnostics and on text built from the rules'
own anchors; and every anchor it derives is really required by its pattern."""
from __future__ import annotations

import csv
import dataclasses
import glob
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain import classify as cl
from bounceproc.domain.classify import Classifier, default_classifier, normalise_inputs, parse_rules

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"
STATUSES = ["", "2.0.0", "4.0.0", "4.2.2", "4.4.7", "4.7.0", "5.0.0", "5.1.1", "5.1.10", "5.2.0", "5.2.2",
            "5.3.4", "5.4.4", "5.7.1", "5.7.26"]
REPLIES = ["", "421", "450", "451", "550", "551", "552", "554"]


def reference_index(c: Classifier, status: str, reply: str, diag: str, mta: str, receiver: str = "",
                    wording_only: bool = False) -> int:
    """The plain reading of the rules table: the first rule, in order, whose fields all match
    (a `receiver` pattern is searched in the receiver evidence itself)."""
    key = f"{status}\x00{reply}\x00{mta}\x00"
    for i, rule in enumerate(c.rules):
        if wording_only and not rule.diagnostic:
            continue
        cond = Classifier._key_condition(dataclasses.replace(rule, receiver="") if rule.receiver else rule)
        if cond and not re.match(cond, key, re.S):
            continue
        if rule.receiver and not re.search(rule.receiver, receiver, re.S):
            continue
        if rule.diagnostic and not (diag and re.search(rule.diagnostic, diag, re.S)):
            continue
        return i
    return len(c.rules)


def _fixture_diagnostics() -> list[str]:
    out = []
    with open(FIXTURES / "dsn" / "pmta-acct-diagnostics.csv", newline="", encoding="utf-8") as fh:
        out += [row["dsnDiag"] for row in csv.DictReader(fh)]
    for f in sorted(glob.glob(str(FIXTURES / "acct" / "*.csv"))):
        with open(f, newline="", encoding="utf-8", errors="replace") as fh:
            out += [cell for row in csv.reader(fh) for cell in row if re.search(r"\b[245]\d\d\b", cell)]
    files = sorted(glob.glob(str(FIXTURES / "*" / "*.eml")))
    if CORPUS.is_dir():
        files += sorted(glob.glob(str(CORPUS / "maildir" / "*" / "*.eml")))[::3]
    for f in files:
        text = Path(f).read_bytes().decode("latin-1")
        out += [re.sub(r"\s+", " ", m.group(1)) for m in
                re.finditer(r"(?im)^diagnostic-code:[ \t]*(.*(?:\r?\n[ \t].*)*)", text)]
        out += [line for line in text.splitlines() if re.search(r"\b[245]\d\d\b", line) and len(line) < 300][:3]
    return sorted(set(out))


def test_fast_engine_agrees_with_rules_tried_in_order_on_real_diagnostics():
    c = default_classifier()
    diags = _fixture_diagnostics()
    assert len(diags) >= (200 if CORPUS.is_dir() else 50)
    for n, d in enumerate(diags):
        for status, reply in ((STATUSES[n % len(STATUSES)], ""), ("", REPLIES[n % len(REPLIES)]), ("5.0.0", "550")):
            args = normalise_inputs(status, reply, d, "")
            assert c.rule_index(*args) == reference_index(c, *args), args
            assert c.wording_rule_index(*args) == reference_index(c, *args, wording_only=True), args


def _anchor_pieces(c: Classifier) -> list[str]:
    pieces = {a for g in c._by_gram.values() for a, _grams, _units in g} | {a for a, _u in c._short}
    return sorted(pieces)


_PIECES = _anchor_pieces(default_classifier())
_WORDS = ["the", "user", "mailbox", "not", "is", "550", "5.1.1", "smtp stage: data", "(notice: no status code)",
          "blocked", "from", "ip", "domain", "<>", "rejected", "due to", "spam", "quota", "relay", ".", ":", "-"]
_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.sampled_from(_WORDS),
                           st.text(alphabet="abcdeilmnorstu .:-'", max_size=6)),
                 min_size=1, max_size=14).map(" ".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(diag=_text, status=st.sampled_from(STATUSES), reply=st.sampled_from(REPLIES))
def test_fast_engine_agrees_with_rules_tried_in_order_on_text_built_from_anchors(diag, status, reply):
    c = default_classifier()
    args = normalise_inputs(status, reply, diag, "")
    assert c.rule_index(*args) == reference_index(c, *args)
    assert c.wording_rule_index(*args) == reference_index(c, *args, wording_only=True)


RECEIVERS = ["", "qq.com", "ezweb.ne.jp", "mx.softbank.ne.jp", "example-org.mail.protection.outlook.com", "gmx.net",
             "freenet.de", "example.org"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(diag=_text, status=st.sampled_from(STATUSES), receiver=st.sampled_from(RECEIVERS))
def test_fast_engine_agrees_with_rules_tried_in_order_for_every_receiver(diag, status, receiver):
    c = default_classifier()
    args = normalise_inputs(status, "", diag, "")
    assert c.rule_index(*args, c.receiver_key("", receiver, diag)) == reference_index(c, *args, receiver)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(diag=_text)
def test_every_match_contains_an_anchor_within_its_reach(diag):
    c = default_classifier()
    anchors_of: dict[int, list[str]] = {}
    for group in c._by_gram.values():
        for a, _grams, units in group:
            for u in units:
                anchors_of.setdefault(u, []).append(a)
    for a, units in c._short:
        for u in units:
            anchors_of.setdefault(u, []).append(a)
    for u, rx in enumerate(c._unit_rx):
        m = rx.search(diag)
        if m is None or u in c._always:
            continue
        reach = c._unit_reach[u]
        hits = [p for p in (diag.find(a, m.start(), m.end()) for a in anchors_of[u]) if p >= 0]
        assert hits, (rx.pattern, diag)
        assert reach is None or min(hits) <= m.start() + reach, (rx.pattern, diag, reach)


@pytest.mark.parametrize("pattern, alternatives", [
    ("a|b(?:c|d)|[|]", ["a", "b(?:c|d)", "[|]"]),
    (r"x\|y|z", [r"x\|y", "z"]),
    ("[]|]x|y", ["[]|]x", "y"]),
    ("(?i)a|b", ["(?i)a|b"]),
    ("(a|b", ["(a|b"]),
])
def test_split_alternatives(pattern, alternatives):
    assert cl.split_alternatives(pattern) == alternatives


@pytest.mark.parametrize("pattern, anchors", [
    ("user unknown", ("user unknown",)),
    ("(?:user|mailbox) unknown", (" unknown",)),
    ("(?:full|overfull) (?:mail ?box|inbox)", ("full",)),
    ("no such (?:user|mailbox)", ("no such ",)),
    (r"\bblocked\b", ("blocked",)),
    ("cancel+ed", ("cancel",)),
    ("(?:user unknown|no such user).{0,300}smtp stage: data", ("smtp stage: data",)),
    (r"\d{3} \S+", (" ",)),
    (r"\d+", None),
    ("(?i:user) gone", (" gone",)),
    ("(?i)user gone", None),
])
def test_pattern_anchors(pattern, anchors):
    found = cl.pattern_anchors(pattern)
    assert (found[0] if found else None) == anchors


def test_user_rules_without_literals_or_with_flags_agree_too():
    user = parse_rules("""
[[rule]]
id = "digits"
reason = "blocked"
diagnostic = '\\d{3}[a-z]\\d'

[[rule]]
id = "caseless"
reason = "spamdetected"
diagnostic = '(?i:zz top)|q+x'
""", "user.toml")
    c = Classifier(user + cl.default_rules())
    for d in ("550a2 sorry", "zz top here", "qqqx", "user unknown", "no luck", "ZZ TOP"):
        for status in ("", "5.1.1", "4.7.0"):
            args = normalise_inputs(status, "", d, "")
            assert c.rule_index(*args) == reference_index(c, *args), args
    assert c.classify("", "", "550a2 sorry").rule == "digits"
    assert c.classify("5.1.1", "", "qqqx").rule == "caseless"
