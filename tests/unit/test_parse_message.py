"""parse_message on hand-made messages: kinds, recovery of the recipient, VERP and the tracking stamp."""
from __future__ import annotations

from pathlib import Path

from bp_testing import text_notice
from hypothesis import given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.message import parse_message
from bounceproc.domain.parse.stamp import TRACKING_HEADER, decode_stamp, encode_stamp
from bounceproc.domain.parse.verp import VerpFormat, decode_verp, encode_verp, for_settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_verp_round_trip_and_powermta_form():
    assert encode_verp("alice@example.com", "bounces@bounce.example.net") == \
        "bounces+alice=example.com@bounce.example.net"
    assert decode_verp("bounces+alice=example.com@bounce.example.net") == "alice@example.com"
    assert decode_verp("<news-bob=example.org@example.net>") == "bob@example.org"
    assert decode_verp("bounces+a+tag=Example.COM@b.example.net") == "a+tag@example.com"
    assert decode_verp("plain@example.net") is None
    assert decode_verp("x=notadomain@example.net") is None
    assert decode_verp("b+alice=example.com@x.example", VerpFormat(prefix="bounces")) is None


def test_verp_format_from_the_settings_reads_a_hyphenated_return_path():
    rp = "bounce-handler+alice+tag=example.com@bounces.example.net"
    assert decode_verp(rp) == "handler+alice+tag@example.com"          # the default cannot know
    assert decode_verp(rp, for_settings("+")) == "alice+tag@example.com"
    assert decode_verp(rp, for_settings("", "bounce-handler")) == "alice+tag@example.com"
    assert decode_verp("bounces-bob+tag=example.org@example.net", for_settings("-")) == "bob+tag@example.org"
    assert for_settings() is for_settings("", "")                      # nothing set: the default


_LOCAL = st.text(st.sampled_from("abcxyz019.+-=_"), min_size=1, max_size=20).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)
_PATH = st.text(st.sampled_from("abcxyz019.-_"), min_size=1, max_size=15).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)


@settings(max_examples=300, deadline=None)
@given(_LOCAL, st.sampled_from(["example.com", "mail.example.org", "x-y.example.net"]), _PATH)
def test_verp_round_trip_for_any_local_part(local, domain, path_local):
    """Whatever the recipient's local part holds ("+", "-", "=", dots), a return path encoded
    with the configured separator (and, when its own local part has a hyphen, the prefix) decodes
    to the recipient."""
    rp = encode_verp(f"{local}@{domain}", f"{path_local}@bounces.example.net")
    assert decode_verp(rp, for_settings("+")) == f"{local}@{domain}"
    assert decode_verp(rp, for_settings("", path_local)) == f"{local}@{domain}"
    if "-" not in path_local:
        assert decode_verp(rp) == f"{local}@{domain}"


def test_stamp_round_trip_and_rejects_junk():
    value = encode_stamp("carol@example.com", "list-1", "job-9")
    assert value.startswith("v1.") and "=" not in value
    assert decode_stamp(value) == {"r": "carol@example.com", "l": "list-1", "j": "job-9"}
    assert decode_stamp("v1.!!!") is None and decode_stamp("v2.abc") is None and decode_stamp(None) is None


