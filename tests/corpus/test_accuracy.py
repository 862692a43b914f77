"""Accuracy on the labelled development corpus (../shared/corpus, read in place), scored with the
project's own scorer (../shared/tools/score.py) - also with every message fed in CRLF form.

The issue's targets are detection >= 0.98, reason >= 0.95, hard/soft >= 0.98, status >= 0.95 and no
false positive. The targets met (detection, no false positive) are plain assertions; until the
engine reaches the others, test_meets_issue_targets is an expected failure that reports the
figures; test_no_regression fails if any metric drops below what was measured when this test
was last updated (FLOOR). Skips when the corpus is absent.

Measured 2026-11-25 (LF and CRLF alike): detection 0.997, reason 0.910, hard/soft 0.955,
status 0.939 (0.990 leaving out the labels' invented x.0.9xx / x.9.x codes), no false positive.
Most of the remaining reason misses are labels that disagree with the message's own words or
code, or with another corpus file worded identically (see docs/accuracy.md).
"""
from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

import pytest

from bounceproc.domain.parse.message import parse_message

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SCORER = SHARED / "tools" / "score.py"
MET_TARGETS = {"detection_rate": 0.98}
TARGETS = {"reason_accuracy": 0.95, "hard_soft_agreement": 0.98, "status_exact": 0.95}
FLOOR = {"detection_rate": 0.997, "reason_accuracy": 0.909, "hard_soft_agreement": 0.954, "status_exact": 0.938}

pytestmark = pytest.mark.skipif(not (CORPUS / "labels.json").is_file() or not SCORER.is_file(),
                                reason=f"labelled corpus or scorer absent under {SHARED}")


def _scorer():
    spec = importlib.util.spec_from_file_location("bounceproc_corpus_score", SCORER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _metrics(crlf: bool) -> dict[str, float]:
    score = _scorer()
    labels = score.load_labels(str(CORPUS / "labels.json"))
    not_files = sorted(os.path.relpath(p, CORPUS) for p in glob.glob(str(CORPUS / "maildir" / "not" / "*.eml")))
    preds = {}
    for rel in sorted(labels) + not_files:
        raw = (CORPUS / rel).read_bytes()
        if crlf:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        preds[rel] = [{"address": v.address, "status": v.status, "reason": v.reason, "hard": v.hard,
                       "feedback_type": v.feedback_type} for v in parse_message(raw).recipients]
    ov, _fam, _pr, _conf, _nonb, fp, _mism = score.score(labels, preds, str(CORPUS), not_files)
    return {"detection_rate": ov.r(ov.detected, ov.files), "reason_accuracy": ov.r(ov.reason, ov.recips),
            "hard_soft_agreement": ov.r(ov.hard, ov.recips), "status_exact": ov.r(ov.status, ov.recips),
            "false_positives": fp["with_output"]}


@pytest.fixture(scope="module", params=[False, True], ids=["lf", "crlf"])
def metrics(request):
    return _metrics(request.param)


def test_no_false_positive_on_non_bounces(metrics):
    assert metrics["false_positives"] == 0


def test_meets_the_issue_targets_already_reached(metrics):
    short = {k: round(metrics[k], 3) for k, target in MET_TARGETS.items() if metrics[k] < target}
    assert short == {}, f"below the issue targets {MET_TARGETS}: {short}"


def test_no_regression(metrics):
    low = {k: round(metrics[k], 3) for k, floor in FLOOR.items() if metrics[k] < floor}
    assert low == {}, f"below the measured floor {FLOOR}: {low}"


@pytest.mark.xfail(reason="issue 3 targets not reached yet (see docs/accuracy.md for the figures)",
                   strict=False)
def test_meets_issue_targets(metrics):
    short = {k: round(metrics[k], 3) for k, target in TARGETS.items() if metrics[k] < target}
    assert short == {}, f"below the issue targets {TARGETS}: {short}"
