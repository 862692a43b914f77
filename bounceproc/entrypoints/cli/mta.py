"""`bounceproc mta` (run the bundled MTA) and `bounceproc mta check-config FILE`.

Adapter layer: argument parsing only; the work is in bounceproc.mta.service and
bounceproc.mta.config_reader. More `mta` subcommands register in MTA_COMMANDS.
"""
from __future__ import annotations

import sys

from bounceproc import logs
from bounceproc.entrypoints.cli import mta_ops

DEFAULT_CONFIG = mta_ops.DEFAULT_CONFIG


def _run(args) -> int:
    from bounceproc.domain.mta.config import ConfigError
    from bounceproc.mta.service import MtaService
    logs.configure(*logs.from_environment("warning" if args.quiet else "info"))   # like serve: --log-format json
    path = mta_ops.config_path(args)
    try:
        service = MtaService(path)
    except ConfigError as exc:
        print(f"{path}: configuration errors:\n{exc}", file=sys.stderr)
        return 1
    close_the_loop(service)
    for w in service.config.warnings:
        print(w, file=sys.stderr)
    return service.run()


def close_the_loop(service) -> None:
    """Suppressions, VERP, List-Unsubscribe, DKIM and backoff (bounceproc.mta.closing_loop)."""
    from bounceproc.config import load_settings
    from bounceproc.mta.closing_loop import build_hooks
    from bounceproc.mta.management import Management
    from bounceproc import bootstrap
    settings = load_settings()
    bootstrap.ensure_schema(settings)         # the embedded SQLite file is created and migrated here
    parts = build_hooks(settings, lambda: service.mta)
    service.hooks, service.loop_parts = parts.hooks, parts
    service.management = Management(service, parts.activity, parts.counters)


def _check(args) -> int:
    from bounceproc.domain.mta.config import ConfigError
    from bounceproc.domain.mta.units import format_duration
    from bounceproc.mta.config_reader import read_config
    path = args.file or mta_ops.config_path(args)
    try:
        cfg = read_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    for w in cfg.warnings:
        print(w, file=sys.stderr)
    key_errors = _unreadable_keys(cfg)
    if key_errors:
        print("\n".join(key_errors), file=sys.stderr)
        print(f"{path}: {len(key_errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(cfg.domains)} domain blocks, {len(cfg.vmtas)} virtual MTAs, "
          f"{len(cfg.pools)} pools, {len(cfg.sources)} sources, {len(cfg.acct_files)} acct-files; "
          f"spool {cfg.spool_dir})")
    if args.domain:
        if args.vmta and args.vmta not in cfg.vmtas and args.vmta not in cfg.pools:
            print(f"unknown virtual-mta {args.vmta}", file=sys.stderr)
            return 1
        vmta, pool = (args.vmta, None) if args.vmta in cfg.vmtas else (None, args.vmta)
        s = cfg.effective(args.domain, vmta, pool)
        print(f"effective settings of queue {args.domain}/{args.vmta or '{default}'}:")
        for name, value in _settings_lines(s, format_duration):
            print(f"  {name} {value}")
    return 0


def _unreadable_keys(cfg) -> list[str]:
    """`domain-key` files that cannot be used for DKIM signing, one error line each."""
    from bounceproc.mta.dkim_signer import KeyFileError, read_key
    keys = list(cfg.domain_keys) + [k for v in cfg.vmtas.values() for k in v.domain_keys] \
        + [k for p in cfg.pools.values() for k in p.domain_keys]
    errors = []
    for key in {k.keyfile: k for k in keys}.values():
        try:
            read_key(key.keyfile)
        except KeyFileError as exc:
            errors.append(f"domain-key {key.selector},{key.domain}: {exc}")
    return errors


def _settings_lines(s, fmt):
    import dataclasses
    for f in dataclasses.fields(s):
        v = getattr(s, f.name)
        if f.name == "extra":
            for k, x in v:
                if isinstance(x, tuple) and all(isinstance(i, float) for i in x):
                    x = ",".join(fmt(i) for i in x)
                elif isinstance(x, bool):
                    x = "yes" if x else "no"
                elif isinstance(x, float):
                    x = fmt(x)
                elif x is None:
                    x = "never"
                yield k.replace("_", "-"), x
            continue
        if f.name == "retry_after":
            v = ",".join(fmt(x) for x in v)
        elif f.name in ("bounce_after", "connect_timeout", "smtp_greeting_timeout", "data_send_timeout"):
            v = fmt(v)
        elif f.name == "smtp_hosts":
            v = "; ".join(", ".join(str(h) for h in lv) for lv in v) or "(MX lookup)"
        elif v is None:
            v = "unlimited"
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        yield f.name.replace("_", "-"), v


MTA_COMMANDS = []   # (name, register(sub)) added by other modules (part 2: `mta show ...`)


def register(sub) -> None:
    p = sub.add_parser("mta", help="run the bundled sending core (PowerMTA-syntax config)",
                       description="Run the bundled MTA: accept mail over SMTP from allowed sources, "
                                   "spool it durably and deliver it with retry schedules. "
                                   "See docs/sending-core.md.")
    p.add_argument("--config", dest="mta_config", metavar="FILE",
                   help=f"MTA config file (default: mta_config setting, else {DEFAULT_CONFIG})")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_run)
    msub = p.add_subparsers(dest="mta_command", metavar="SUBCOMMAND")
    c = msub.add_parser("check-config", help="validate a config; print a queue's effective settings",
                        description="Validate an MTA config file (errors with file:line, non-zero exit).")
    c.add_argument("file", nargs="?", help="config file (default as for `bounceproc mta`)")
    c.add_argument("--domain", metavar="NAME", help="print the effective settings of this destination domain")
    c.add_argument("--vmta", metavar="NAME", help="... as sent through this virtual MTA or pool")
    c.set_defaults(func=_check)
    for _name, reg in MTA_COMMANDS:
        reg(msub)
    mta_ops.register(msub)
