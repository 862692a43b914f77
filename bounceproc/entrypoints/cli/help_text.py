"""What `bounceproc COMMAND --help` says beyond the arguments: the BOUNCEPROC_* variables each
command reads and an example, as data (one row per command), added to every parser by main.py.

Adapter layer (CLI). Arguments without a help text get theirs from ARGUMENT_HELP.
tests/unit/test_cli_help.py checks that every command has a description, every argument a help
text, and an epilog naming its variables and an example.
"""
from __future__ import annotations

import argparse
import textwrap

PRODUCT = """Bounce and feedback-loop processing for high-volume senders: reads PowerMTA accounting
records (pipe, import) and asynchronous DSNs and ARF complaints (SMTP sink), classifies them,
suppresses addresses by policy, and serves the suppression list over an HTTP API with one-click
unsubscribe and signed webhooks.

With nothing configured it runs embedded: a SQLite file in the per-user data dir, tasks
in-process. Start with `bounceproc serve`; README.md has a five-minute quick start."""

PRODUCT_EPILOG = """settings: BOUNCEPROC_<NAME> environment variables, or a TOML file (--config / BOUNCEPROC_CONFIG);
see deploy/bounceproc.toml and docs/configuration.md. BOUNCEPROC_DEBUG=1 shows tracebacks.

examples:
  bounceproc serve                              API + SMTP sink + worker, embedded
  bounceproc show status                        what happened in the last minute / hour / day
  bounceproc COMMAND --help                     each command's arguments, variables and an example"""

DB = "BOUNCEPROC_DATABASE_URL, BOUNCEPROC_DATA_DIR"
BROKER = "BOUNCEPROC_BROKER_URL, BOUNCEPROC_QUEUE"
ALL = "BOUNCEPROC_CONFIG"

