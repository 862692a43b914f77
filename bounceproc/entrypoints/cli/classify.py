"""Subcommands `classify` (run the engine on message files) and `rules check` (validate a rules file).

Adapter layer: reads files and stdin, prints; the decisions are bounceproc.domain's.
`bounceproc classify [--json] [--explain] [--rules FILE] FILE...` prints one JSON line per file
(--explain: the deciding rule, the taxonomy.md precedence step with the evidence on each side, and
the policy's safety net when it would not suppress a hard verdict)
(`-` reads one message from stdin) or, without --json, a readable table. An unreadable file is
reported on stderr and the run goes on; the exit status is then 1.
`bounceproc rules check FILE` reports unknown reasons, bad patterns, duplicate ids and rules
shadowed by an earlier rule; exit 0 when the file is usable, 1 otherwise.
"""
from __future__ import annotations

import json
import sys

from bounceproc.domain.classify import RulesError, check_rules, default_rules, load_classifier, parse_rules
from bounceproc.domain.parse.forwarded import merged, read_reports
from bounceproc.entrypoints.cli.errors import fail, fail_file

JSON_FIELDS = ("address", "status", "reply_code", "diagnostic", "remote_mta", "reason", "category",
               "hard", "feedback_type", "rule")
EXPLAIN_FIELDS = ("parser", "explain")
MAX_MESSAGE = 50_000_000


def register(sub) -> None:
    p = sub.add_parser("classify", help="classify bounce / ARF / auto-reply message files")
    p.add_argument("files", nargs="+", metavar="FILE", help="message files; - reads one message from stdin")
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--explain", action="store_true", help="add the parser and the deciding rule's evidence")
    p.add_argument("--rules", help="extra rules TOML file, tried before the default rules")
    p.set_defaults(func=run_classify)

    r = sub.add_parser("rules", help="classification rules tools")
    rsub = r.add_subparsers(dest="rules_command", metavar="ACTION")
    c = rsub.add_parser("check", help="validate a rules TOML file")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(func=run_rules_check)
    r.set_defaults(func=lambda args: (r.print_help(), 2)[1])


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(MAX_MESSAGE)
    with open(name, "rb") as fh:
        return fh.read(MAX_MESSAGE)


def explain_line(v) -> str:
    """The verdict's explanation, plus the policy's safety net when it would refuse to suppress."""
    from bounceproc.domain.policy import safety_net
    net = safety_net(v.reason, v.hard, v.diagnostic)
    return f"{v.explain} [{net}: policy counts it as a block]" if net else v.explain


def report_to_dict(name: str, report, explain: bool = False) -> dict:
    fields = JSON_FIELDS + (EXPLAIN_FIELDS + ("recovered_by",) if explain else ())
    out = {"file": name, "kind": report.kind,
           "recipients": [{k: (explain_line(v) if k == "explain" else getattr(v, k)) for k in fields}
                          for v in report.recipients]}
    if explain and report.note:
        out["note"] = report.note
    return out


def run_classify(args) -> int:
    try:
        classifier = load_classifier(args.rules) if args.rules else None
    except (OSError, RulesError) as exc:
        return fail("classify", f"rules: {exc}", 2)
    status = 0
    out = sys.stdout
    if not args.json:
        out.write("%-40s %-10s %-32s %-9s %-16s %-5s %s\n" % ("FILE", "KIND", "ADDRESS", "STATUS", "REASON",
                                                             "HARD", "RULE"))
    for name in args.files:
        try:
            raw = _read(name)
        except OSError as exc:
            status = fail_file("classify", name, exc)
            continue
        report = merged(read_reports(raw, classifier=classifier))   # forwarded reports unwrapped
        if args.json:
            out.write(json.dumps(report_to_dict(name, report, args.explain), ensure_ascii=False) + "\n")
            continue
        if args.explain and report.note and report.recipients:
            out.write("%-40s note: %s\n" % (name[-40:], report.note))
        rows = report.recipients or [None]
        for v in rows:
            if v is None:
                out.write("%-40s %-10s %s\n" % (name[-40:], report.kind, report.note))
                continue
            out.write("%-40s %-10s %-32s %-9s %-16s %-5s %s\n" % (
                name[-40:], report.kind, (v.address or "-")[:32], v.status or "-", v.reason,
                "hard" if v.hard else "soft", v.rule))
            if args.explain:
                out.write("    parser=%s %s\n" % (v.parser, explain_line(v)))
    out.flush()
    return status


def run_rules_check(args) -> int:
    try:
        with open(args.file, encoding="utf-8") as fh:
            rules = parse_rules(fh.read(), args.file)
    except OSError as exc:
        return fail_file("rules check", args.file, exc)
    except RulesError as exc:
        return fail("rules check", exc)
    # User rules go before the defaults, so a user rule can only be shadowed by another user rule.
    problems = check_rules(rules)
    for p in problems:
        print(f"{args.file}: {p}")
    if not problems:
        total = len(rules) + len(default_rules())
        print(f"{args.file}: {len(rules)} rules OK ({total} with the defaults)")
    return 1 if problems else 0
