"""The `bounceproc` console command: argument parsing and dispatch to subcommand modules.

Adapter layer. Each subcommand lives in bounceproc/entrypoints/cli/<name>.py and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from bounceproc import __version__

COMMAND_MODULES = (
    "serve", "pipe", "sink", "classify", "show", "suppressions", "quarantine", "db", "api", "mailbox", "mta",
)


# Subcommands whose module is imported alone when they are asked for (start-up time: `classify`
# must not import SQLAlchemy and the service layer; `mta check-config` must answer fast).
LIGHT_COMMANDS = {"classify": "classify", "rules": "classify", "mta": "mta"}


class CommandParser(argparse.ArgumentParser):
    """argparse's parser, whose help formatter learns the terminal width without shutil: argparse
    builds a formatter for every argument added, and shutil imports bz2 and lzma (start-up time of
    `classify`). Same width: $COLUMNS, else the terminal's, else 80, less 2. Subparsers inherit it."""

    def _get_formatter(self):
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    import os
    columns = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = CommandParser(prog="bounceproc", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML config file (also BOUNCEPROC_CONFIG)")
    parser.add_argument("--version", action="version", version=f"bounceproc {__version__}")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="log lines as text (default) or one JSON object per line (also BOUNCEPROC_LOG_FORMAT)")
    parser.add_argument("--log-level", default=None, metavar="LEVEL",
                        help="debug, info (default for serve and sink), warning... (also BOUNCEPROC_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMAND_MODULES:
        importlib.import_module(f"bounceproc.entrypoints.cli.{name}").register(sub)
    from bounceproc.entrypoints.cli import help_text
    help_text.apply(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    first = args_in[0] if args_in else ""
    parser = build_parser(LIGHT_COMMANDS.get(first))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import os
    if args.config:
        os.environ["BOUNCEPROC_CONFIG"] = args.config
    from bounceproc import logs
    logs.quiet_parser_noise()
    if args.log_format:
        os.environ["BOUNCEPROC_LOG_FORMAT"] = args.log_format
    if args.log_level:
        os.environ["BOUNCEPROC_LOG_LEVEL"] = args.log_level
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a clear one-line error for users; the traceback with BOUNCEPROC_DEBUG=1
        import os
        if os.environ.get("BOUNCEPROC_DEBUG"):
            raise
        print(f"bounceproc: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """The error as one line: what is wrong and, for set-up problems, what to do."""
    from bounceproc import dbsetup
    from bounceproc.config import ConfigError, load_settings
    if isinstance(exc, dbsetup.SetupError):
        return str(exc)
    if dbsetup.is_infrastructure_error(exc):
        try:
            settings = load_settings()
        except Exception:
            settings = None
        return dbsetup.explain(exc, settings)
    kind = "configuration error" if isinstance(exc, ConfigError) else type(exc).__name__
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{kind}: {msg}"


if __name__ == "__main__":
    sys.exit(main())
