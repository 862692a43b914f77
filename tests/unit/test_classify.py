"""The classification contract: acct and DSN input forms, precedence of user rules, memoisation,
reason tables, the rules checker, and that every rule is justified by a message we hold."""
from __future__ import annotations

import csv
import glob
import os
import tomllib
from pathlib import Path

import pytest

from bounceproc.domain import classify as cl
from bounceproc.domain.classify import (Classification, RulesError, category_for, check_rules, classify,
                                        default_rules, load_classifier, parse_rules)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"
ACCT_SAMPLES = FIXTURES / "dsn" / "pmta-acct-diagnostics.csv"
TAXONOMY = {"userunknown", "hostunknown", "hasmoved", "notaccept", "suspend", "mailboxfull", "exceedlimit",
            "mesgtoobig", "systemfull", "filtered", "rejected", "blocked", "badreputation", "requireptr",
            "spamdetected", "virusdetected", "contenterror", "policyviolation", "authfailure", "securityerror",
            "failedstarttls", "norelaying", "toomanyconn", "speeding", "expired", "networkerror", "systemerror",
            "mailererror", "notcompliantrfc", "syntaxerror", "onhold", "undefined", "feedback", "vacation",
            "delivered"}


def test_powermta_acct_forms_are_understood():
    c = classify("5.1.1 (bad destination mailbox address)", "", "smtp;550 5.1.1 <u@x.example>: user unknown")
    assert c == Classification("userunknown", "bad-mailbox", True, "text-user-unknown")


def test_reply_code_and_status_are_taken_from_the_text_when_not_given():
    assert classify(diagnostic="smtp;552 5.2.2 <u@example.com> over quota").reason == "mailboxfull"
    assert classify(diagnostic="x-pmta;551 please try elsewhere").reason == "hasmoved"


@pytest.mark.parametrize("row", list(csv.DictReader(ACCT_SAMPLES.open(encoding="utf-8"))),
                         ids=lambda r: r["expected_rule"])
def test_acct_diagnostic_samples(row):
    c = classify(row["dsnStatus"], "", row["dsnDiag"])
    assert (c.rule, c.reason) == (row["expected_rule"], row["expected_reason"])


def test_block_on_our_ip_is_never_hard():
    c = classify("5.7.1", "554", "Client host [192.0.2.9] blocked using zen.spamhaus.org")
    assert (c.reason, c.category, c.hard) == ("blocked", "spam-related", False)


def test_notaccept_is_hard_only_when_permanent():
    assert classify("5.1.10", "", "does not accept mail (null MX)").hard is True
    assert classify("4.3.0", "", "domain does not accept mail").hard is False


def test_temporary_dns_failure_is_not_host_unknown():
    assert classify("4.4.3", "", "Host or domain name not found").reason == "networkerror"
    assert classify("5.4.4", "", "Host or domain name not found").reason == "hostunknown"


def test_repeated_inputs_are_memoised():
    args = ("5.2.2", "552", "smtp;552 5.2.2 Mailbox full: memo-test@example.com", "mx.example.com")
    before = cl._classify_cached.cache_info().hits
    first = classify(*args)
    assert classify(*args) is first
    assert cl._classify_cached.cache_info().hits == before + 1


def test_addresses_do_not_defeat_the_memo():
    c1 = default = cl.default_classifier()
    a = c1.classify("5.1.1", "550", "550 5.1.1 <one@example.com>: user unknown")
    before = default._memo.cache_info().hits
    b = c1.classify("5.1.1", "550", "550 5.1.1 <two@example.net>: user unknown")
    assert a == b and default._memo.cache_info().hits == before + 1


def test_category_for():
    assert category_for("mailboxfull") == "quota-issues"
    assert category_for("blocked") == "spam-related"
    assert category_for("no-such-reason") == "other"


def test_every_reason_is_in_the_taxonomy_and_has_a_category():
    reasons = tomllib.loads((ROOT / "bounceproc/domain/rules/reasons.toml").read_text(encoding="utf-8"))["reason"]
    assert set(reasons) == TAXONOMY
    assert {r.reason for r in default_rules()} <= TAXONOMY


def test_user_rules_take_precedence(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[[rule]]\nid = "mine-unknown-is-suspend"\ndiagnostic = \'user unknown\'\nreason = "suspend"\n',
                 encoding="utf-8")
    c = load_classifier(f).classify("5.1.1", "550", "550 5.1.1 user unknown")
    assert (c.reason, c.rule) == ("suspend", "mine-unknown-is-suspend")
    assert classify("5.1.1", "550", "550 5.1.1 user unknown").reason == "userunknown"


def test_bad_user_rules_are_refused(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[[rule]]\nid = "x"\ndiagnostic = \'(unclosed\'\nreason = "nonsense"\n', encoding="utf-8")
    with pytest.raises(RulesError) as exc:
        load_classifier(f)
    assert "unknown reason" in str(exc.value) and "bad diagnostic regex" in str(exc.value)


def test_rules_check_finds_shadowed_rules():
    rules = parse_rules('[[rule]]\nid = "a"\nstatus = "5.1.1"\nreason = "userunknown"\n'
                        '[[rule]]\nid = "b"\nstatus = "5.1.1"\ndiagnostic = \'gone\'\nreason = "hasmoved"\n')
    assert check_rules(rules) == ["b: unreachable, shadowed by earlier rule a"]


def test_default_rules_pass_the_checker():
    assert check_rules(default_rules()) == []


def _rule_hits() -> set[str]:
    from bounceproc.domain.parse.message import parse_message
    paths = glob.glob(str(FIXTURES / "*" / "*.eml"))
    if CORPUS.is_dir():
        paths += glob.glob(str(CORPUS / "maildir" / "*" / "*.eml"))
    hits = set()
    for p in paths:
        with open(p, "rb") as fh:
            hits.update(v.rule for v in parse_message(fh.read()).recipients)
    for row in csv.DictReader(ACCT_SAMPLES.open(encoding="utf-8")):
        hits.add(classify(row["dsnStatus"], "", row["dsnDiag"]).rule)
    return hits


def test_every_rule_is_hit_by_a_message_or_a_fixture():
    """Each rule is justified: some fixture or corpus message (or acct sample row) is decided by it."""
    if not CORPUS.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"corpus absent at {CORPUS}: the fixtures alone do not exercise every rule")
    missing = [r.id for r in default_rules() if r.id not in _rule_hits()]
    assert missing == []
