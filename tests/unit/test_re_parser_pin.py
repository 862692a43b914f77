"""The classifier's prefilter reads regex parse trees with the standard library's private parser
(`re._parser`, domain/alternation.py). Private modules change without notice, so this pins the
Python versions it was checked on: a new version fails here first, and is added once these
anchors still come out right (or the prefilter is changed)."""
from __future__ import annotations

import sys

from bounceproc.domain import alternation

CHECKED = {(3, 11), (3, 12), (3, 13)}


def test_python_version_is_one_the_private_parser_was_checked_on():
    assert sys.version_info[:2] in CHECKED, (
        f"Python {sys.version_info[0]}.{sys.version_info[1]}: check alternation.pattern_anchors "
        "against re._parser on this version, then add it to CHECKED")


def test_the_private_parser_is_found():
    assert alternation._sre_parse is not None and alternation._sre is not None


def test_anchors_read_from_parse_trees():
    assert alternation.pattern_anchors("user unknown") == (("user unknown",), 0)
    assert alternation.pattern_anchors(r"mailbox (is )?full") == (("mailbox ",), 0)
    assert alternation.pattern_anchors(r"5\.1\.1") == (("5.1.1",), 0)
    assert alternation.pattern_anchors("no such (user|mailbox)") == (("no such ",), 0)
    # No literal every match needs, or a flag the anchors cannot honour: always tried.
    assert alternation.pattern_anchors(r"\d+") is None
    assert alternation.pattern_anchors("(?i)abc") is None
