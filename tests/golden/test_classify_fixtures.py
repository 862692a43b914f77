"""Every fixture message of the classifier (fixtures/{dsn,arf,autoreply,not-a-bounce}/*.eml) parses
to the report stored next to it as .json. Review a changed .json like code."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bounceproc.domain.parse.message import parse_message

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KINDS = ("dsn", "arf", "autoreply", "not-a-bounce")
MESSAGES = sorted(p for k in KINDS for p in (FIXTURES / k).glob("*.eml"))


def report_json(raw: bytes) -> dict:
    report = parse_message(raw)
    return {"kind": report.kind, "note": report.note,
            "recipients": [dataclasses.asdict(v) for v in report.recipients]}


@pytest.mark.parametrize("path", MESSAGES, ids=[f"{p.parent.name}/{p.name}" for p in MESSAGES])
def test_fixture_matches_golden(path: Path, update_golden: bool):
    got = report_json(path.read_bytes())
    golden = path.with_suffix(".json")
    if update_golden or not golden.exists():
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        if not update_golden:
            pytest.fail(f"{golden} did not exist; written now, review it")
    assert got == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", MESSAGES, ids=[f"{p.parent.name}/{p.name}" for p in MESSAGES])
def test_fixture_same_with_any_line_ending(path: Path):
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    lf = report_json(raw)
    assert report_json(raw.replace(b"\n", b"\r\n")) == lf
    assert report_json(raw.replace(b"\n", b"\r")) == lf


def test_there_are_fixtures_of_every_kind():
    assert {p.parent.name for p in MESSAGES} == set(KINDS)
