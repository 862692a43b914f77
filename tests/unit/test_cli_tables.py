"""Human tables (rich on a terminal, plain text when piped) and the one percentage format."""
from __future__ import annotations

import io

from bounceproc.entrypoints.cli import tables


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_percent_is_one_format():
    assert tables.percent(0.00123) == "0.123%"
    assert tables.percent(0.003) == "0.300%"
    assert tables.percent(None) == "n/a"


def test_plain_when_piped_rich_on_a_terminal():
    rows = [{"reason": "hard_bounce", "count": 2}]
    piped = io.StringIO()
    tables.write("Suppressions by reason", rows, ["reason", "count"], out=piped)
    assert piped.getvalue() == "Suppressions by reason\n  reason       count\n  hard_bounce  2\n"
    tty = Tty()
    tables.write("Suppressions by reason", rows, ["reason", "count"], out=tty)
    assert tty.getvalue().startswith("Suppressions by reason\n") and "│" in tty.getvalue()
    empty = io.StringIO()
    tables.write("Events", [], ["type"], out=empty)
    assert empty.getvalue() == "Events\n  (none)\n"