def _dsn(final_recipient: str = "", action: str = "failed", status: str = "5.1.1") -> bytes:
    fr = f"Final-Recipient: rfc822; {final_recipient}\n" if final_recipient else ""
    return (f"From: MAILER-DAEMON@mx.example.net\nTo: bounces@bounce.example.net\nSubject: failure\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            f"--b\nContent-Type: text/plain\n\nfailed\n\n--b\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx.example.net\n\n{fr}Action: {action}\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; 550 {status} user unknown\n\n--b--\n").encode()


def test_verp_envelope_beats_a_garbled_final_recipient():
    r = parse_message(_dsn("garbled@@example.com"), envelope_to=["bounces+dave=example.com@bounce.example.net"])
    assert r.kind == "dsn" and [(v.address, v.recovered_by) for v in r.recipients] == [("dave@example.com", "verp")]


def test_verp_envelope_fills_a_missing_recipient():
    r = parse_message(_dsn(""), envelope_to=["bounces+erin=example.org@bounce.example.net"])
    assert [(v.address, v.reason, v.hard) for v in r.recipients] == [("erin@example.org", "userunknown", True)]


def test_a_local_name_is_not_the_recipient_when_the_report_or_the_original_gives_an_address():
    """"Final-Recipient: LOCAL; carol" names a mailbox, not the address we sent to: an rfc822
    Original-Recipient wins, else the original's single To; with neither the name is kept."""
    local = _dsn().replace(b"Action:", b"Final-Recipient: LOCAL; carol\nAction:")
    with_original = local.replace(b"Action:", b"Original-Recipient: rfc822; carol@example.com\nAction:")
    assert [v.address for v in parse_message(with_original).recipients] == ["carol@example.com"]
    enclosed = local.replace(b"\n--b--\n", b"\n--b\nContent-Type: text/rfc822-headers\n\n"
                             b"From: news@example.org\nTo: c.smith@example.com\nSubject: hi\n\n--b--\n")
    assert [(v.address, v.recovered_by) for v in parse_message(enclosed).recipients] == [
        ("c.smith@example.com", "original-to")]
    assert [v.address for v in parse_message(local).recipients] == ["carol"]


def test_delayed_and_delivered_actions():
    assert parse_message(_dsn("a@example.com", "delivered", "2.0.0")).kind == "delivered"
    r = parse_message(_dsn("a@example.com", "delayed", "4.2.2"))
    assert r.kind == "dsn" and r.recipients[0].reason == "mailboxfull" and not r.recipients[0].hard


def test_redacted_arf_without_clue_yields_one_empty_address():
    raw = (b"From: fbl@isp.example.com\nSubject: report\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/report; report-type=feedback-report; boundary=z\n\n"
           b"--z\nContent-Type: text/plain\n\nabuse\n--z\nContent-Type: message/feedback-report\n\n"
           b"Feedback-Type: abuse\nUser-Agent: X/1\nVersion: 1\nOriginal-Rcpt-To: redacted\n"
           b"--z\nContent-Type: message/rfc822\n\nMessage-ID: <m1@example.net>\nTo: undisclosed-recipients:;\n\nhi\n--z--\n")
    r = parse_message(raw)
    assert r.kind == "arf" and len(r.recipients) == 1
    v = r.recipients[0]
    assert (v.address, v.feedback_type, v.original_message_id) == ("", "abuse", "<m1@example.net>")


def test_arf_recovers_the_recipient_from_our_stamp():
    v = parse_message((FIXTURES / "arf" / "redacted-with-stamp.eml").read_bytes()).recipients[0]
    assert (v.address, v.recovered_by, v.list_id, v.job_id) == ("ivy@example.com", "stamp", "news.example.net", "job-7")
    assert TRACKING_HEADER == "X-Bounceproc-Ref"


def test_not_a_bounce_and_autoreply():
    assert parse_message((FIXTURES / "not-a-bounce" / "newsletter.eml").read_bytes()).recipients == ()
    r = parse_message((FIXTURES / "autoreply" / "out-of-office.eml").read_bytes())
    assert r.kind == "autoreply" and r.recipients[0].reason == "vacation"


def test_empty_and_garbage_inputs_give_unknown_with_a_note():
    assert parse_message(b"").kind == "unknown"
    r = parse_message(b"\x00\xff" * 100)
    assert r.kind in ("unknown", "not-bounce") and r.note


def test_redacted_addresses_are_recognised():
    from bounceproc.domain.parse.message import is_redacted
    assert all(is_redacted(a) for a in ("redacted@example.com", "xxxxxxxx@example.com", "****@example.com",
                                        "[REDACTED]@example.com", "redacted"))
    assert not any(is_redacted(a) for a in ("alice@example.com", "xavier@example.com", "x@example.com"))


def test_autoreply_needs_a_sign_of_automation_for_ordinary_subjects():
    from bounceproc.domain.parse.autoreply import autoreply_reason
    assert autoreply_reason({"subject": ["Automatic reply: March news"]})
    assert autoreply_reason({"subject": ["Respuesta automática: hola"]})
    for subject in ("自动回复: 你好", "自動回覆: hi", "Автоответ: привет", "Автоматический ответ: привет",
                    "Automatyczna odpowiedź: cześć", "Resposta automática: olá", "Autosvar: hej",
                    "Odpowiedź automatyczna: cześć", "Automatická odpověď: ahoj", "Răspuns automat: salut",
                    "Automatikus válasz: szia", "Αυτόματη απάντηση: γεια", "자동 회신: 안녕하세요"):
        assert autoreply_reason({"subject": [subject]}), subject
    assert autoreply_reason({"subject": ["Away until May 5"], "auto-submitted": ["auto-replied"]})
    assert autoreply_reason({"subject": ["Abwesend bis 5. Mai"], "auto-submitted": ["auto-replied"]})
    assert not autoreply_reason({"subject": ["Abwesend bis 5. Mai"]})
    assert not autoreply_reason({"subject": ["Vacation photos"]})
    assert not autoreply_reason({"subject": ["Undelivered Mail Returned to Sender"], "auto-submitted": ["auto-replied"]})
    assert autoreply_reason({"subject": ["AW: Abwesenheitsnotiz"]})          # an auto-responder answers
    assert not autoreply_reason({"subject": ["FW: Automatic reply: March news"]})   # a person forwards one


def test_rfc3834_auto_replied_is_an_autoreply_whatever_the_subject_but_a_bounce_stays_a_bounce():
    reply = parse_message(b"From: Ann <ann@example.net>\nTo: news@example.org\nSubject: Re: March news\n"
                          b"Auto-Submitted: auto-replied\n\nThanks for your mail, I will read it when I can.\n")
    assert reply.kind == "autoreply" and reply.recipients[0].address == "ann@example.net"
    bounce = parse_message(b"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nTo: news@example.org\n"
                           b"Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied\n\n"
                           b"This message was created automatically by mail delivery software.\n\n"
                           b"A message that you sent could not be delivered to one or more of its\n"
                           b"recipients. This is a permanent error. The following address(es) failed:\n\n"
                           b"  bob@example.net\n    Unrouteable address\n")
    assert bounce.kind == "dsn" and bounce.recipients[0].address == "bob@example.net"


def test_a_delayed_report_is_never_hard_whatever_its_code():
    raw = (b"From: MAILER-DAEMON@mx.example.net\nTo: bounce@example.org\nSubject: Delivery delayed\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nStill trying.\n\n--b\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; ann@example.com\nAction: %s\n"
           b"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n--b--\n")
    delayed = parse_message(raw % b"delayed").recipients[0]
    assert (delayed.reason, delayed.hard, delayed.action) == ("userunknown", False, "delayed")
    assert parse_message(raw % b"failed").recipients[0].hard


def _mdn(disposition: str, text: str, auto_submitted: str = "") -> bytes:
    head = "From: MAILER-DAEMON@mx.example.net\nTo: news@example.org\nSubject: Re: March news\n"
    head += f"Auto-Submitted: {auto_submitted}\n" if auto_submitted else ""
    return (head + "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification; "
            "boundary=m\n\n--m\nContent-Type: text/plain\n\n" + text + "\n\n--m\n"
            "Content-Type: message/disposition-notification\n\nReporting-UA: mx.example.net; Dovecot\n"
            "Final-Recipient: rfc822; ann@example.net\nDisposition: " + disposition + "\n--m--\n").encode()


def test_a_sieve_reject_mdn_is_the_recipients_filter_and_a_read_receipt_is_nothing():
    reject = parse_message(_mdn("automatic-action/MDN-sent-automatically; deleted",
                                "Your message to <ann@example.net> was automatically rejected:\nNo thanks.",
                                "auto-replied (rejected)"))
    v = reject.recipients[0]
    assert (reject.kind, v.address, v.reason, v.hard, v.rule) == ("dsn", "ann@example.net", "filtered", False,
                                                                  "mdn-sieve-reject")
    # The RFC 5429 field alone is enough: the text need not say "rejected".
    assert parse_message(_mdn("automatic-action/MDN-sent-automatically; deleted", "Not wanted.",
                              "auto-replied (rejected)")).recipients[0].reason == "filtered"
    # Deleted without being read, displayed, or sent by hand: not a rejection, not a bounce.
    for disposition, text in (("automatic-action/MDN-sent-automatically; deleted", "Your message was deleted "
                               "without being read."),
                              ("manual-action/MDN-sent-manually; displayed", "Your message was displayed."),
                              ("manual-action/MDN-sent-manually; deleted", "Rejected by hand.")):
        assert parse_message(_mdn(disposition, text)).kind == "not-bounce", disposition


def test_redacted_arf_recovers_the_recipient_from_a_verp_mail_from_not_the_fbl_envelope():
    raw = (b"From: fbl@isp.example.com\nSubject: report\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/report; report-type=feedback-report; boundary=z\n\n"
           b"--z\nContent-Type: message/feedback-report\n\n"
           b"Feedback-Type: abuse\nUser-Agent: X/1\nVersion: 1\nOriginal-Rcpt-To: xxxxxxxx@example.org\n"
           b"Original-Mail-From: <bounces+nina=example.org@bounce.example.net>\n--z--\n")
    v = parse_message(raw, envelope_to=["fbl+isp=example.com@example.net"]).recipients[0]
    assert (v.address, v.recovered_by) == ("nina@example.org", "verp")


def test_an_address_written_as_display_name_and_address_is_one_recipient():
    from bounceproc.domain.parse.legacy import sections
    text = ("A message that you sent contained recipient addresses that were incorrectly constructed:\n"
            "  amy@example.com <bob@example.net>: malformed address: <bob@example.net> may not follow amy@example.com\n")
    _pre, secs = sections(text, set())
    assert [a for a, _ in secs] == ["amy@example.com"]


def test_a_permanent_section_under_a_deferred_subject_is_a_failure():
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\nTo: s@example.org\n"
           b"Subject: Returned mail: Deferred: Connection timed out with mx.example.com\n\n"
           b"   ----- Transcript of session follows -----\n"
           b"While talking to mx.example.com:\n>>> MAIL From:<s@example.org>\n<<< 550 Insecure mail relay\n"
           b"554 <u@example.com>... Remote protocol error\n")
    v = parse_message(raw).recipients[0]
    assert (v.address, v.reason, v.action) == ("u@example.com", "norelaying", "failed")
    assert v.status.startswith("5.")