# command path -> (description if the parser has none, variables read, example)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("", f"{DB}, {BROKER}, BOUNCEPROC_API_LISTEN, BOUNCEPROC_SINK_LISTEN, BOUNCEPROC_SINK_ACCEPT, "
              "BOUNCEPROC_PUBLIC_URL, BOUNCEPROC_SECRET_KEY, BOUNCEPROC_WEBHOOK_ALLOW, BOUNCEPROC_SINK_*",
              "bounceproc serve --accept bounces.sender.example --accept fbl@sender.example"),
    "pipe": ("", f"{DB}, {BROKER}, BOUNCEPROC_INTAKE_BATCH_LINES, BOUNCEPROC_INTAKE_BATCH_SECONDS",
             "<acct-file \"|/usr/local/bin/bounceproc --config /etc/bounceproc/bounceproc.toml pipe\">"),
    "import": ("", f"{DB}, {BROKER}, BOUNCEPROC_INTAKE_BATCH_LINES",
               "bounceproc import /var/log/pmta/acct-2026-12-01-0000.csv"),
    "sink": ("", f"{DB}, {BROKER}, BOUNCEPROC_SINK_LISTEN, BOUNCEPROC_SINK_ACCEPT, BOUNCEPROC_SINK_*, "
             "BOUNCEPROC_VERP_SEPARATOR, BOUNCEPROC_VERP_PREFIX",
             "bounceproc sink --listen 0.0.0.0:25 --accept bounces.sender.example fbl@sender.example"),
    "reprocess": ("", f"{DB}, BOUNCEPROC_RULES_FILE", "bounceproc reprocess --since 7d --dry-run"),
    "complaints": ("", DB, "bounceproc complaints --since 7d"),
    "classify": ("Classify bounce, ARF complaint and auto-reply message files with the rules engine "
                 "and print the verdict per recipient (a file of `-` reads stdin).",
                 "BOUNCEPROC_RULES_FILE, BOUNCEPROC_VERP_SEPARATOR, BOUNCEPROC_VERP_PREFIX",
                 "bounceproc classify --explain fixtures/dsn/postfix-user-unknown.eml"),
    "rules check": ("Check a classification rules TOML file: unknown reasons, bad patterns, duplicate "
                    "ids, rules shadowed by an earlier one.", "BOUNCEPROC_RULES_FILE",
                    "bounceproc rules check my-rules.toml"),
    "show status": ("Events by type and category (last minute, hour, day), suppressions by reason, "
                    "intake backlog, quarantine, complaint rates; the database and data dir in use.",
                    DB, "bounceproc show status --json"),
    "show top": ("Blocks per receiving domain, virtual MTA and source IP (never suppress anyone), and "
                 "bouncing receiving domains, over the last day.", DB, "bounceproc show top --limit 10"),
    "show queues": ("The durable intake backlog by kind and state.", DB, "bounceproc show queues"),
    "suppressions export": ("Write the suppression list as CSV to stdout: address, scope, reason, "
                            "category, rule, source, created_at, expires_at.", DB,
                            "bounceproc suppressions export --reason complaint > complaints.csv"),
    "suppressions add": ("Suppress an address by hand (kept in the history with the note).", DB,
                         "bounceproc suppressions add alice@example.com --scope list:news --note 'asked by phone'"),
    "suppressions remove": ("Lift a suppression; the reason is kept in the history.", DB,
                            "bounceproc suppressions remove alice@example.com --reason 're-opted in by phone'"),
    "suppressions import": ("Suppress (or, with --remove, lift) every address of a CSV file: the format "
                            "and the code of POST /v1/imports, run here as an import job to the end. A "
                            "progress bar on stderr when it is a terminal; one summary line on stdout.", DB,
                            "bounceproc suppressions import unsubscribed.csv --scope list:news"),
    "quarantine list": ("", DB, "bounceproc quarantine list --since 1d"),
    "quarantine show": ("", DB, "bounceproc quarantine show 42"),
    "quarantine replay": ("", f"{DB}, {BROKER}, BOUNCEPROC_RULES_FILE", "bounceproc quarantine replay --since 7d"),
    "quarantine purge": ("", DB, "bounceproc quarantine purge --before 30d"),
    "db create": ("", DB, "BOUNCEPROC_DATABASE_URL=postgresql://postgres@127.0.0.1/bounceproc bounceproc db create"),
    "db upgrade": ("", DB, "bounceproc db upgrade"),
    "db downgrade": ("", DB, "bounceproc db downgrade 2026_11_25_05_intake_once"),
    "db current": ("", DB, "bounceproc db current"),
    "apikey create": ("Create an API key with the given scopes; the key is printed alone on the last "
                      "line, only this once (it is stored hashed).", DB,
                      "KEY=$(bounceproc apikey create --scope admin --name crm | tail -1)"),
    "apikey list": ("List API keys: id, scopes, state, name (never the keys).", DB, "bounceproc apikey list"),
    "apikey revoke": ("Revoke an API key by its id (from `apikey list`).", DB, "bounceproc apikey revoke 3f9a1c0b7d2e"),
    "unsubscribe-url": ("Print the RFC 8058 List-Unsubscribe and List-Unsubscribe-Post headers for a "
                        "recipient and list: a signed link, no lookup table.",
                        "BOUNCEPROC_PUBLIC_URL, BOUNCEPROC_SECRET_KEY, BOUNCEPROC_DATA_DIR",
                        "bounceproc unsubscribe-url --to alice@example.com --list news"),
    "mailbox": ("Read bounce and feedback-loop mailboxes over IMAP (IDLE) or POP3 into the durable "
                "intake; each message is committed before it is moved, flagged or deleted on the server.",
                f"{DB}, {BROKER}, BOUNCEPROC_MAILBOXES",
                "bounceproc mailbox --imap imaps://fbl%40example.com@outlook.office365.com/INBOX "
                "--oauth2-token-command 'm365-token fbl' --move-to Processed"),
    "mta check-config": ("Validate an MTA config file in PowerMTA syntax (errors with file:line, non-zero "
                         "exit); --domain NAME [--vmta NAME] prints a domain's effective settings.",
                         "BOUNCEPROC_MTA_CONFIG", "bounceproc mta check-config /etc/bounceproc/mta.conf --domain gmail.com"),
    "mta show": ("PowerMTA-style views of the running MTA: status, queues, domains, vmtas, top "
                 "(from its management HTTP port).", "BOUNCEPROC_MTA_CONFIG", "bounceproc mta show queues --json"),
    "mta pause": ("Pause a queue of the running MTA (DOMAIN/VMTA): nothing is sent until resumed.",
                  "BOUNCEPROC_MTA_CONFIG", "bounceproc mta pause gmail.com/vmta1"),
    "mta resume": ("Resume a paused queue of the running MTA.", "BOUNCEPROC_MTA_CONFIG",
                   "bounceproc mta resume gmail.com/vmta1"),
    "mta delete": ("Delete the messages of a queue of the running MTA (bounced, with DSNs to their senders).",
                   "BOUNCEPROC_MTA_CONFIG", "bounceproc mta delete example.org/vmta1"),
    "mta set": ("Set a queue of the running MTA to normal or backoff mode.", "BOUNCEPROC_MTA_CONFIG",
                "bounceproc mta set queue --mode=backoff gmail.com/vmta1"),
    "mta rotate": ("Rotate the running MTA's accounting files now.", "BOUNCEPROC_MTA_CONFIG",
                   "bounceproc mta rotate acct"),
    "mta reload": ("Reload the running MTA's configuration (as SIGHUP does).", "BOUNCEPROC_MTA_CONFIG",
                   "bounceproc mta reload"),
    "webhooks deliver": ("Send every webhook delivery that is due now, in the foreground, then exit.",
                         f"{DB}, BOUNCEPROC_WEBHOOK_ALLOW, BOUNCEPROC_WEBHOOK_TIMEOUT_SECONDS",
                         "bounceproc webhooks deliver --max-seconds 60"),
}

