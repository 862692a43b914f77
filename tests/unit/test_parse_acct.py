"""PowerMTA accounting CSV -> events: every record type, header variants, quoting, time formats,
line endings, bad lines. Pure: no I/O beyond reading fixtures/acct/*.csv."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bounceproc.domain.classify import Classification
from bounceproc.domain.events import Event, event_key
from bounceproc.domain.parse import acct
from bounceproc.domain.parse.acct import Quarantined, is_header_line, acct_address_key, parse_acct_batch
from bounceproc.domain.parse.stamp import encode_stamp

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "acct"
V5 = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
      "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
UTC = timezone.utc


def undefined(status="", reply_code="", diagnostic="", remote_mta=""):
    return Classification("undefined", "other", False, "none")


def user_unknown(status="", reply_code="", diagnostic="", remote_mta=""):
    return Classification("userunknown", "bad-mailbox", True, "test-rule")


def d_row(rcpt="alice@example.com", t="2024-03-01 10:00:02+0000", **kw):
    vals = dict(type="d", timeLogged=t, timeQueued="2024-03-01 10:00:00+0000", orig="bounces@example.net",
                rcpt=rcpt, dsnAction="relayed", dsnStatus="2.0.0 (success)", dsnDiag="smtp;250 2.0.0 OK",
                dsnMta="mx.example.com (192.0.2.10)", srcType="smtp", dlvType="smtp",
                dlvSourceIp="198.51.100.5", dlvDestinationIp="192.0.2.10",
                dlvEsmtpAvailable='"ENHANCEDSTATUSCODES,8BITMIME"', dlvSize="100", vmta="vmta-a",
                jobId="job-1", queue="example.com/vmta-a", vmtaPool="pool-1")
    vals.update(kw)
    return ",".join(vals.get(c, "") for c in V5.split(","))


def parse(text: str | bytes, header: str = "", **kw):
    data = text.encode() if isinstance(text, str) else text
    return parse_acct_batch(header, data, **kw)


def fixture(name: str, **kw):
    return parse_acct_batch("", (FIX / name).read_bytes(), **kw)


# -- record types -------------------------------------------------------------------------------

def test_v5_default_fields_d_b_t_with_quoting_and_crlf():
    evs, bad = fixture("pmta-v5-d-b-t.csv", classifier=user_unknown)
    assert bad == []
    assert [e.type for e in evs] == ["delivered", "delivered", "bounced", "bounced", "deferred", "bounced"]
    d = evs[0]
    assert (d.recipient, d.sender, d.status, d.reply_code, d.vmta, d.source_ip, d.job_id) == (
        "alice@example.com", "bounces@sender.example.net", "2.0.0", "250", "vmta-a", "198.51.100.5", "spring-sale")
    assert d.occurred_at == datetime(2024, 3, 1, 10, 0, 2, tzinfo=UTC)
    assert d.source == "acct" and d.hard is False and d.reason == ""
    # the whole address is lower-cased: one key however it was spelled (domain/address.py)
    assert evs[1].recipient == "bob.smith@example.com"
    # doubled quotes and a CRLF inside a quoted diagnostic survive
    dan = evs[3]
    assert '(in reply to "RCPT TO:<dan@example.net>")\r\nsecond line' in dan.diagnostic
    assert dan.reply_code == "550" and dan.remote_mta == "mx.example.net (192.0.2.30)"
    b = evs[2]
    assert (b.reason, b.category, b.hard, b.rule) == ("userunknown", "bad-mailbox", True, "test-rule")
    assert b.attrs["pmta_bounce_cat"] == "bad-mailbox"
    t = evs[4]
    assert t.type == "deferred" and t.hard is False        # a transient failure never is hard
    assert t.status == "4.2.2" and t.reply_code == "452"
    assert evs[5].status == "4.4.7" and evs[5].reply_code == ""    # x-pmta;expired has no SMTP code


def test_union_header_covers_every_record_type():
    evs, bad = fixture("pmta-union-all-types.csv", classifier=undefined)
    assert bad == []
    by = {(e.type, e.recipient): e for e in evs}
    assert [e.attrs.get("pmta_type", "d") for e in evs] == ["r", "d", "b", "t", "tq", "rb", "rs", "rs", "f", "f"]
    assert ("received", "ivan@example.com") in by
    assert by[("delivered", "ivan@example.com")].category == "success"
    judy = by[("bounced", "judy@example.org")]
    # the classifier found nothing: PowerMTA's bounceCat is the category, its verdict kept as evidence
    assert (judy.reason, judy.category, judy.hard, judy.rule) == ("undefined", "spam-related", False, "pmta-bounce-cat")
    assert judy.attrs["pmta_bounce_cat"] == "spam-related"
    tq = next(e for e in evs if e.type == "queue_deferred")
    assert tq.recipient == "" and tq.attrs["queue_domain"] == "example.info" and tq.vmta == "vmta-a"
    rb = by[("bounced", "leo@example.com")]
    assert rb.attrs["pmta_type"] == "rb" and rb.attrs["reporting_mta"] == "dns;mx.example.com"
    assert by[("deferred", "mia@example.com")].attrs["dsn_action"] == "delayed"     # rs delayed
    assert by[("delivered", "nina@example.com")].attrs["pmta_type"] == "rs"          # rs delivered
    arf = by[("complained", "oscar@example.com")]
    assert (arf.feedback_type, arf.source_ip, arf.message_id, arf.job_id) == (
        "abuse", "198.51.100.5", "msg-9@sender.example.net", "job-9")
    assert arf.attrs["user_agent"] == "Yahoo!-Mail-Feedback/2.0"
    assert arf.attrs["header_Subject"] == "Spring sale, 20% off"
    jmrp = by[("complained", "pat@example.com")]       # JMRP: recipient from X-HmXmrOriginalRecipient
    assert jmrp.attrs["recipient_from"] == "X-HmXmrOriginalRecipient"


def test_rs_without_known_action_is_remote_status():
    hdr = "type,timeLogged,rcpt,dsnAction,dsnStatus"
    evs, bad = parse(f"{hdr}\nrs,2024-03-01 10:00:00+0000,a@example.com,expanded,2.0.0\n"
                     "rs,2024-03-01 10:00:00+0000,b@example.com,,\n")
    assert [e.type for e in evs] == ["delivered", "remote_status"] and bad == []


def test_complaint_recipient_from_stamp_or_verp():
    hdr = "type,timeLogged,orig,rcpt,feedbackType,header_X-Bounceproc-Ref"
    stamp = encode_stamp("Zed@Example.com", "list-7", "job-3")
    evs, bad = parse(f"{hdr}\n"
                     f"f,2024-03-01 10:00:00+0000,fbl@example.net,,fraud,{stamp}\n"
                     "f,2024-03-01 10:00:01+0000,bounces+amy=example.org@example.net,,,\n"
                     "f,2024-03-01 10:00:02+0000,fbl@example.net,,abuse,\n")
    assert [(e.recipient, e.feedback_type, e.list_id, e.job_id) for e in evs] == [
        ("zed@example.com", "fraud", "list-7", "job-3"), ("amy@example.org", "abuse", "", "")]
    assert len(bad) == 1 and bad[0].line_no == 4 and "complaint without a recipient" in bad[0].reason


# -- header variants ----------------------------------------------------------------------------

def test_old_header_with_time_imprinted_and_epoch_times():
    evs, bad = fixture("pmta-old-timeimprinted.csv", classifier=user_unknown)
    assert bad == []
    assert [(e.type, e.recipient) for e in evs] == [("delivered", "grace@example.com"), ("bounced", "heidi@example.com")]
    assert evs[0].occurred_at == datetime(2014, 3, 1, 10, 0, 2, tzinfo=UTC)
    assert evs[1].job_id == "1234"


def test_header_mid_stream_remaps_columns():
    evs, bad = fixture("pmta-header-midstream.csv", classifier=user_unknown)
    assert bad == []
    assert [(e.type, e.recipient, e.vmta) for e in evs] == [
        ("delivered", "quinn@example.com", "vmta-a"), ("bounced", "ruth@example.com", "vmta-b"),
        ("delivered", "sam@example.com", "vmta-b")]
    assert evs[1].sender == "bounces@sender.example.net" and evs[1].status == "5.1.1"


def test_header_argument_applies_until_a_new_header_line():
    body = d_row() + "\n"
    evs, bad = parse(body, header=V5)
    assert len(evs) == 1 and bad == []
    evs2, bad2 = parse(body)           # no header known: quarantined, not guessed
    assert evs2 == [] and bad2[0].reason == "no header line before this record"


def test_record_fields_subset_with_header_fields_and_stamp():
    evs, bad = fixture("pmta-record-fields-subset.csv", classifier=undefined)
    assert bad == []
    tina, uma, dave = evs
    assert tina.message_id == "m-1@sender.example.net" and tina.list_id == "newsletter.sender.example.net"
    assert tina.sender == "" and tina.vmta == ""
    assert uma.category == "inactive-mailbox"
    # no rcpt column value: the recipient comes from our own tracking header
    assert (dave.recipient, dave.list_id, dave.job_id) == ("dave@example.com", "newsletter-42", "job-77")


def test_header_field_names_are_case_insensitive_and_bom_is_ignored():
    hdr = "\ufefftype,timeLogged,rcpt,HEADER_message-id"
    evs, bad = parse(f"{hdr}\r\nd,2024-03-01 10:00:00+0000,a@example.com,<x@example.net>\r\n")
    assert bad == [] and evs[0].message_id == "x@example.net"


def test_is_header_line():
    assert is_header_line(V5) and is_header_line(V5.encode() + b"\r\n") and is_header_line(b"\xef\xbb\xbftype,rcpt")
    assert not is_header_line(d_row()) and not is_header_line(b"d,type") and not is_header_line("")


# -- formats ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stamp", ["2024-03-01 10:00:02+0000", "1709287202", "2024-03-01 11:00:02+0100",
                                   "2024-03-01T10:00:02+00:00"])
def test_both_time_formats_give_the_same_instant_and_key(stamp):
    ref, _ = parse(V5 + "\n" + d_row() + "\n")
    evs, bad = parse(V5 + "\n" + d_row(t=stamp) + "\n")
    assert bad == [] and evs[0].occurred_at == datetime(2024, 3, 1, 10, 0, 2, tzinfo=UTC)
    assert evs[0].event_key == ref[0].event_key


def test_crlf_and_lf_give_identical_events():
    lf = (FIX / "pmta-v5-d-b-t.csv").read_bytes().replace(b"\r\n", b"\n")
    a, _ = fixture("pmta-v5-d-b-t.csv", classifier=user_unknown)
    b, _ = parse(lf, classifier=user_unknown)
    # the CRLF inside the quoted diagnostic became LF, everything else is equal
    assert [e.event_key for e in a[:3]] == [e.event_key for e in b[:3]]
    assert len(a) == len(b)


def test_no_trailing_newline_and_blank_lines():
    evs, bad = parse(V5 + "\n\n" + d_row() + "\n\n" + d_row("bob@example.com"))
    assert [e.recipient for e in evs] == ["alice@example.com", "bob@example.com"] and bad == []


def test_address_normalisation():
    assert acct_address_key(" <Alice@EXAMPLE.Com> ") == "alice@example.com"
    assert acct_address_key("user@Bücher.example") == "user@xn--bcher-kva.example"
    assert acct_address_key("<>") == ""
    for badaddr in ("no-at-sign", "@example.com", "a@", "x" * 400 + "@example.com", "a\ufffd@example.com",
                    "a b@example.com", "user@localhost", "x" * 65 + "@example.com"):
        with pytest.raises(ValueError):
            acct_address_key(badaddr)


def test_recipient_the_canonical_normaliser_rejects_is_quarantined_with_its_reason():
    rows = [d_row("a b@example.com"), d_row("user@localhost"), d_row("Ok@Example.com."),
            d_row("<mailto:Bob@Example.com>")]
    evs, bad = parse(V5 + "\n" + "\n".join(rows) + "\n")
    assert [e.recipient for e in evs] == ["ok@example.com", "bob@example.com"]
    assert [(q.line_no, q.reason.split(":")[0]) for q in bad] == [
        (2, "not an email address (whitespace, control characters, <> or invalid bytes)"),
        (3, "not an email address (domain without a dot)")]


def test_idn_recipient_in_a_record():
    evs, bad = parse(V5 + "\n" + d_row("Jörg@Bücher.example") + "\n")
    assert bad == [] and evs[0].recipient == "jörg@xn--bcher-kva.example"


# -- identity -----------------------------------------------------------------------------------

def test_event_key_is_stable_and_independent_of_line_number_and_batching():
    data = (FIX / "pmta-v5-d-b-t.csv").read_bytes()
    a, _ = parse_acct_batch("", data, first_line=1, classifier=user_unknown)
    lines = data.split(b"\r\n")
    b, _ = parse_acct_batch(V5, b"\r\n".join(lines[3:]), first_line=900, classifier=user_unknown)
    assert [e.event_key for e in a[2:]] == [e.event_key for e in b]
    assert len({e.event_key for e in a}) == len(a)     # distinct records, distinct keys


def test_fast_path_and_general_path_agree():
    # The first `d` row with a new timestamp takes the general path; later ones the fast path.
    acct._TIMES.clear()
    evs, _ = parse(V5 + "\n" + d_row() + "\n" + d_row() + "\n")
    first, second = evs
    assert first == second and first.attrs == second.attrs
    assert first.event_key == event_key(
        "acct", "d", "1709287202", "alice@example.com", "bounces@example.net", "1709287200",
        "job-1", "", "2.0.0", "smtp;250 2.0.0 OK", "mx.example.com (192.0.2.10)", "vmta-a", "", "", "",
        at=first.occurred_at)
    assert first.event_key.startswith("65e1a722")     # time prefix: 1709287202 in hex


def test_fast_constructor_builds_real_events():
    names = [f.name for f in dataclasses.fields(Event)]
    values = ["k", "delivered", "a@example.com", datetime(2024, 1, 1, tzinfo=UTC), "acct", "s", "2.0.0",
              "250", "diag", "mta", "", "", False, "", "", "v", "192.0.2.1", "j", "", "", None, {"a": 1}]
    built = acct._make_event(*[values[names.index(n)] for n in (
        "event_key", "type", "recipient", "occurred_at", "source", "sender", "status", "reply_code",
        "diagnostic", "remote_mta", "reason", "category", "hard", "rule", "feedback_type", "vmta",
        "source_ip", "job_id", "list_id", "message_id", "intake_id", "attrs")])
    ref = Event(**dict(zip(names, values)))
    assert type(built) is Event and built == ref and hash(built) == hash(ref) and built.attrs == {"a": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.type = "bounced"  # type: ignore[misc]


# -- bad input ----------------------------------------------------------------------------------

def test_bad_lines_are_quarantined_with_line_numbers_and_the_rest_survives():
    evs, bad = fixture("pmta-bad-lines.csv", first_line=10)
    assert [e.recipient for e in evs] == ["zoe@example.com"]
    got = [(q.line_no, q.reason.split(":")[0].split(" (")[0]) for q in bad]
    assert got == [(11, "not an email address"), (12, "wrong column count"),
                   (13, "unknown record type 'zz'"), (14, "'b' record without a recipient"),
                   (15, "bad timestamp 'yesterday at noon'"), (16, "wrong column count")]
    assert all(isinstance(q, Quarantined) and q.raw for q in bad)
    assert bad[1].raw == "d,2024-03-01 10:00:02+0000,too,few,columns"


def test_stray_quote_loses_only_its_own_line():
    body = V5 + "\n" + d_row('"broken@example.com') + "\n" + d_row("ok@example.com") + "\n"
    evs, bad = parse(body)
    assert [e.recipient for e in evs] == ["ok@example.com"]
    assert [q.line_no for q in bad] == [2]


def test_nul_and_invalid_utf8_never_raise():
    junk = bytes(range(256)) + b"\n\x00\x00,\"\n" + b"\xff" * 50 + b"\n"
    evs, bad = parse(V5.encode() + b"\n" + junk + d_row().encode() + b"\n")
    assert [e.recipient for e in evs] == ["alice@example.com"]
    assert bad and all("\x00" not in q.raw for q in bad)


def test_overlong_values_are_cut_to_column_widths():
    evs, bad = parse(V5 + "\n" + d_row(vmta="v" * 500, jobId="j" * 500, dsnMta="m" * 900) + "\n")
    e = evs[0]
    assert bad == [] and len(e.vmta) == 128 and len(e.job_id) == 128 and len(e.remote_mta) == 255


def test_classifier_errors_do_not_stop_the_batch():
    def boom(*a):
        raise RuntimeError("rules file missing")
    evs, bad = fixture("pmta-v5-d-b-t.csv", classifier=boom)
    assert bad == [] and len(evs) == 6
    assert evs[2].rule == "pmta-bounce-cat" and evs[2].category == "bad-mailbox"
    assert "classifier_error" in evs[2].attrs


def test_random_garbage_never_raises():
    import random
    rnd = random.Random(7)
    base = (FIX / "pmta-union-all-types.csv").read_bytes()
    for _ in range(200):
        data = bytearray(base)
        for _ in range(rnd.randrange(1, 20)):
            data[rnd.randrange(len(data))] = rnd.choice(b'",\r\n\x00\xff;ab')
        evs, bad = parse_acct_batch("", bytes(data), classifier=undefined)
        assert all(isinstance(e, Event) for e in evs) and all(isinstance(q, Quarantined) for q in bad)


def test_classification_is_memoised_on_the_shape_of_the_failure():
    calls = []

    def counting(status="", reply_code="", diagnostic="", remote_mta=""):
        calls.append(diagnostic)
        return Classification("userunknown", "bad-mailbox", True, "r1")

    rows = [V5] + [d_row(f"u{i}@example.com", type="b", dsnStatus="5.1.1 (bad destination mailbox address)",
                         dsnDiag=f'"smtp;550-5.1.1 The email account that you tried to reach does not exist. {i + 99999:x}si{i * 7} - gsmtp"',
                         dsnMta=f"mx{i % 3}.mail{i + 100}.example.com (192.0.2.{i})") for i in range(50)]
    rows.append(d_row("v@example.com", type="b", dsnStatus="5.2.2", dsnDiag="smtp;552 5.2.2 Mailbox full"))
    evs, bad = parse("\n".join(rows) + "\n", classifier=counting)
    assert bad == [] and len(evs) == 51 and all(e.rule == "r1" for e in evs)
    # one rules-engine run per distinct wording (ids, IPs and host numbers masked), not per bounce
    assert len(calls) <= 4


def test_the_same_bad_timestamp_twice_is_a_bad_timestamp_both_times():
    evs, bad = parse(V5 + "\n" + d_row(t="not a time") + "\n" + d_row(rcpt="bob@example.com", t="not a time") + "\n")
    assert evs == [] and [q.reason for q in bad] == ["bad timestamp 'not a time'"] * 2


def test_a_failing_decoder_is_logged_not_swallowed(caplog):
    from bounceproc.domain.parse.verp import VerpFormat
    broken = VerpFormat(equals=None)          # decode_verp raises TypeError on it
    hdr = "type,timeLogged,orig,rcpt,feedbackType,header_X-HmXmrOriginalRecipient"
    with caplog.at_level("WARNING", logger="bounceproc.domain.parse.acct"):
        evs, bad = parse(f"{hdr}\n"
                         "f,2024-03-01 10:00:00+0000,bounces+amy=example.org@example.net,,abuse,\n",
                         verp=broken)
    assert evs == [] and len(bad) == 1 and "complaint without a recipient" in bad[0].reason
    assert [r.getMessage() for r in caplog.records] == [
        "acct VERP decoding failed (VERP: TypeError: 'in <string>' requires string as left operand, "
        "not NoneType); record kept without it"]


def test_a_nul_in_any_column_quarantines_that_line_escaped_and_never_the_next_ones():
    # issue 13, item 2: every text column, not just the diagnostic
    cols = [c for c in V5.split(",") if c not in ("type", "timeLogged")]
    rows = [V5]
    for i, col in enumerate(cols):
        r = d_row(f"u{i}@example.com", type="b", dsnStatus="5.1.1", dsnDiag="smtp;550 5.1.1 no such user")
        rows.append(_with(r, col, "x\x00y"))
    rows.append(d_row("after@example.com"))
    evs, bad = parse("\n".join(rows) + "\n")
    assert [e.recipient for e in evs] == ["after@example.com"]
    assert sorted(q.line_no for q in bad) == list(range(2, 2 + len(cols)))
    assert all("\x00" not in q.raw and "x\\x00y" in q.raw and "NUL" in q.reason for q in bad)
    for e in evs:
        assert not any("\x00" in str(getattr(e, f.name)) for f in dataclasses.fields(e))


def test_a_nul_on_a_later_line_of_a_multi_line_record_quarantines_that_record_once():
    # a quoted field spanning lines with a NUL on its second line: one record, one quarantine entry
    bad_row = d_row("u0@example.com", type="b", dsnStatus="5.1.1", dsnDiag='"smtp;550 no\nmore\x00text"')
    evs, bad = parse("\n".join([V5, bad_row, d_row("after@example.com")]) + "\n")
    assert [e.recipient for e in evs] == ["after@example.com"]
    assert [(q.line_no, q.reason) for q in bad] == [(2, acct.NUL_REASON)]
    assert "\x00" not in bad[0].raw and "more\\x00text" in bad[0].raw


def _with(row: str, col: str, value: str) -> str:
    vals = row.split(",")
    idx = V5.split(",").index(col)
    vals[idx] = value
    return ",".join(vals)


def test_a_damaged_tracking_stamp_with_a_nul_is_ignored():
    hdr = V5 + ",header_X-Bounceproc-Ref"
    stamp = encode_stamp("bob@example.com", list_id="li\x00st", job_id="j")
    evs, bad = parse(hdr + "\n" + d_row(type="b", dsnStatus="5.1.1") + "," + stamp + "\n")
    assert bad == [] and evs[0].list_id == "" and "\x00" not in evs[0].job_id


def test_without_timelogged_or_timequeued_records_are_dated_by_arrival_and_keyed_without_it():
    hdr = "type,rcpt,dsnStatus,dsnDiag"
    row = "b,gone@example.com,5.1.1,smtp;550 5.1.1 user unknown"
    t1, t2 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC), datetime(2027, 1, 5, 23, 59, tzinfo=UTC)
    (e1,), bad = parse(hdr + "\n" + row + "\n", arrival=t1, classifier=user_unknown)
    (e2,), _ = parse(hdr + "\n" + row + "\n", arrival=t2, classifier=user_unknown)
    assert bad == [] and e1.occurred_at == t1 and e1.attrs["time_from"] == "arrival"
    assert e1.event_key == e2.event_key            # a replay on another day is the same record
    evs, bad = parse(hdr + "\n" + row + "\n")       # no arrival given: says why
    assert evs == [] and "no timeLogged or timeQueued" in bad[0].reason


def test_unstorable_events_are_split_off_escaped():
    from bounceproc.app.intake import _unstorable_events
    evs, _ = parse(V5 + "\n" + d_row() + "\n" + d_row("bob@example.com") + "\n")
    broken = dataclasses.replace(evs[1], job_id="j\x00b", attrs={"x": "\ud800"})
    keep, bad = _unstorable_events([evs[0], broken])
    assert keep == [evs[0]] and bad[0].line_no == -2
    assert "\x00" not in bad[0].raw and "j\\\\x00b" in bad[0].raw
