"""`<smtp-pattern-list NAME>`: reply patterns and the actions an operator attaches to them.

Domain layer: pure, stdlib only (re). In: the value of each `reply /REGEX/ ACTIONS` line of a
pattern list (`powermta.md` §3), and later a remote reply as text (`421 4.7.0 try later`).
Out: ReplyPattern values, and the first one that matches a reply (first match wins).

Actions: `mode=backoff` / `mode=normal` (the queue's mode), `skip-mx` (try the next MX host),
`bounce-queue` (bounce every recipient waiting in the queue), `bounce-rcpt` (bounce this recipient
although the reply is a 4xx at RCPT), `defer-queue` (hold the whole queue until its next retry).
Several actions may stand on one line (`mode=backoff defer-queue`).

Matching is case-insensitive unless the pattern starts with `(?-i)`, as in PowerMTA. The text
matched is the reply as the remote sent it (`550 5.7.1 ...`), without our `smtp;` diagnostic type.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MODES = ("backoff", "normal")
QUEUE_ACTIONS = ("skip-mx", "bounce-queue", "defer-queue")
RCPT_ACTIONS = ("bounce-rcpt",)
_CASE_SENSITIVE = "(?-i)"


@dataclass(frozen=True)
class ReplyPattern:
    source: str                   # the regex as written
    regex: re.Pattern
    mode: str = ""                # "backoff" | "normal" | "" (leave the mode)
    queue_action: str = ""        # one of QUEUE_ACTIONS or ""
    bounce_rcpt: bool = False
    where: str = ""               # file:line, for logs and `check-config`

    def describe(self) -> str:
        acts = [f"mode={self.mode}"] if self.mode else []
        acts += [self.queue_action] if self.queue_action else []
        acts += ["bounce-rcpt"] if self.bounce_rcpt else []
        return f"reply /{self.source}/ {' '.join(acts)}".rstrip()


def parse_reply_pattern(value: str, where: str = "") -> ReplyPattern:
    """`/REGEX/ mode=backoff defer-queue` -> ReplyPattern; ValueError says what was expected."""
    text = value.strip()
    end = text.rfind("/")
    if not text.startswith("/") or end <= 0:
        raise ValueError(f"expected /REGEX/ ACTIONS, got {value!r}")
    source, words = text[1:end], text[end + 1:].split()
    if not source:
        raise ValueError("expected a non-empty /REGEX/")
    flags = re.IGNORECASE
    body = source
    if body.startswith(_CASE_SENSITIVE):
        flags, body = 0, body[len(_CASE_SENSITIVE):]
    try:
        regex = re.compile(body, flags)
    except re.error as exc:
        raise ValueError(f"bad regex /{source}/: {exc}") from None
    mode, queue_action, bounce_rcpt = "", "", False
    if not words:
        raise ValueError(f"expected at least one action after /{source}/ "
                         f"(mode=backoff|mode=normal|{'|'.join(QUEUE_ACTIONS + RCPT_ACTIONS)})")
    for w in words:
        w = w.lower()
        if w.startswith("mode="):
            if w[5:] not in MODES:
                raise ValueError(f"expected mode=backoff or mode=normal, got {w!r}")
            mode = w[5:]
        elif w in QUEUE_ACTIONS:
            if queue_action and queue_action != w:
                raise ValueError(f"expected one queue action, got {queue_action} and {w}")
            queue_action = w
        elif w in RCPT_ACTIONS:
            bounce_rcpt = True
        else:
            raise ValueError(f"unknown action {w!r} (expected mode=backoff, mode=normal, "
                             f"{', '.join(QUEUE_ACTIONS + RCPT_ACTIONS)})")
    return ReplyPattern(source, regex, mode, queue_action, bounce_rcpt, where)


def reply_text(diag: str) -> str:
    """`smtp;550 5.7.1 blocked` -> `550 5.7.1 blocked`: what the remote said."""
    head, sep, rest = diag.partition(";")
    return rest if sep and head.strip().lower() in ("smtp", "x-bounceproc") else diag


def first_match(patterns: Sequence[ReplyPattern], reply: str) -> ReplyPattern | None:
    """The first pattern whose regex is found in the reply (first match wins)."""
    text = reply_text(reply)
    for p in patterns:
        if p.regex.search(text):
            return p
    return None
