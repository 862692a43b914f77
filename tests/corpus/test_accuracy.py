"""Accuracy on the labelled development corpus (../shared/corpus, read in place), scored with the
project's own scorer (../shared/tools/score.py) - also with every message fed in CRLF form.

Issue 12's corpus targets are hard/soft >= 0.97, reason >= 0.92 and no recipient that the corpus
labels soft FOR A SENDER-SIDE REASON called hard. The last is a plain assertion (it holds), as are
detection and no false positive; test_no_regression fails if any metric drops below what was
measured when this test was last updated (FLOOR); the reason and hard/soft targets are not reached
(test_meets_issue_targets, an expected failure that reports the figures). Skips when the corpus
is absent.

Measured 2026-12-06 (LF and CRLF alike): detection 0.997, reason 0.902, hard/soft 0.960,
status 0.944 (reason 0.905 and hard/soft 0.963 until Domino's ISO-2022-JP "not in the Domino
Directory" was decoded and read as the unknown user it is; the corpus labels it onhold), no false positive, no sender-side soft label called hard. The rules follow
reference/wordings.md (receiver-specific meanings with a `receiver` condition) and the precedence
of reference/taxonomy.md where the corpus labels disagree with them; every such disagreement and
its precedence step is in docs/accuracy.md. The remaining gap to the targets is those
disagreements: no rule is written for one corpus file.
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
TARGETS = {"reason_accuracy": 0.92, "hard_soft_agreement": 0.97}
FLOOR = {"detection_rate": 0.997, "reason_accuracy": 0.904, "hard_soft_agreement": 0.962, "status_exact": 0.943}
# taxonomy.md precedence step 1: reasons about our side, never about the address.
SENDER_SIDE = {"blocked", "badreputation", "spamdetected", "policyviolation", "authfailure", "speeding",
               "rejected", "requireptr", "securityerror", "norelaying", "toomanyconn", "virusdetected",
               "contenterror", "failedstarttls", "notcompliantrfc", "syntaxerror", "mesgtoobig"}

pytestmark = pytest.mark.skipif(not (CORPUS / "labels.json").is_file() or not SCORER.is_file(),
                                reason=f"labelled corpus or scorer absent under {SHARED}")


def _scorer():
    spec = importlib.util.spec_from_file_location("bounceproc_corpus_score", SCORER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _predictions(labels, files, crlf: bool) -> dict[str, list[dict]]:
    preds = {}
    for rel in files:
        raw = (CORPUS / rel).read_bytes()
        if crlf:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        preds[rel] = [{"address": v.address, "status": v.status, "reason": v.reason, "hard": v.hard,
                       "feedback_type": v.feedback_type} for v in parse_message(raw).recipients]
    return preds


def _metrics(crlf: bool) -> dict[str, float]:
    score = _scorer()
    labels = score.load_labels(str(CORPUS / "labels.json"))
    not_files = sorted(os.path.relpath(p, CORPUS) for p in glob.glob(str(CORPUS / "maildir" / "not" / "*.eml")))
    preds = _predictions(labels, sorted(labels) + not_files, crlf)
    # Labels carry no address: in a file with soft sender-side labels, the hard verdicts must fit
    # on the other labels (else one of them went to a sender-side recipient).
    sender_side_hard = sorted(
        rel for rel, e in labels.items()
        if any(r["reason"] in SENDER_SIDE and not r["hardbounce"] for r in e["recipients"])
        and sum(p["hard"] for p in preds.get(rel, [])) > sum(
            not (r["reason"] in SENDER_SIDE and not r["hardbounce"]) for r in e["recipients"]))
    ov, _fam, _pr, _conf, _nonb, fp, _mism = score.score(labels, preds, str(CORPUS), not_files)
    return {"detection_rate": ov.r(ov.detected, ov.files), "reason_accuracy": ov.r(ov.reason, ov.recips),
            "hard_soft_agreement": ov.r(ov.hard, ov.recips), "status_exact": ov.r(ov.status, ov.recips),
            "false_positives": fp["with_output"], "sender_side_called_hard": sender_side_hard}


@pytest.fixture(scope="module", params=[False, True], ids=["lf", "crlf"])
def metrics(request):
    return _metrics(request.param)


def test_no_false_positive_on_non_bounces(metrics):
    assert metrics["false_positives"] == 0


def test_no_soft_sender_side_recipient_is_called_hard(metrics):
    assert metrics["sender_side_called_hard"] == []


def test_meets_the_issue_targets_already_reached(metrics):
    short = {k: round(metrics[k], 3) for k, target in MET_TARGETS.items() if metrics[k] < target}
    assert short == {}, f"below the issue targets {MET_TARGETS}: {short}"


def test_no_regression(metrics):
    low = {k: round(metrics[k], 3) for k, floor in FLOOR.items() if metrics[k] < floor}
    assert low == {}, f"below the measured floor {FLOOR}: {low}"


@pytest.mark.xfail(reason="issue 12 reason / hard-soft targets not reached (figures and label disagreements: "
                          "docs/accuracy.md)",
                   strict=False)
def test_meets_issue_targets(metrics):
    short = {k: round(metrics[k], 3) for k, target in TARGETS.items() if metrics[k] < target}
    assert short == {}, f"below the issue targets {TARGETS}: {short}"