ARGUMENT_HELP = {
    ("import", "files"): "PowerMTA accounting CSV files (rotated ones too; each resumes from its checkpoint)",
    ("rules check", "file"): "the rules TOML file to check",
    ("show top", "limit"): "rows per table (default 20)",
    ("suppressions add", "address"): "the address to suppress",
    ("suppressions add", "scope"): "global (default), list:<id> or domain:<sending domain>",
    ("suppressions add", "note"): "why, kept in the history",
    ("suppressions remove", "address"): "the address to lift",
    ("suppressions remove", "scope"): "global (default), list:<id> or domain:<sending domain>",
    ("apikey revoke", "key_id"): "the key's id, as `apikey list` shows it",
    ("webhooks deliver", "max_seconds"): "stop after this many seconds",
    ("mta show", "view"): "status, queues, domains, vmtas or top",
    ("mta pause", "queue"): "DOMAIN/VMTA (or DOMAIN for every virtual MTA)",
    ("mta resume", "queue"): "DOMAIN/VMTA (or DOMAIN for every virtual MTA)",
    ("mta delete", "queue"): "DOMAIN/VMTA (or DOMAIN for every virtual MTA)",
    ("mta set", "what"): "queue",
    ("mta set", "mode"): "normal or backoff",
    ("mta set", "queue"): "DOMAIN/VMTA",
    ("mta rotate", "what"): "acct",
}


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every command that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, path + (name,))


def apply(parser: argparse.ArgumentParser) -> None:
    """Descriptions, argument help, variables and examples for every command."""
    parser.description = PRODUCT
    parser.epilog = PRODUCT_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for path, p in leaves(parser):
        description, variables, example = COMMANDS.get(path, ("", ALL, ""))
        p.description = textwrap.fill(" ".join((p.description or description).split()), width=96)
        for action in p._actions:
            if not action.help and not isinstance(action, argparse._HelpAction):
                action.help = ARGUMENT_HELP.get((path, action.dest), "")
        extra = f"environment: {variables}, {ALL}" if variables != ALL else f"environment: {ALL}"
        if example:
            extra += f"\n\nexample:\n  {example}"
        p.epilog = f"{p.epilog}\n\n{extra}" if p.epilog else extra
        p.formatter_class = argparse.RawDescriptionHelpFormatter
