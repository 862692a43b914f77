"""Issue 13, item 9: nothing a worker memoises grows with the mail that arrives. Every memo keyed
by message-specific text (diagnostics, notices, timestamps) is bounded in entries and in key size.
Counts entries only; nothing here is timed."""
from __future__ import annotations

from bounceproc.domain import classify as cl
from bounceproc.domain.parse import acct
from bounceproc.domain.parse.acct import parse_acct_batch


def test_bounded_memo_keeps_at_most_its_entries_and_skips_long_keys():
    calls = []

    def f(a, b):
        calls.append((a, b))
        return len(a) + len(b)

    m = cl.bounded_memo(f, entries=10, max_key=20)
    for i in range(1000):
        assert m(f"diag {i}", "x") == len(f"diag {i}") + 1
    assert m.cache_info().currsize == 10
    m("a" * 30, "")
    m("a" * 30, "")                       # too long to keep: computed both times
    assert calls.count(("a" * 30, "")) == 2 and m.cache_info().currsize == 10


def test_every_classifier_memo_is_bounded():
    c = cl.default_classifier()
    for memo in (c._raw_memo, c._memo, c._explain_memo, c._plan, cl._classify_cached):
        assert memo.maxsize <= 4 * cl.MEMO_ENTRIES and memo.max_key <= 4096
    before = c._raw_memo.cache_info().currsize
    notice = "550 5.1.1 " + " ".join(f"id{i:06d}" for i in range(2000))     # a whole notice
    c.classify("5.1.1", "550", notice, "mx.example.com")
    assert c._raw_memo.cache_info().currsize == before


def test_the_acct_memos_are_bounded():
    assert acct._MEMO_MAX <= 50_000 and acct._MEMO_MAX_KEY <= 4096
    hdr = "type,timeLogged,rcpt,dsnStatus,dsnDiag"
    long_diag = "smtp;550 5.1.1 " + "no such mailbox here " * 250
    rows = [f"b,2024-03-01 10:00:0{i}+0000,u{i}@example.com,5.1.1,{long_diag} v{i}" for i in range(3)]
    acct._MEMO.clear()
    evs, bad = parse_acct_batch("", ("\n".join([hdr, *rows]) + "\n").encode())
    assert len(evs) == 3 and bad == []
    assert sum(len(m) for m in acct._MEMO.values()) == 0        # too long to be worth keeping
    n = len(acct._TIMES)
    parse_acct_batch("", (hdr + "\nb," + "9" * 200 + ",u@example.com,5.1.1,x\n").encode())
    assert len(acct._TIMES) == n                                # a junk "timestamp" is not kept


def test_the_word_trigram_memo_keeps_no_ids_and_stays_bounded():
    c = cl.Classifier(cl.default_rules())
    c.classify("5.1.1", "550", "550 5.1.1 user unknown q3si124a7 BN8PR11MB4321 ab12cd34ef56 mailbox", "mx.example.com")
    kept = set(c._word_grams)
    assert {"user", "unknown", "mailbox"} <= kept and not any(any(ch.isdigit() for ch in w) for w in kept)
    words = c._word_grams
    for i in range(words.WORDS_MAX + 10):
        words["w" + "".join(chr(97 + int(d)) for d in str(i))]      # letters only: kept
    assert len(words) <= words.WORDS_MAX
