"""Forwarded reports (forward-as-attachment, digests) are unwrapped and read as if they had
arrived alone; bounces that enclose the original they return are never unwrapped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from forwarding import CLIENTS, digest, wrap

from bounceproc.domain.parse.forwarded import merged, read_reports
from bounceproc.domain.parse.message import parse_message

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _seen(report) -> list[tuple]:
    return [(v.address, v.reason, v.hard, v.status, v.rule) for v in report.recipients]


def _own_reports() -> list[Path]:
    return sorted((FIXTURES / "arf").glob("*.eml")) + sorted((FIXTURES / "dsn").glob("*.eml"))


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("path", _own_reports(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_forwarded_report_reads_as_the_report_itself(path, client):
    raw = path.read_bytes()
    direct = parse_message(raw)
    if direct.kind not in ("dsn", "arf") or not direct.recipients:
        pytest.skip(f"{path.name} is a {direct.kind}, not a report with recipients")
    found = read_reports(wrap(raw, client))
    assert [w.position for w in found] == [1]
    assert found[0].report.kind == direct.kind
    assert _seen(found[0].report) == _seen(direct)
    assert found[0].raw.replace(b"\r\n", b"\n").strip() == raw.replace(b"\r\n", b"\n").strip()


@pytest.mark.parametrize("path", _own_reports(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_report_that_encloses_its_original_is_not_unwrapped(path):
    raw = path.read_bytes()
    found = read_reports(raw)
    assert [w.position for w in found] == [0]
    assert _seen(found[0].report) == _seen(parse_message(raw))


def test_a_digest_of_reports_gives_each_report_in_order():
    paths = [FIXTURES / "arf" / "abuse-report.eml", FIXTURES / "arf" / "microsoft-jmrp.eml",
             FIXTURES / "dsn" / "exim-mailbox-full.eml"]
    raws = [p.read_bytes() for p in paths]
    found = read_reports(digest(raws))
    assert [w.position for w in found] == [1, 2, 3]
    assert [_seen(w.report) for w in found] == [_seen(parse_message(r)) for r in raws]
    whole = merged(found)
    assert "unwrapped 3 forwarded report(s)" in whole.note
    assert len(whole.recipients) == sum(len(w.report.recipients) for w in found)


def test_a_forward_of_a_plain_message_is_not_a_report():
    plain = b"From: a@example.com\nTo: b@example.com\nSubject: hello\nMessage-ID: <p1@example.com>\n\nhi\n"
    found = read_reports(wrap(plain, "gmail"))
    assert [w.position for w in found] == [0]
    assert found[0].report.kind == "not-bounce"


def _corpus_reports(limit: int = 60) -> list[str]:
    labels = CORPUS / "labels.json"
    if not labels.exists():
        return []
    out = [e["file"] for e in json.loads(labels.read_text()) if e.get("family") in ("arf",) or
           e["file"].split("/")[-1].startswith(("arf", "rfc3464"))]
    return out[:limit]


@pytest.mark.parametrize("client", CLIENTS)
def test_corpus_reports_forwarded_by_each_client_read_the_same(client, corpus_dir):
    files = _corpus_reports()
    assert files, "no ARF / RFC 3464 files in the corpus labels"
    compared = 0
    for name in files:
        raw = (corpus_dir / name).read_bytes()
        direct = parse_message(raw)
        if direct.kind not in ("dsn", "arf") or not direct.recipients:
            continue
        found = read_reports(wrap(raw, client))
        assert len(found) == 1 and found[0].position == 1, name
        assert _seen(found[0].report) == _seen(direct), name
        compared += 1
    assert compared >= 10
