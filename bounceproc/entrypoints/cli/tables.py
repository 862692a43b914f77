"""Tables a human reads: `rich` tables on a terminal, plain aligned text when piped (scripts
parse that, or use --json). And the one way complaint rates are written: `percent`.

Adapter layer (CLI).
"""
from __future__ import annotations

import sys


def percent(rate: float | None) -> str:
    """A complaint (or any) rate as the CLI writes it everywhere: 0.00123 -> "0.123%"."""
    return "n/a" if rate is None else f"{rate * 100:.3f}%"


def plain(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return "  (none)\n"
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    for r in rows:
        out.append("  " + "  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)).rstrip())
    return "\n".join(out) + "\n"


def write(title: str, rows: list[dict], cols: list[str], out=None) -> None:
    """The title and the table: rich on a terminal, `plain` otherwise."""
    out = out or sys.stdout
    if out.isatty():
        from rich.console import Console
        from rich.table import Table
        out.write(f"{title}\n")
        if not rows:
            out.write("  (none)\n")
            return
        table = Table(show_edge=False, header_style="bold")
        for c in cols:
            table.add_column(c, justify="right" if isinstance(rows[0].get(c), (int, float)) else "left")
        for r in rows:
            table.add_row(*(str(r.get(c, "")) for c in cols))
        Console(file=out, highlight=False).print(table)
        return
    out.write(f"{title}\n{plain(rows, cols)}")

