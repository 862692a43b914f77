"""No input makes the engine raise: hypothesis mutates real messages (fixtures, and the corpus when
present), truncates MIME, breaks boundaries, inflates headers, adds 8-bit junk and deep nesting.
Example counts are bounded so the module runs well under a minute. How long a parse takes is not
asserted here (a busy machine would fail it): bench/sink_throughput measures it."""
from __future__ import annotations

import glob
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.classify import classify
from bounceproc.domain.parse.message import KINDS, parse_message

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted(glob.glob(str(ROOT / "fixtures" / "*" / "*.eml")))
SEEDS += sorted(glob.glob(str(ROOT.parent / "shared" / "corpus" / "maildir" / "*" / "*.eml")))[::7]
MESSAGES = [Path(p).read_bytes() for p in SEEDS]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(raw: bytes) -> None:
    report = parse_message(raw)
    assert report.kind in KINDS
    assert not report.note.startswith("internal error"), report.note
    for v in report.recipients:
        assert isinstance(v.address, str) and isinstance(v.hard, bool) and v.reason


@st.composite
def mutated(draw):
    raw = draw(st.sampled_from(MESSAGES))
    op = draw(st.sampled_from(["truncate", "flip", "insert", "boundary", "crlf", "cr", "junk8"]))
    n = len(raw)
    if op == "truncate":
        return raw[:draw(st.integers(0, n))]
    if op == "flip":
        pos = draw(st.lists(st.integers(0, max(0, n - 1)), min_size=1, max_size=20))
        b = bytearray(raw)
        for p in pos:
            if b:
                b[p] = draw(st.integers(0, 255))
        return bytes(b)
    if op == "insert":
        at = draw(st.integers(0, n))
        return raw[:at] + draw(st.binary(max_size=200)) + raw[at:]
    if op == "boundary":
        return raw.replace(b"boundary=", b"boundary=x" if draw(st.booleans()) else b"boundary=\"")
    if op == "crlf":
        return raw.replace(b"\n", b"\r\n")
    if op == "cr":
        return raw.replace(b"\n", b"\r")
    return bytes(c | 0x80 if c > 64 and draw(st.booleans()) else c for c in raw[:4000])


@FUZZ
@given(mutated())
def test_mutated_real_messages(raw):
    check(raw)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes(raw):
    check(raw)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=500), st.text(max_size=500), st.text(max_size=2000), st.text(max_size=200))
def test_classify_takes_any_text(status, reply, diag, mta):
    c = classify(status, reply, diag, mta)
    assert c.reason and c.category and isinstance(c.hard, bool)


def test_huge_header_and_deep_nesting_are_bounded():
    huge = b"Subject: " + b"x" * 2_000_000 + b"\n" + b"X-A: b\n" * 50_000 + b"\nbody\n"
    check(huge)
    nest = b""
    for i in range(200):
        nest += b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
    check(b"From: MAILER-DAEMON@example.net\nSubject: Undelivered\n" + nest + b"user unknown\n")
    many = b"Content-Type: multipart/mixed; boundary=q\n\n" + b"--q\nContent-Type: text/plain\n\nx\n" * 20_000
    check(many)
    longline = b"From: MAILER-DAEMON@example.net\nSubject: failure\n\n" + b"a@b.example " * 200_000
    check(longline)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.one_of(st.text(max_size=30), st.sampled_from(
    ["hex", "base64", "zlib", "rot13", "utf\x00-8", "utf-16", "iso-2022-jp", "x-unknown", "idna", "punycode"])))
def test_any_declared_charset_decodes_without_raising(data, charset):
    """Found by the mutation fuzz above (a NUL inside `charset=` raised ValueError): a charset
    that is unknown, not a text encoding (hex, zlib, rot13) or not a name at all falls back; so does
    one whose codec cannot decode with the "replace" error handler (idna, punycode: found by this test in a later run)."""
    from bounceproc.domain.parse.mime import decode_bytes
    assert isinstance(decode_bytes(data, charset), str)
    raw = (b"From: MAILER-DAEMON@example.net\nSubject: Undelivered Mail\nContent-Type: text/plain; charset=\""
           + charset.encode("utf-8", "surrogatepass") + b"\"\n\n<a@example.com>: 550 5.1.1 user unknown\n" + data)
    check(raw)
