"""The `bounceproc` console command: argument parsing and dispatch to subcommand modules.

Adapter layer. Each subcommand lives in bounceproc/entrypoints/cli/<name>.py and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "serve", "pipe", "sink", "classify", "show", "suppressions", "db", "api", "mta",
)


def build_parser(names: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bounceproc", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML config file (also BOUNCEPROC_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in names:
        importlib.import_module(f"bounceproc.entrypoints.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `bounceproc mta check-config` must answer fast: load only the command asked for
    parser = build_parser(("mta",) if argv[:1] == ["mta"] else COMMAND_MODULES)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.config:
        import os
        os.environ["BOUNCEPROC_CONFIG"] = args.config
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
        from bounceproc.config import ConfigError
        kind = "configuration error" if isinstance(exc, ConfigError) else type(exc).__name__
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"bounceproc: {kind}: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
