"""`bounceproc pipe` (the PowerMTA acct-file pipe target) and `bounceproc import FILE...`.

Adapter layer: argument parsing only; the work is in bounceproc.entrypoints.acct_pipe.
`pipe` never writes to stdout (PowerMTA owns the pipe's other end); progress goes to stderr.
"""
from __future__ import annotations



def _logging(quiet: bool) -> None:
    from bounceproc import logs
    level, fmt = logs.from_environment("error" if quiet else "warning")
    logs.configure(level, fmt)


def _pipe(args) -> int:
    from bounceproc.entrypoints.acct_pipe import run_pipe
    from bounceproc.config import load_settings
    _logging(args.quiet)
    settings = load_settings()
    return run_pipe(settings, batch_lines=args.batch_lines, batch_seconds=args.batch_seconds,
                    drain_timeout=args.drain_timeout, journal_dir=args.journal_dir, quiet=args.quiet)


def _import(args) -> int:
    from bounceproc.entrypoints.acct_pipe import run_import
    from bounceproc.config import load_settings
    _logging(args.quiet)
    settings = load_settings()
    return run_import(settings, args.files, batch_lines=args.batch_lines, restart=args.restart,
                      wait=args.wait, quiet=args.quiet)


def register(sub) -> None:
    p = sub.add_parser(
        "pipe", help="read PowerMTA accounting records from stdin (<acct-file |bounceproc pipe>)",
        description="Read the acct-file CSV stream PowerMTA writes to a pipe, journal it durably, "
                    "and hand it to the intake in batches. Exits 0 at end of input.")
    p.add_argument("--batch-lines", type=int, default=None, help="lines per batch (default 5000)")
    p.add_argument("--batch-seconds", type=float, default=None, help="max seconds a batch waits (default 1)")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="at end of input, seconds to wait for the journal to drain (default 60)")
    p.add_argument("--journal-dir", default=None, help="journal directory (default DATA_DIR/pipe-journal)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_pipe)

    i = sub.add_parser(
        "import", help="import PowerMTA accounting files (resumable, idempotent)",
        description="Import acct-file CSV files through the same intake as the pipe. Each file "
                    "resumes from its checkpoint; importing a file again changes nothing.")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--batch-lines", type=int, default=None, help="lines per batch (default 5000)")
    i.add_argument("--restart", action="store_true",
                   help="ignore checkpoints and read the files from the start (still no duplicates)")
    i.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for the workers to process the batches")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    i.set_defaults(func=_import)
