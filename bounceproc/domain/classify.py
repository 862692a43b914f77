"""Classify one failure (status, reply code, diagnostic, remote MTA) into reason/category/hard/rule.

Domain layer: pure, stdlib only.
PLACEHOLDER: the rules-as-data engine replaces this module (issue 3); the signature is the contract.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Classification:
    reason: str
    category: str
    hard: bool
    rule: str


def classify(status: str = "", reply_code: str = "", diagnostic: str = "", remote_mta: str = "") -> Classification:
    s = status.split(" ", 1)[0]
    if s.startswith("5.1.1"):
        return Classification("userunknown", "bad-mailbox", True, "stub-5.1.1")
    if s.startswith("5.1.2"):
        return Classification("hostunknown", "bad-domain", True, "stub-5.1.2")
    if s.startswith(("4.2.2", "5.2.2")):
        return Classification("mailboxfull", "quota-issues", False, "stub-quota")
    return Classification("undefined", "other", False, "stub-none")
