"""`bounceproc apikey …`, `bounceproc unsubscribe-url` and `bounceproc webhooks deliver`.

Adapter layer (CLI).
- `apikey create --scope SCOPE [--scope …] [--name TEXT]` prints the new key alone on its last
  line (it is stored hashed, so it is shown only this once); `apikey list`; `apikey revoke KEY_ID`.
- `unsubscribe-url --to ADDRESS [--list LIST] [--days N] [--mailto ADDR] [--json]` prints the
  RFC 8058 header pair (List-Unsubscribe, List-Unsubscribe-Post) for a message to ADDRESS.
- `webhooks deliver` sends every due webhook delivery once, in the foreground.
"""
from __future__ import annotations

from bounceproc import dbsetup

import json
import sys
from datetime import datetime, timedelta, timezone

from bounceproc.domain.unsubscribe_token import DEFAULT_LIFETIME


def _settings(read_only: bool = False):
    from bounceproc import bootstrap
    return dbsetup.load_for_command(read_only=read_only)


def cmd_apikey_create(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.storage.api_keys import SCOPES, create_key
    settings = _settings()
    try:
        with bootstrap.engine(settings).begin() as conn:
            token = create_key(conn, list(args.scope), args.name or "")
    except ValueError as exc:
        print(f"bounceproc apikey create: {exc}", file=sys.stderr)
        return 2
    print(f"# API key with scope(s) {' '.join(args.scope)}; it is shown only now "
          f"(scopes: {', '.join(SCOPES)})", file=sys.stderr)
    print(token)
    return 0


def cmd_apikey_list(args) -> int:
    from sqlalchemy import select

    from bounceproc import bootstrap
    from bounceproc.storage.api_tables import api_keys
    settings = _settings(read_only=True)
    with bootstrap.engine(settings).connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
    print("key_id\tscopes\tstate\tname")
    for r in rows:
        state = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
        print(f"{r['key_id']}\t{r['scopes']}\t{state}\t{r['name']}")
    return 0


def cmd_apikey_revoke(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.storage.api_keys import revoke_key
    settings = _settings()
    with bootstrap.engine(settings).begin() as conn:
        done = revoke_key(conn, args.key_id)
    print(f"{args.key_id}: {'revoked' if done else 'no such active key'}", file=sys.stderr)
    return 0 if done else 1


def cmd_unsubscribe_url(args) -> int:
    from bounceproc.config import load_settings
    from bounceproc.domain.address import AddressError, normalise_address
    from bounceproc.domain.unsubscribe_token import header_pair, make_token, unsubscribe_url
    settings = load_settings()
    try:
        to = normalise_address(args.to)
    except AddressError as exc:
        print(f"bounceproc unsubscribe-url: {exc}", file=sys.stderr)
        return 2
    expires = datetime.now(timezone.utc) + timedelta(days=args.days)
    url = unsubscribe_url(settings.public_url or f"http://{settings.api_listen}",
                          make_token(settings.secret(), to, args.list or "", expires))
    headers = header_pair(url, args.mailto)
    if not url.startswith("https://"):
        print("bounceproc unsubscribe-url: note: RFC 8058 wants an https URL; set public_url "
              "(BOUNCEPROC_PUBLIC_URL) to the public https address of the API", file=sys.stderr)
    if args.json:
        print(json.dumps({"url": url, "headers": headers, "expires_at": expires.isoformat()}))
    else:
        for name, value in headers.items():
            print(f"{name}: {value}")
    return 0


def cmd_webhooks_deliver(args) -> int:
    from bounceproc.outbound import webhooks
    totals = webhooks.deliver_now(_settings(), max_seconds=args.max_seconds)
    print(json.dumps(totals))
    return 0


def register(sub) -> None:
    from bounceproc.storage.api_keys import SCOPES
    p = sub.add_parser("apikey", help="create, list and revoke API keys")
    ks = p.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    c = ks.add_parser("create", help="create a key; prints it alone on the last line")
    c.add_argument("--scope", action="append", required=True, choices=SCOPES,
                   help="scope of the key (repeatable)")
    c.add_argument("--name", help="a label for the key")
    c.set_defaults(func=cmd_apikey_create)
    ks.add_parser("list", help="list keys (ids and scopes, never the keys)").set_defaults(func=cmd_apikey_list)
    r = ks.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    r.set_defaults(func=cmd_apikey_revoke)

    u = sub.add_parser("unsubscribe-url", help="print the RFC 8058 List-Unsubscribe header pair for a recipient")
    u.add_argument("--to", required=True, metavar="ADDRESS", help="the recipient")
    u.add_argument("--list", metavar="LIST_ID", help="the list to unsubscribe from (default: every list)")
    u.add_argument("--days", type=int, default=DEFAULT_LIFETIME.days,
                   help=f"validity of the link in days (default {DEFAULT_LIFETIME.days})")
    u.add_argument("--mailto", metavar="ADDRESS", help="also offer a mailto: unsubscribe address")
    u.add_argument("--json", action="store_true", help="print {url, headers, expires_at} as JSON")
    u.set_defaults(func=cmd_unsubscribe_url)

    w = sub.add_parser("webhooks", help="webhook delivery helpers")
    ws = w.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    d = ws.add_parser("deliver", help="send every due webhook delivery now, in the foreground")
    d.add_argument("--max-seconds", type=float, default=60.0)
    d.set_defaults(func=cmd_webhooks_deliver)
