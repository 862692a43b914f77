"""No accounting input makes the acct parser raise or lose a good record: hypothesis damages some
lines of a valid stream (byte flips, stray quotes, cut lines, NULs, 8-bit junk, extra or missing
commas, header lines in between) and checks that every undamaged record still becomes its event,
that nothing is both an event and quarantined, and that every quarantined line number is a line of
the batch. Example counts are bounded so the module runs in a few seconds."""
from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.acct import _parse_time, parse_acct_batch

HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
          "vmta,jobId,header_Message-ID")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def good_line(i: int) -> str:
    """A valid record whose recipient names it (r<i>@example.com), of a few types and quotings."""
    ts = f"2026-03-01 10:{i % 60:02d}:00+0000"
    rcpt = f"r{i}@example.com"
    kind = i % 4
    if kind == 0:
        return f"d,{ts},{ts},bounces@example.net,{rcpt},,relayed,2.0.0 (success),smtp;250 ok,mx.example.com,,v1,j1,<m{i}@example.net>"
    if kind == 1:
        return (f'b,{ts},{ts},bounces@example.net,{rcpt},,failed,"5.1.1 (bad destination mailbox address)",'
                f'"smtp;550 5.1.1 <{rcpt}>: user unknown, ""quoted"" text",mx.example.com,bad-mailbox,v1,j1,')
    if kind == 2:
        return f"t,{ts},{ts},bounces@example.net,{rcpt},,delayed,4.2.2 (mailbox full),smtp;452 4.2.2 full,mx.example.com,quota-issues,v2,j2,"
    return (f'b,{ts},{ts},bounces@example.net,{rcpt},,failed,"5.7.1 (refused)","smtp;554 5.7.1 blocked\r\n'
            f'  (multi-line diagnostic)",mx.example.com,spam-related,v1,j1,')


DAMAGE = ["flip", "quote", "cut", "nul", "junk8", "comma", "uncomma", "header"]