def test_a_report_with_neither_recipient_nor_cause_is_undefined():
    raw = (b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\nTo: s@example.org\n"
           b"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
           b"be delivered to one or more recipients.\n\n\t--- Delivery report unavailable ---\n"
           b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n--b--\n")
    r = parse_message(raw)
    assert [(v.address, v.reason, v.status) for v in r.recipients] == [("", "undefined", "5.0.900")]


# --- issue 13, item 14: limits that real reports reach ----------------------------------------

def _big_dsn(n: int, header_bytes: int = 0) -> bytes:
    rcpts = "".join(f"\r\nFinal-Recipient: rfc822; user{i}@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                    f"Diagnostic-Code: smtp; 550 5.1.1 user{i}@example.com: no such user\r\n" for i in range(n))
    recv = "".join(f"Received: from relay{i}.example.net (relay{i}.example.net [192.0.2.{i % 250}]) by "
                   f"mx.example.com with ESMTP id abc{i}\r\n" for i in range(header_bytes // 110 + 1)) if header_bytes else ""
    return (recv + "From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@bounces.example.net\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n\r\n'
            "--BB\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--BB\r\n"
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n"
            + rcpts + "\r\n--BB--\r\n").encode()



def test_a_dsn_with_600_recipients_reports_all_of_them():
    r = parse_message(_big_dsn(600))
    assert r.kind == "dsn" and len(r.recipients) == 600 and r.cuts == ()


def test_a_text_notice_with_150_recipients_reports_all_of_them():
    r = parse_message(text_notice(150))
    assert r.kind == "dsn" and len(r.recipients) == 150 and r.cuts == ()


def test_a_bounce_with_an_outer_header_over_1_mb_is_read():
    raw = _big_dsn(3, header_bytes=1_200_000)
    assert len(raw) > 1_200_000
    r = parse_message(raw)
    assert r.kind == "dsn" and len(r.recipients) == 3 and r.cuts == ()


def test_what_a_limit_cuts_is_reported():
    from bounceproc.domain.parse import dsn
    r = parse_message(_big_dsn(dsn.MAX_RECIPIENTS + 5))
    assert len(r.recipients) == dsn.MAX_RECIPIENTS
    assert len(r.cuts) == 1 and "not read" in r.cuts[0]


def test_labelled_reply_is_the_diagnostic_and_the_section_is_still_classified():
    from bounceproc.domain.parse import legacy
    assert legacy.labelled_reply("a@example.com\nRemote Server returned '550 5.1.1 User unknown'\n") == \
        "550 5.1.1 User unknown"
    assert legacy.labelled_reply("  Reason: over quota\n  Diagnostic code: smtp;552 5.2.2 Full\n") == "552 5.2.2 Full"
    assert legacy.labelled_reply("Reason: Remote host said: 550 Invalid Recipient\n") == "550 Invalid Recipient"
    assert legacy.labelled_reply("because:\n\n  User x not listed\n") == "User x not listed"
    assert legacy.labelled_reply("  a@example.com\n    SMTP error from remote mail server after RCPT TO\n") == ""


def test_cause_stated_before_the_recipient_list_belongs_to_each_listed_recipient():
    from bounceproc.domain.parse import legacy
    text = ("Could not be delivered because of\n\n550 5.1.1 User unknown\n\n"
            "The following recipients were affected:\n\n    a@example.com\n    b@example.org\n\n"
            "Additional Information\n======================\nRemote-MTA: <192.0.2.1>\n")
    assert legacy.causes_before_lists(text) == {"a@example.com": "550 5.1.1 User unknown",
                                                "b@example.org": "550 5.1.1 User unknown"}
    assert legacy.causes_before_lists("a@example.com: 550 User unknown\n") == {}


def test_quoted_header_fields_neither_cut_the_notice_nor_name_recipients():
    from bounceproc.domain.parse import legacy
    text = ("This report relates to a message you sent with the following header fields:\n\n"
            "  Message-id: <1@example.net>\n  To: a@example.com, b@example.com\n\n"
            "Your message cannot be delivered to the following recipients:\n\n"
            "  Recipient address: b@example.com\n  Reason: over quota\n")
    assert legacy.notification_text(text) == text
    _pre, secs = legacy.sections(legacy.without_quoted_headers(text), set())
    assert [a for a, _s in secs] == ["b@example.com"]


def test_prose_wrapped_at_another_width_does_not_cut_the_notice():
    """A line that goes on with the sentence above ("... from the attached\nreturned message.") or
    whose sentence runs on below ("The original message was\nreceived at ...") is prose; a
    heading line where the original starts still cuts."""
    from bounceproc.domain.parse import legacy
    text = ("If you do so, please include this problem report. You can delete your own text from the attached\n"
            "returned message.\n\nThe original message was\nreceived at Fri, 10 Dec 2010 from a.example.org\n\n"
            "<a@example.com>: host mx.example.com said: 550 5.1.1 User unknown\n\n")
    assert legacy.notification_text(text) == text
    for cut in ("Returned message\n", "--- The original message was:\n", "Original message follows.\n",
                "Received: from mx.example.org\n"):
        assert legacy.notification_text(text + cut + "\nFrom: s@example.org\n") == text


def test_a_subject_in_encoded_words_reads_as_the_same_subject():
    import base64
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>\nTo: s@example.org\n"
           b"Subject: %s\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
           b" boundary=b1\n\n--b1\nContent-Type: text/plain\n\nThe message could not be delivered.\n\n"
           b"--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
           b"Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 4.0.0\n\n--b1--\n")
    subject = b"Warning: could not send message for past 4 hours"
    words = b"=?UTF-8?B?" + base64.b64encode(subject[:30]) + b"?= =?UTF-8?B?" + base64.b64encode(subject[30:]) + b"?="
    plain, encoded = parse_message(raw % subject), parse_message(raw % words)
    assert [(v.reason, v.hard) for v in encoded.recipients] == [(v.reason, v.hard) for v in plain.recipients]


def test_an_address_named_again_gets_each_stretch_and_a_bare_list_shares_the_cause_after_it():
    from bounceproc.domain.parse import legacy
    text = ("Delivery has failed to these recipients or groups:\n\na@example.com\nNot found.\n\n"
            "b@example.org\nMailbox full.\n\nDiagnostic information for administrators:\n\n"
            "a@example.com\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n\n"
            "b@example.org\nmx.example.org #552 5.2.2 Quota exceeded ##\n")
    _pre, secs = legacy.sections(text, set())
    got = dict(secs)
    assert "5.1.1" in got["a@example.com"] and "5.2.2" not in got["a@example.com"]
    assert "5.2.2" in got["b@example.org"] and "5.1.1" not in got["b@example.org"]
    assert legacy.labelled_reply(got["b@example.org"]) == "552 5.2.2 Quota exceeded"
    text = "was not delivered to:\n\n  a@example.org\n  b@example.org\n\nbecause:\n\n  User not listed\n"
    _pre, secs = legacy.sections(text, set())
    assert [legacy.labelled_reply(s) for _a, s in secs] == ["User not listed", "User not listed"]


def test_labelled_reply_takes_a_multiline_reply_whole_and_an_opensmtpd_line_alone():
    from bounceproc.domain.parse import legacy
    section = ("<a@example.com>:\n192.0.2.1 failed after I sent the message.\n"
               "Remote host said: 550-5.7.26 Unauthenticated email is not accepted due to\n"
               "550-5.7.26 the domain's DMARC policy.\n550 5.7.26 See the help page\nGiving up on 192.0.2.1.\n")
    assert legacy.labelled_reply(section) == ("550-5.7.26 Unauthenticated email is not accepted due to "
                                              "550-5.7.26 the domain's DMARC policy. 550 5.7.26 See the help page")
    assert legacy.labelled_reply("a@example.org: Network error on destination MXs\n\nPlease note ...\n") == \
        "Network error on destination MXs"
    # Postfix's "<addr>: host ... said:" continues on indented lines: not a one-line reply.
    assert legacy.labelled_reply("<a@example.com>: host mx.example.com[192.0.2.6] said: 550 5.1.1\n"
                                 "    <a@example.com>: User unknown (in reply to RCPT TO command)\n") == ""


def test_a_recipient_whose_wording_no_rule_knows_is_kept_when_the_original_was_addressed_to_it():
    """Two recipients, one refusal in known words and one in words no rule knows: the second is a
    recipient of the returned original, so it is reported (onhold), not dropped as a quoted contact."""
    raw = ("Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net\nTo: news@example.org\nSubject: Undelivered mail\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n"
           "Your message could not be delivered to the following recipients:\n\n"
           "ann@example.net\n    550 5.1.1 User unknown\n\n"
           "bob@example.net\n    Zustellung abgelehnt wegen Regel 17\n\n"
           "Questions? Write to helpdesk@example.net.\n\n"
           "--B\nContent-Type: message/rfc822\n\nFrom: news@example.org\nTo: ann@example.net, bob@example.net\n"
           "Subject: hi\n\nhello\n--B--\n").encode()
    got = {r.address: r.reason for r in parse_message(raw).recipients}
    assert got.get("ann@example.net") == "userunknown"
    assert "bob@example.net" in got                      # the original was addressed to bob
    assert "helpdesk@example.net" not in got             # a contact address quoted in the text


def test_exchange_undeliverable_subjects_in_other_languages_are_bounces():
    for subject in ("Non recapitabile: ciao", "Onbestelbaar: hallo", "Nie można dostarczyć: x", "Olevererbart: hej",
                    "Teslim edilemedi: x", "Nedoručitelné: x", "Não é possível entregar: x"):
        raw = (f"Return-Path: <>\nFrom: postmaster@mail.example.net\nTo: news@example.org\nSubject: {subject}\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
               "ann@example.net\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n").encode()
        r = parse_message(raw)
        assert r.kind == "dsn" and r.recipients[0].address == "ann@example.net", subject


def test_other_notice_subjects_are_bounces_with_the_remote_reply():
    for subject in ("Failed mail", "Unsuccessful delivery", "Your message could not be sent", "Could not send message",
                    "Fehlgeschlagene Zustellung", "Devolución de correo", "Kézbesíthetetlen üzenet", "Levering mislukt",
                    "Toimitus epäonnistui", "配信不能", "전달 실패", "Impossibile recapitare il messaggio",
                    "Mancato recapito", "Error de entrega", "Falha na entrega", "Non distribuable", "Zustellfehler",
                    "Bezorging mislukt"):
        raw = (f"Return-Path: <>\nFrom: postmaster@mail.example.net\nTo: news@example.org\nSubject: {subject}\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
               "ann@example.net\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n").encode()
        r = parse_message(raw)
        assert r.kind == "dsn" and r.recipients[0].address == "ann@example.net", subject
    # a person's message with such a subject is not a bounce
    human = ("Return-Path: <ann@example.net>\nFrom: Ann <ann@example.net>\nTo: news@example.org\n"
             "Subject: Could not send message\n\n"
             "Hi, my message to you could not be sent yesterday, resending.\n").encode()
    assert parse_message(human).kind == "not-bounce"


def test_a_daemon_notice_saying_could_not_be_delivered_in_other_languages_is_a_bounce():
    for body in ("Ihre Nachricht konnte nicht zugestellt werden.", "Votre message n'a pas pu être remis.",
                 "Su mensaje no pudo ser entregado.", "A mensagem não pôde ser entregue.",
                 "Non è stato possibile recapitare il messaggio.", "Uw bericht kon niet worden afgeleverd.",
                 "Meddelandet kunde inte levereras.", "Wiadomość nie mogła zostać dostarczona.",
                 "Mesajınız iletilemedi.", "메일을 전송할 수 없습니다."):
        raw = _daemon_notice("Notice", body + "\n\nann@example.net\n550 5.1.1 <ann@example.net>: Recipient address rejected\n")
        r = parse_message(raw)
        assert r.kind == "dsn" and r.recipients[0].address == "ann@example.net", body


def test_the_returned_original_heading_in_chinese_korean_japanese_ends_the_notice():
    from bounceproc.domain.parse import legacy
    zh = "收件人: a@example.org\n退信原因: 该用户不存在\n\n被退回邮件 / Original message\n收件人: b@example.org\n"
    assert legacy.notification_text(zh) == "收件人: a@example.org\n退信原因: 该用户不存在\n\n"
    ko = "받는 사람: a@example.org\n\n원본 메일 정보\nTo: b@example.org\n"
    assert legacy.notification_text(ko) == "받는 사람: a@example.org\n\n"
    ja = "a@example.org\n#550 5.2.2 mailbox full ##\n元のメッセージ ヘッダー:\nTo: b@example.org\n"
    assert legacy.notification_text(ja) == "a@example.org\n#550 5.2.2 mailbox full ##\n"
    # 原因 ("reason") starts like 原始邮件 but is the notice's own line
    assert legacy.notification_text("a@example.org\n原因: 用户不存在\n") == "a@example.org\n原因: 用户不存在\n"


def _daemon_notice(subject: str, body: str) -> bytes:
    from email.header import Header
    return ("From: Mail Delivery System <mailer-daemon@mail.example.com>\nTo: news@example.net\n"
            f"Subject: {Header(subject, 'utf-8').encode()}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            + body).encode()


def test_italian_czech_and_korean_notices_are_bounces_with_their_reasons():
    it = parse_message(_daemon_notice("Messaggio non recapitato", "Il messaggio non è stato recapitato:\n\n"
                                      "a@example.org\nMotivo: casella di posta piena\n"))
    assert it.kind == "dsn" and [(v.address, v.reason) for v in it.recipients] == [("a@example.org", "mailboxfull")]
    cs = parse_message(_daemon_notice("Oznámení", "Vaše zpráva nemohla být doručena.\n\nAdresát: b@example.org\n"
                                      "Důvod: Adresa příjemce neexistuje.\n"))
    assert cs.kind == "dsn" and [(v.address, v.reason, v.hard) for v in cs.recipients] == [
        ("b@example.org", "userunknown", True)]
    ko = parse_message(_daemon_notice("메일 발송 실패", "메일이 전달되지 않았습니다.\n\n받는 사람: c@example.org\n"
                                      "실패 사유: 받는 사람의 메일함 용량이 초과되었습니다.\n\n받는 사람: d@example.org\n"
                                      "실패 사유: 계정이 휴면 상태로 정지되었습니다.\n"))
    assert ko.kind == "dsn" and [(v.address, v.reason) for v in ko.recipients] == [
        ("c@example.org", "mailboxfull"), ("d@example.org", "suspend")]


def test_intermail_cause_above_the_recipient_list_belongs_to_each_address():
    from bounceproc.domain.parse import legacy
    text = ("This Message was undeliverable due to the following reason:\n\n"
            "Your message was not delivered within 5 days:\nServer 192.0.2.1 is not responding.\n\n"
            "The following recipients did not receive this message:\n\n     <a@example.com>\n"
            "     <b@example.org>\n\nPlease reply to Postmaster@mail.example.com\n")
    cause = "Your message was not delivered within 5 days:\nServer 192.0.2.1 is not responding."
    assert legacy.causes_before_lists(text) == {"a@example.com": cause, "b@example.org": cause}
    # the per-recipient layout of the same family ("Recipient:" / "Reason:" pairs) has no such list
    pairs = ("This Message was undeliverable due to the following reason:\n\nEach of the following recipients "
             "was rejected by a remote mail server.\n\n    Recipient: <a@example.com>\n    Reason:    550 No such user\n")
    assert legacy.causes_before_lists(pairs) == {}


def test_message_global_headers_is_the_returned_original():
    raw = ("From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\nTo: s@example.net\n"
           "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
           "--b\nContent-Type: text/plain\n\n<a@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1 "
           "User unknown (in reply to RCPT TO command)\n\n"
           "--b\nContent-Type: message/global-delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
           "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\n"
           "--b\nContent-Type: message/global-headers\n\nFrom: Jörg <s@example.net>\n"
           "To: a@example.org, Grüße <c@example.com>\nMessage-ID: <m-1@example.net>\n\n--b--\n").encode()
    report = parse_message(raw)
    assert [(v.address, v.reason, v.original_message_id) for v in report.recipients] == [
        ("a@example.org", "userunknown", "<m-1@example.net>")]


def test_sendmail_warning_banner_is_not_where_the_original_starts():
    from bounceproc.domain.parse import legacy
    text = ("The original message was received at Thu, 3 Dec 2026 10:00:00 GMT\n\n"
            "   **********************************************\n"
            "   **      THIS IS A WARNING MESSAGE ONLY      **\n"
            "   **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n"
            "   **********************************************\n\n"
            "The following addresses had transient non-fatal errors\n<ann@example.net>\n")
    assert legacy.notification_text(text) == text
    assert legacy.notification_text("x\n----- Your message follows -----\nFrom: a\n") == "x\n"


def test_a_mail_daemons_notice_is_detected_by_its_subject_in_many_wordings():
    body = "\n\nann@example.com\n    550 5.1.1 Mailbox does not exist\n"   # no bounce wording in the text
    head = "From: Postmaster <postmaster@mx.example.net>\nTo: news@example.org\nContent-Type: text/plain; charset=utf-8\n"
    for subject in ("Could not deliver message", "Notification of failure to deliver", "Error delivering mail",
                    "Problem delivering message", "Notificación de estado de entrega (Error)", "Ошибка доставки",
                    "Niedostarczalne: test", "Oznámenie o nedoručiteľnosti"):
        r = parse_message((head + f"Subject: {subject}" + body).encode())
        assert (r.kind, r.recipients[0].address, r.recipients[0].reason) == ("dsn", "ann@example.com", "userunknown"), subject
    assert parse_message((head + "Subject: Re: delivery of your order" + body).encode()).kind == "not-bounce"


def test_exchanges_and_other_mail_systems_senders_are_mail_daemons():
    body = "\n\nYour message did not reach some or all of the intended recipients.\n\n" \
           "ann@example.com\n    550 5.1.1 Mailbox does not exist\n"
    for sender in ("Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>",
                   "Mail System <mail@mx.example.net>", "Courier mail server at mx.example.net <@>"):
        raw = f"From: {sender}\nTo: news@example.org\nSubject: Message status: news\n{body}".encode()
        r = parse_message(raw)
        assert (r.kind, r.recipients[0].address, r.recipients[0].reason) == ("dsn", "ann@example.com", "userunknown"), sender


def test_an_mtas_opening_line_is_bounce_wording():
    head = "From: MAILER-DAEMON@mx.example.net\nTo: news@example.org\nSubject: Notice\n" \
           "Content-Type: text/plain; charset=utf-8\n\n"
    for opening in ("Hi. This is the qmail-send program at mx.example.net.",
                    "This message was created automatically by mail delivery software.",
                    "This is the mail system at host mx.example.net.",
                    "The original message was received at Mon, 4 May 2026 10:00:00 +0200",
                    "The following recipients did not receive your message:",
                    "Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.",
                    "Su mensaje no llegó a algunos o todos los destinatarios.",
                    "Votre message n'est pas parvenu à certains ou à l'ensemble de ses destinataires."):
        r = parse_message((head + opening + "\n\n<ann@example.com>:\n550 5.1.1 Mailbox does not exist\n").encode())
        assert (r.kind, r.recipients[0].address, r.recipients[0].reason) == ("dsn", "ann@example.com", "userunknown"), opening


def test_an_alias_is_recorded_as_the_address_we_sent_to_but_a_group_keeps_its_members():
    from bounceproc.domain.parse import legacy
    secs = [("staff7@mail.example.jp", "<staff7@mail.example.jp> (expanded from <contact@example.jp>): 550 5.1.1"),
            ("kana@example.org", "<kana@example.org> (expanded from <team@example.jp>): 552 full"),
            ("ren@example.org", "<ren@example.org> (expanded from <team@example.jp>): 550 5.1.1"),
            ("bo@example.org", "<bo@example.org>\n    (reason: 550 5.1.1 User unknown)\n"
                               "    (expanded from: <bo.old@example.jp>)\n"),
            ("al@example.org", "<al@example.org> (expanded from <ann@example.com>): 550"),
            ("ann@example.com", "<ann@example.com>: 550 5.1.1")]
    assert [a for a, _ in legacy.as_sent(secs)] == [
        "contact@example.jp", "kana@example.org", "ren@example.org", "bo.old@example.jp",
        "al@example.org", "ann@example.com"]       # (ann is named as a recipient of its own)


_NOTICE_WORDS = ["Returned to sender", "RETURNING MESSAGE TO THE SENDER", "sent back to sender", "İ", "ß", "K",
                 "with the following header fields", "Mail System Error - Returned Mail", "Σ", " ", "x", "\n",
                 "The reasons given by the server are included to help you determine why each recipient was rejected"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_NOTICE_WORDS), max_size=12))
def test_stock_phrases_removed_as_a_case_insensitive_substitution_would(words):
    # without_stock_phrases searches the lowercased text (faster than re.I) and cuts the original
    # at the same places; letters whose lower case is longer ("İ") take the re.I path.
    from bounceproc.domain.parse.message import _STOCK_PHRASES, without_stock_phrases
    text = "".join(words)
    assert without_stock_phrases(text) == _STOCK_PHRASES.sub(" ", text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000ab", max_size=40), st.integers(1, 12))
def test_one_line_folds_whitespace_as_the_regex_did(text, limit):
    import re

    from bounceproc.domain.parse.message import _one_line
    assert _one_line(text, limit) == re.sub(r"\s+", " ", text).strip()[:limit]
