"""A recipient the sending core does not send to because it is suppressed: which scopes apply,
and the accounting record the skip becomes.

Domain layer: pure, stdlib only. In: the suppression rows found for an address
({scope: reason}) and the message's list id. Out: the scope and reason that suppress it (or
None), and the `b` record's status and diagnostic.

Scopes checked for a message: `global`, and `list:<id>` when the message names a list (its
`List-Id` header, or the `l` of our X-Bounceproc-Ref stamp; see list_headers.message_list_id).

The record (documented in docs/sending-core.md, "Closing the loop"): type `b`, dsnStatus
`5.7.1` (delivery not authorized, message refused: we refused it), dsnDiag
`x-bounceproc;suppressed (SCOPE: REASON)`, bounceCat `policy-related` (from 5.7.1, a standard
category every acct consumer knows and none treats as a bad address). `bounceproc pipe` reads
such a row back as a `skipped` event (parse/acct.py), which the policy never acts on: a skip is
not a bounce of the address and must not count toward anything.
"""
from __future__ import annotations

from collections.abc import Mapping

SKIP_STATUS = "5.7.1"
SKIP_DIAG_TYPE = "x-bounceproc"
SKIP_DIAG_PREFIX = f"{SKIP_DIAG_TYPE};suppressed ("


def scopes_for(list_id: str) -> tuple[str, ...]:
    """The suppression scopes that stop a message of this list (global first)."""
    return ("global", f"list:{list_id}") if list_id else ("global",)


def suppressing(found: Mapping[str, str], list_id: str) -> tuple[str, str] | None:
    """(scope, reason) of the suppression that stops this recipient, global first; None if none."""
    for scope in scopes_for(list_id):
        reason = found.get(scope)
        if reason is not None:
            return scope, reason
    return None


def skip_diag(scope: str, reason: str) -> str:
    """`x-bounceproc;suppressed (list:news: unsubscribe)`."""
    return f"{SKIP_DIAG_PREFIX}{scope}: {reason or 'suppressed'})"


def is_skip_diag(diag: str) -> bool:
    return diag.lstrip().lower().startswith(SKIP_DIAG_PREFIX)