@st.composite
def damaged_stream(draw):
    n = draw(st.integers(1, 25))
    lines = [good_line(i) for i in range(n)]
    damaged: set[int] = set()
    for i in sorted(draw(st.sets(st.integers(0, n - 1), max_size=max(1, n // 3)))):
        op = draw(st.sampled_from(DAMAGE))
        s = lines[i]
        if op == "header":                       # a header line in between (the pipe restarted)
            lines[i] = HEADER + "\r\n" + s
            continue                             # the record itself is intact
        damaged.add(i)
        pos = draw(st.integers(0, max(0, len(s) - 1)))
        if op == "flip":
            s = s[:pos] + chr(draw(st.integers(1, 0x2FF))) + s[pos + 1:]
        elif op == "quote":
            s = s[:pos] + '"' + s[pos:]
        elif op == "cut":
            s = s[:pos]
        elif op == "nul":
            s = s[:pos] + "\x00" + s[pos:]
        elif op == "junk8":
            s = s[:pos] + "\xff\xfe" + s[pos:]
        elif op == "comma":
            s = s[:pos] + "," + s[pos:]
        else:
            s = s.replace(",", "", 1)
        lines[i] = s
    payload = ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")
    if draw(st.booleans()):
        payload = payload.replace(b"\r\n", b"\n")
    return payload, n, damaged


@FUZZ
@given(damaged_stream())
def test_damaged_lines_never_cost_a_good_record(case):
    payload, n, damaged = case
    first_line = 7
    events, quarantined = parse_acct_batch(HEADER, payload, first_line)
    physical = payload.count(b"\n")
    assert all(first_line <= q.line_no < first_line + physical for q in quarantined)
    assert all(q.reason for q in quarantined)
    found = {e.recipient for e in events}
    for i in range(n):
        if i not in damaged:
            assert f"r{i}@example.com" in found, (i, payload)
    assert len(events) + len(quarantined) >= n - len(damaged)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([HEADER, ""]))
def test_any_bytes_give_events_or_quarantine_never_an_exception(raw, header):
    events, quarantined = parse_acct_batch(header, raw, 1)
    assert all(q.line_no >= 1 and q.reason for q in quarantined)
    assert all(e.event_key and e.type for e in events)


def test_stray_quote_that_yields_the_right_column_count_loses_only_its_line():
    """Found by the fuzz test above: a quote opened in record 0 swallows record 1, and the merged
    text happens to have the header's 14 columns. Record 1 used to vanish without a trace."""
    lines = [good_line(0), good_line(1), good_line(2)]
    lines[0] = lines[0].replace("2.0.0 (success)", '"2.0.0 (success)')
    events, quarantined = parse_acct_batch(HEADER, ("\r\n".join(lines) + "\r\n").encode(), 1)
    assert {e.recipient for e in events} >= {"r1@example.com", "r2@example.com"}
    assert [q.line_no for q in quarantined if "r0@" in q.raw] in ([], [1])


def test_stray_quote_before_a_real_multiline_record_keeps_that_record():
    lines = [good_line(2), good_line(3), good_line(4)]       # 3 is a two-line record
    lines[0] = lines[0].replace("4.2.2 (mailbox full)", '"4.2.2 (mailbox full)')
    events, _ = parse_acct_batch(HEADER, ("\r\n".join(lines) + "\r\n").encode(), 1)
    by = {e.recipient: e for e in events}
    assert {"r3@example.com", "r4@example.com"} <= set(by)
    assert "multi-line diagnostic" in by["r3@example.com"].diagnostic


@FUZZ
@given(damaged_stream(), st.integers(1, 6), st.sampled_from([1, 7, 64, 4096]))
def test_the_pipes_batches_lose_no_good_record_either(case, max_lines, chunk):
    """The same damaged streams cut into batches by the pipe's Batcher (quote tracking, header
    lines, any chunking of stdin) and each batch parsed as a worker does: still every undamaged
    record, and each quarantined line number is a line of the stream."""
    from bounceproc.entrypoints.acct_pipe import Batcher
    payload, n, damaged = case
    data = (HEADER + "\r\n").encode() + payload
    batcher = Batcher(max_lines=max_lines)
    batches = []
    for i in range(0, len(data), chunk):
        batches += batcher.feed(data[i:i + chunk])
    batches += batcher.finish()
    found: set[str] = set()
    for b in batches:
        events, quarantined = parse_acct_batch(b.header, b.payload, b.first_line)
        found.update(e.recipient for e in events)
        assert all(b.first_line <= q.line_no < b.first_line + b.lines for q in quarantined)
    for i in range(n):
        if i not in damaged:
            assert f"r{i}@example.com" in found, (i, max_lines, chunk, data)


@FUZZ
@given(damaged_stream(), st.integers(1, 6), st.sampled_from([1, 7, 4096]))
def test_event_keys_do_not_depend_on_how_the_stream_was_batched(case, max_lines, chunk):
    """A record piped in one batching and imported from the file in another must get the same
    event key, or the import of a file already piped would store it twice. (A damaged record may
    be read in one batching and quarantined in another: a quote inside a field is not CSV, and
    the batch cutter counts quotes rather than parse every line; only good records are compared.)"""
    from bounceproc.entrypoints.acct_pipe import Batcher
    payload, n, damaged = case
    good = {f"r{i}@example.com" for i in range(n) if i not in damaged}
    data = (HEADER + "\r\n").encode() + payload
    whole, _ = parse_acct_batch(HEADER, payload, 2)
    batcher = Batcher(max_lines=max_lines)
    batches = []
    for i in range(0, len(data), chunk):
        batches += batcher.feed(data[i:i + chunk])
    batches += batcher.finish()
    keys = {e.event_key for b in batches for e in parse_acct_batch(b.header, b.payload, b.first_line)[0]
            if e.recipient in good}
    assert keys == {e.event_key for e in whole if e.recipient in good}


@FUZZ
@given(st.permutations(HEADER.split(",")[1:]), st.integers(0, 3), st.sampled_from(["iso", "epoch"]))
def test_column_order_and_time_format_do_not_change_the_event(rest, k, time_format):
    """`record-fields` may list the fields in any order (PowerMTA's header starts with `type`)
    and PowerMTA may log either time format (`iso-times`, per acct-file): the same record gives
    the same event, key included, so a file imported after the pipe saw it is not stored twice."""
    order = ["type", *rest]
    names = HEADER.split(",")
    row = next(csv.reader(io.StringIO(good_line(k) + "\r\n", newline="")))
    if time_format == "epoch":
        for f in ("timeLogged", "timeQueued"):
            i = names.index(f)
            row[i] = _parse_time(row[i])[1]
    value = dict(zip(names, row))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(order)
    w.writerow([value[n] for n in order])
    reordered = parse_acct_batch("", out.getvalue().encode(), 1)[0]
    original = parse_acct_batch(HEADER, (good_line(k) + "\r\n").encode(), 2)[0]
    assert [(e.event_key, e.type, e.recipient, e.status, e.diagnostic, e.occurred_at) for e in reordered] == \
        [(e.event_key, e.type, e.recipient, e.status, e.diagnostic, e.occurred_at) for e in original]


def _diagnostics() -> list[tuple[str, str]]:
    path = __import__("pathlib").Path(__file__).resolve().parents[2] / "fixtures" / "dsn" / "pmta-acct-diagnostics.csv"
    with open(path, newline="") as fh:
        return [(r["dsnStatus"].split(" ")[0], r["dsnDiag"]) for r in csv.DictReader(fh)]


_DIAGS = _diagnostics()
# Values the shape mask turns into "#": queue ids (6+ word characters with a digit), IPv4
# addresses, e-mail addresses. Each kind is drawn twice to make two diagnostics of one shape.
_KINDS = {
    "id": st.text("0123456789abcdefXYZ", min_size=5, max_size=16).map(lambda s: s + "7"),
    "ip": st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    "addr": st.sampled_from(["a1b2c3@example.com", "x@mail.example.org", "u.ser+1@example.net",
                             "postmaster@example.com", "mailbox.full@example.org"]),
}


def _same_layout(data, token: str) -> str:
    """Another id or IP of the same length and layout (digits for digits, letters for letters).
    The memo's shapes ("#" for each) do not keep lengths, and rules that bound a distance
    ("invalid mailbox" without "full" within 60 characters) can tell a long id from a short one:
    the memo answers alike only for ids of one length, which is what receivers write."""
    if "@" in token:                             # the classifier folds any address word to "<>"
        return data.draw(_KINDS["addr"])
    return "".join(data.draw(st.sampled_from("0123456789")) if c.isdigit()
                   else data.draw(st.sampled_from("abcdefXYZ")) if c.isalpha() else c for c in token)


@FUZZ
@given(st.sampled_from(_DIAGS), st.lists(st.tuples(st.integers(0, 400), st.sampled_from(sorted(_KINDS))),
                                         max_size=3),
       st.sampled_from(["", "mx1.example.com (192.0.2.1)", "mx.example.net"]), st.data())
def test_the_classification_memo_never_answers_for_another_wording(base, inserts, mta, data):
    """The acct parser memoises classification on the *shape* of a failure (ids, IPs and addresses
    masked). Two diagnostics of one shape must classify alike, or the memo would answer the second
    with the first's verdict: real diagnostics with ids, IPs and addresses inserted, twice with
    other values of the same layout at the same places, must get from the memo what the rules
    say directly."""
    from bounceproc.domain import classify as classify_module
    from bounceproc.domain.parse.acct import _classified, _reply_code, _shape
    status, diag = base
    variants = []
    tokens = [(pos, data.draw(_KINDS[kind])) for pos, kind in inserts]
    for values in ([t for _, t in tokens], [_same_layout(data, t) for _, t in tokens]):
        words = diag.split(" ")                  # the first word ("smtp;550") stays first, as in acct
        for (pos, _), value in zip(tokens, values):
            words.insert(1 + pos % len(words), value)
        variants.append(" ".join(words))
    first, second = variants
    if _shape(first) != _shape(second):
        return                                   # not one shape: the memo keeps them apart
    reply = _reply_code(second)
    assert reply == _reply_code(first)
    def fresh(*args):                            # a classifier of its own: an empty memo per example
        return classify_module.classify(*args)
    _classified(fresh, status, reply, first, mta)                          # the memo's first sight
    memo = _classified(fresh, status, reply, second, mta)
    direct = classify_module.classify(status, reply, second, mta)
    assert (memo.reason, memo.rule) == (direct.reason, direct.rule), (first, second)
