"""`bounceproc mailbox`: read bounce / FBL mailboxes over IMAP or POP3 into the durable intake.

Adapter layer (CLI). `bounceproc mailbox --imap imaps://user@host/INBOX [--password-file F]
[--move-to Processed] [--poll 60]` reads one mailbox in the foreground (`--pop3 pop3s://user@host`
for POP3); with no URL it reads every `[[mailboxes]]` entry of the config. Each message is
committed to the intake before it is moved, flagged or deleted on the server
(entrypoints/mailbox.py says how). `--once` reads what is there and exits (cron-friendly).
"""
from __future__ import annotations

import signal
import sys
import threading


def cmd_mailbox(args) -> int:
    from bounceproc import bootstrap, logs
    from bounceproc.config import load_settings
    from bounceproc.entrypoints.mailbox import (MailboxError, MailboxReader, intake_committer, parse_mailbox_url,
                                                specs_from_settings)

    settings = load_settings()
    try:
        urls = [u for u in (args.imap or []) + (args.pop3 or [])]
        opts = dict(password_file=args.password_file, oauth2_token_command=args.oauth2_token_command,
                    move_to=args.move_to, delete=args.delete or None, poll=args.poll, ca_file=args.ca_file)
        specs = [parse_mailbox_url(u, **opts) for u in urls] if urls else specs_from_settings(settings)
    except MailboxError as exc:
        print(f"bounceproc mailbox: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print("bounceproc mailbox: no mailbox: give --imap URL / --pop3 URL, or [[mailboxes]] in the config",
              file=sys.stderr)
        return 2
    logs.configure(*logs.from_environment("info"))     # like serve and sink: --log-format json too
    bootstrap.ensure_schema(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    commit = intake_committer(settings)
    readers = [MailboxReader(spec, commit, stop) for spec in specs]
    status = 0
    if args.once:
        for r in readers:
            try:
                r.run(once=True)
                print(f"bounceproc mailbox: {r.spec.name}: {r.stored} message(s) stored", flush=True)
            except Exception as exc:  # noqa: BLE001 - one line per mailbox, then the next one
                print(f"bounceproc mailbox: {r.spec.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 1
        return status
    threads = [threading.Thread(target=r.run, name=f"mailbox {r.spec.name}", daemon=True) for r in readers]
    for r, t in zip(readers, threads):
        print(f"bounceproc mailbox: reading {r.spec.scheme}://{r.spec.name} (Ctrl-C or SIGTERM stops)", flush=True)
        t.start()
    try:
        while any(t.is_alive() for t in threads) and not stop.is_set():
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    stop.set()
    for t in threads:
        t.join(70)
    return status


def register(sub) -> None:
    p = sub.add_parser("mailbox", help="read bounce / FBL mailboxes over IMAP or POP3",
                       description=__doc__.splitlines()[0])
    p.add_argument("--imap", action="append", metavar="URL", help="imaps://user@host[:port]/Folder (repeatable)")
    p.add_argument("--pop3", action="append", metavar="URL", help="pop3s://user@host[:port] (repeatable)")
    p.add_argument("--password-file", help="file whose first line is the password (read at each connection)")
    p.add_argument("--oauth2-token-command", metavar="CMD",
                   help="command printing an OAuth2 access token (XOAUTH2; Microsoft 365, Google)")
    p.add_argument("--move-to", metavar="FOLDER", help="IMAP: move each message here after it is stored")
    p.add_argument("--delete", action="store_true", help="IMAP: delete each message after it is stored")
    p.add_argument("--poll", type=float, help="seconds between checks (IMAP IDLE renewal), default 60")
    p.add_argument("--ca-file", help="extra CA certificates for a private server")
    p.add_argument("--once", action="store_true", help="read what is there now, then exit")
    p.set_defaults(func=cmd_mailbox)
