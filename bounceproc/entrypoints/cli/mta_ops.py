"""`bounceproc mta show status|queues|domains|vmtas|top [--json]`, `mta pause|resume|delete QUEUE`,
`mta set queue --mode=normal|backoff QUEUE`, `mta rotate acct`, `mta reload`.

Entry point (argument parsing only): each command is one request to the running MTA's
management HTTP (bounceproc.mta.management) on 127.0.0.1:`http-mgmt-port` of the config,
with the config's `http-api-key` when it has one (as `pmta` talks to its own HTTP port).
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_CONFIG = "/etc/bounceproc/mta.conf"


def config_path(args) -> str:
    """--config of the `mta` command, else the `mta_config` setting, else the default path."""
    if getattr(args, "mta_config", None):
        return args.mta_config
    from bounceproc.config import load_settings
    return load_settings().mta_config or DEFAULT_CONFIG


def _endpoint(args) -> tuple[str, str]:
    from bounceproc.domain.mta.config import ConfigError
    from bounceproc.mta.config_reader import read_config
    if args.mgmt:
        return args.mgmt.rstrip("/"), args.api_key or ""
    try:
        cfg = read_config(config_path(args))
    except (ConfigError, OSError) as exc:
        raise SystemExit(f"bounceproc mta: cannot read the config: {exc}")
    return f"http://127.0.0.1:{cfg.http_mgmt_port}", args.api_key or cfg.http_api_key


def request(args, method: str, path: str, query: dict) -> tuple[int, bytes]:
    base, key = _endpoint(args)
    url = f"{base}/{path}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                 headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        raise SystemExit(f"bounceproc mta: the MTA's management HTTP at {base} does not answer ({exc})")


def _report(code: int, body: bytes, as_json: bool) -> int:
    if code != 200:
        try:
            msg = json.loads(body).get("error", body.decode())
        except ValueError:
            msg = body.decode(errors="replace")
        print(f"bounceproc mta: {msg}", file=sys.stderr)
        return 1
    text = body.decode()
    if as_json:
        print(json.dumps(json.loads(text)["data"], indent=2))
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _show(args) -> int:
    code, body = request(args, "GET", args.view, {"format": "json" if args.json else "", "queue": args.arg or "",
                                                   "n": args.arg if args.view == "top" else ""})
    return _report(code, body, args.json)


def _action(name: str):
    def run(args) -> int:
        code, body = request(args, "POST", name, {"queue": getattr(args, "queue", ""), "mode": getattr(args, "mode", "")})
        if code == 200 and not args.json:
            data = json.loads(body)["data"]
            print(f"{name}: " + (", ".join(data.get("queues", [])) or "done"))
            return 0
        return _report(code, body, True)
    return run


def _common(p) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--mgmt", metavar="URL", help="management HTTP base URL (default: 127.0.0.1:http-mgmt-port)")
    p.add_argument("--api-key", metavar="KEY", help="X-API-Key (default: http-api-key of the config)")


def register(msub) -> None:
    s = msub.add_parser("show", help="show status, queues, domains, vmtas or top queues of the running MTA")
    s.add_argument("view", choices=("status", "queues", "domains", "vmtas", "top"))
    s.add_argument("arg", nargs="?", help="queues: DOMAIN or DOMAIN/VMTA; top: how many (20)")
    _common(s)
    s.set_defaults(func=_show)
    for name, action, helptext in (("pause", "pause", "stop delivering a queue (DOMAIN or DOMAIN/VMTA)"),
                                   ("resume", "resume", "resume a paused queue"),
                                   ("delete", "delete", "bounce every recipient of a queue")):
        p = msub.add_parser(name, help=helptext)
        p.add_argument("queue")
        _common(p)
        p.set_defaults(func=_action(action))
    st = msub.add_parser("set", help="set queue --mode=normal|backoff QUEUE")
    st.add_argument("what", choices=("queue",))
    st.add_argument("--mode", required=True, choices=("normal", "backoff"))
    st.add_argument("queue")
    _common(st)
    st.set_defaults(func=_action("setQueueMode"))
    r = msub.add_parser("rotate", help="rotate acct: start new accounting files")
    r.add_argument("what", choices=("acct",))
    _common(r)
    r.set_defaults(func=_action("rotateAcct"))
    rl = msub.add_parser("reload", help="re-read the config of the running MTA")
    _common(rl)
    rl.set_defaults(func=_action("reload"))
