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


def test_expected_errors_are_one_line_naming_the_command_with_its_exit_status(capsys, tmp_path):
    # cli/errors.py prints them for classify, rules check and suppressions import alike.
    missing, rules = tmp_path / "missing.eml", tmp_path / "absent.toml"
    assert main(["classify", "--json", str(missing)]) == 1
    assert capsys.readouterr().err == f"bounceproc classify: {missing}: No such file or directory\n"
    assert main(["classify", "--rules", str(rules), str(missing)]) == 2
    assert capsys.readouterr().err.startswith("bounceproc classify: rules: ")
    assert main(["rules", "check", str(rules)]) == 1
    assert capsys.readouterr().err == f"bounceproc rules check: {rules}: No such file or directory\n"
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rule]\n", encoding="utf-8")
    assert main(["rules", "check", str(broken)]) == 1
    assert capsys.readouterr().err.startswith("bounceproc rules check: ")


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


def _bounce(diag: str, status: str, action: str = "failed") -> bytes:
    return ("From: MAILER-DAEMON@mx.example.net\nTo: s@example.org\nSubject: Undelivered Mail\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
            "--B\nContent-Type: text/plain\n\nfailed\n\n--B\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; u@example.com\n"
            f"Action: {action}\nStatus: {status}\nDiagnostic-Code: smtp; {diag}\n\n--B--\n").encode()


def test_explain_names_the_precedence_step_and_both_sides(capsys, tmp_path):
    f = tmp_path / "b.eml"
    # The status-first rule says hostunknown; the text names a blocklist.
    f.write_bytes(_bounce("553 5.1.2 client host 192.0.2.1 rejected, see our blocklist", "5.1.2"))
    assert main(["classify", "--json", "--explain", str(f)]) == 0
    r = json.loads(capsys.readouterr().out)["recipients"][0]
    assert r["reason"] == "blocked" and not r["hard"]
    assert "precedence 1-sender-side" in r["explain"] and "blocklist" in r["explain"] and "hostunknown" in r["explain"]


def test_explain_names_the_stage_and_the_action_steps(capsys, tmp_path):
    data = tmp_path / "data.eml"
    data.write_bytes(_bounce("550 Unknown user (in reply to end of DATA command)", "5.0.0"))
    expired = tmp_path / "expired.eml"
    expired.write_bytes(_bounce("connect to mx.example.com[192.0.2.1]:25: Connection timed out", "4.4.1"))
    assert main(["classify", "--json", "--explain", str(data), str(expired)]) == 0
    first, second = (json.loads(x)["recipients"][0] for x in capsys.readouterr().out.splitlines())
    assert first["reason"] == "filtered" and "precedence 3-stage" in first["explain"]
    assert second["reason"] == "expired" and "precedence 4-action-failed" in second["explain"]


# What `bounceproc classify FILE` must not import (start-up time, issue 12 item 5): the database,
# web, broker and SMTP stacks, the layers that use them, and (once the rules cache is written) tomllib.
HEAVY = ("sqlalchemy", "fastapi", "starlette", "pydantic", "celery", "kombu", "redis", "psycopg", "aiosmtpd",
         "rich", "bounceproc.app", "bounceproc.storage", "bounceproc.outbound", "bounceproc.mta")


def _modules_of_classify(path: Path, cache_dir: Path) -> set[str]:
    """The modules loaded by a real `python -m bounceproc classify --json FILE` process."""
    import os
    import subprocess
    import sys
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=sys.stderr))\n"
            f"sys.argv = ['bounceproc', 'classify', '--json', {str(path)!r}]\n"
            "runpy.run_module('bounceproc', run_name='__main__')\n")
    env = dict(os.environ, BOUNCEPROC_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recipients"], done.stdout
    return set(done.stderr.split())


def test_classify_imports_only_what_it_needs(tmp_path):
    f = FIXTURES / "dsn" / "postfix-user-unknown.eml"
    first = _modules_of_classify(f, tmp_path)            # writes the rules cache
    second = _modules_of_classify(f, tmp_path)
    for modules in (first, second):
        assert not sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert "tomllib" in first and "tomllib" not in second


def test_packaged_rules_are_read_from_the_cache_only_while_their_text_is_unchanged(tmp_path, monkeypatch):
    from bounceproc.domain import classify
    monkeypatch.setenv("BOUNCEPROC_CACHE_DIR", str(tmp_path))
    fresh = classify._packaged_toml("reasons.toml")
    [cached] = tmp_path.glob("toml-reasons.toml-*.json")
    entry = json.loads(cached.read_text())
    cached.write_text(json.dumps(dict(entry, data={"reason": {}})))
    assert classify._packaged_toml("reasons.toml") == {"reason": {}}      # same text: the cache answers
    cached.write_text(json.dumps({"source": entry["source"] + "\n# edited", "data": {"reason": {}}}))
    assert classify._packaged_toml("reasons.toml") == fresh               # other text: parsed again
    cached.write_text("{not json")
    assert classify._packaged_toml("reasons.toml") == fresh
