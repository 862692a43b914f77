"""`bounceproc classify` and `bounceproc rules check` as a user runs them."""
from __future__ import annotations

import json
from pathlib import Path

from bounceproc.entrypoints.cli.main import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_json_lines_with_exact_fields(capsys):
    f = FIXTURES / "dsn" / "postfix-user-unknown.eml"
    assert main(["classify", "--json", str(f)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert set(line) == {"file", "kind", "recipients"} and line["kind"] == "dsn"
    assert set(line["recipients"][0]) == {"address", "status", "reply_code", "diagnostic", "remote_mta", "reason",
                                          "category", "hard", "feedback_type", "rule"}
    assert line["recipients"][0]["reason"] == "userunknown"


def test_explain_adds_parser_and_explanation(capsys):
    assert main(["classify", "--json", "--explain", str(FIXTURES / "dsn" / "qmail-host-unknown.eml")]) == 0
    r = json.loads(capsys.readouterr().out)["recipients"][0]
    assert r["parser"] == "legacy" and "status-x.1.2-first" in r["explain"]


def test_unreadable_file_is_reported_and_the_run_goes_on(capsys, tmp_path):
    good = FIXTURES / "arf" / "abuse-report.eml"
    assert main(["classify", "--json", str(tmp_path / "missing.eml"), str(good)]) == 1
    out = capsys.readouterr()
    assert "missing.eml" in out.err and json.loads(out.out)["kind"] == "arf"


def test_stdin_and_table(capsys, monkeypatch):
    import io
    import sys
    raw = (FIXTURES / "dsn" / "exim-mailbox-full.eml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert main(["classify", "-"]) == 0
    out = capsys.readouterr().out
    assert "mailboxfull" in out and "bob@example.com" in out


def test_rules_check(capsys, tmp_path):
    ok = tmp_path / "ok.toml"
    ok.write_text('[[rule]]\nid = "a"\ndiagnostic = \'gone away\'\nreason = "hasmoved"\n', encoding="utf-8")
    assert main(["rules", "check", str(ok)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "a"\nstatus = "5.1.1"\nreason = "nope"\n'
                   '[[rule]]\nid = "b"\nstatus = "5.1.1"\nreason = "userunknown"\n', encoding="utf-8")
    assert main(["rules", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "unknown reason 'nope'" in out and "b: unreachable, shadowed by earlier rule a" in out
