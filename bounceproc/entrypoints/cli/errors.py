"""How a subcommand reports an error it expects (an unreadable file, a bad rules file, a CSV
without an `address` column): one line on stderr, `bounceproc COMMAND: MESSAGE`, and the exit
status the command returns.

Adapter layer (CLI), stdlib only: `classify` imports it and must start fast. Unexpected errors
are not reported here but by main's one-line handler (`bounceproc: KIND: MESSAGE`).
"""
from __future__ import annotations

import sys


def fail(command: str, message: object, status: int = 1) -> int:
    """Print `bounceproc COMMAND: MESSAGE` on stderr; returns `status`."""
    print(f"bounceproc {command}: {message}", file=sys.stderr)
    return status


def fail_file(command: str, name: str, exc: OSError, status: int = 1) -> int:
    """A file that cannot be read: `bounceproc COMMAND: NAME: No such file or directory`."""
    return fail(command, f"{name}: {exc.strerror or exc}", status)
