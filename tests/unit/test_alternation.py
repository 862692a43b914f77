"""alternation.py: letter-first rewriting finds the same matches as the patterns as written."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounceproc.domain.alternation import fast_alternation_source, letter_first, prefiltered, split_alternatives

PATTERNS = [r"\bspf\b", r"(?<!not )listed (?:at|in|on|by)", r"(?:helo|ehlo) command (?:\[[^\]]*\] )?rejected",
            r"\bs?pam", r"(?:a|b)?x", r"spamhaus", r"\b\d+", r"rate.?limit", r"\brate\b", r"\bpolic(?:y|ies)\b"]


@pytest.mark.parametrize("pattern,rewritten", [
    (r"\bspf\b", r"s(?<!\ws)pf\b"),
    (r"(?<!not )listed", r"l(?<!not l)isted"),
    (r"(?:helo|ehlo) command", r"helo command|ehlo command"),
    (r"\bs?pam", r"\bs?pam"),          # a quantified first letter is left alone
    (r"(?:a|b)?x", r"(?:a|b)?x"),
    (r"\b\d+", r"\b\d+"),
    (r"spamhaus", r"spamhaus"),
])
def test_letter_first_rewrites_three_leading_forms(pattern, rewritten):
    assert letter_first(pattern) == rewritten


WORDS = ["spf", "xspf", "spf1", "not listed in", "listed at", "helo command [x] rejected", "ehlo command rejected",
         "spam", "pam", "a", "bx", "x", "spamhaus", "42", "a42", "ratelimit", "rate", "irate", "policy", "policies",
         " ", "-", "."]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=8), st.sampled_from(["", " ", "-"]))
def test_the_joined_pattern_finds_the_same_first_match(words, sep):
    text = sep.join(words)
    reference = re.compile("|".join(f"(?:{p})" for p in PATTERNS))
    a, b = reference.search(text), re.compile(fast_alternation_source(PATTERNS)).search(text)
    assert (a and (a.start(), a.group(0))) == (b and (b.start(), b.group(0)))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=8), st.sampled_from(["", " ", "-"]))
def test_the_prefiltered_pattern_finds_the_same_first_match(words, sep):
    text = sep.join(words)
    anchored = [p for p in PATTERNS if p != r"\b\d+"]
    a, b = re.compile(fast_alternation_source(anchored)).search(text), prefiltered(anchored).search(text)
    assert (a and (a.start(), a.group(0))) == (b and (b.start(), b.group(0)))


def test_prefiltered_literals_and_a_pattern_without_any():
    p = prefiltered([r"\bspf\b", r"spamhaus", r"\bs?pam", r"rate.?limit"])
    assert p.literals == ("limit", "pam", "spf")      # "spamhaus" holds "pam": it adds nothing
    assert p.search("no evidence here") is None and p.search("see spamhaus").group(0) == "spamhaus"
    always = prefiltered([r"spamhaus", r"\b\d+"])       # \d+ needs no literal: always searched
    assert always.literals is None and always.search("code 42").group(0) == "42"


def test_split_alternatives_keeps_groups_and_classes_whole():
    assert split_alternatives(r"a|b(?:c|d)|[|]") == ["a", "b(?:c|d)", "[|]"]


def test_prefiltered_reads_its_rewriting_and_anchors_from_the_cache_of_an_earlier_process(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNCEPROC_CACHE_DIR", str(tmp_path))
    patterns = [r"\bspf\b", r"spamhaus"]
    assert prefiltered(patterns).literals == ("spamhaus", "spf")
    [cached] = tmp_path.glob("alternation-*.json")
    entry = json.loads(cached.read_text())
    cached.write_text(json.dumps(dict(entry, data={"pattern": "spamhaus", "literals": ["spamhaus"]})))
    from_cache = prefiltered(patterns)                   # same patterns, same code: the file answers
    assert from_cache.literals == ("spamhaus",) and from_cache.search("spf fail") is None
    assert prefiltered([r"\bspf\b"]).search("spf fail").group(0) == "spf"   # other patterns: derived
    cached.write_text("{torn")
    again = prefiltered(patterns)                         # a torn file: derived again, and rewritten
    assert again.literals == ("spamhaus", "spf") and again.search("spf fail").group(0) == "spf"
    assert json.loads(cached.read_text())["data"]["literals"] == ["spamhaus", "spf"]
