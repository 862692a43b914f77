"""Prepare each outgoing transaction: VERP envelope sender, List-Unsubscribe pair, DKIM signature.

Adapter layer (a MessagePreparer, bounceproc.mta.hooks). The rules are pure
(bounceproc.domain.mta.outgoing, .dkim_keys); this module applies them in order and signs last,
so the DKIM signature covers every header bounceproc adds.
In: a Transaction (envelope, recipients of one message, the spooled bytes). Out: the
transactions to send: one per recipient when VERP or a per-recipient unsubscribe token needs it.

- VERP when the client's `<source>` has `verp-default yes` or a `verp-return-path`.
- List-Unsubscribe when the message names a list (List-Id / our stamp), bounceproc has a
  public URL (settings `public_url`), and the message has no List-Unsubscribe of its own.
- DKIM when the queue's `<domain>` has `dkim-sign yes` and a `domain-key` matches the author
  domain (virtual MTA's keys, then its pool's, then the global ones). A key that cannot be read
  is logged and the message goes out unsigned (the config check reports such keys first).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from bounceproc.domain.mta.config import MtaConfig
from bounceproc.domain.mta.dkim_keys import author_domain, choose_key
from bounceproc.domain.mta.outgoing import (
    add_headers, message_headers, message_list_id, unsubscribe_fields, verp_sender,
)
from bounceproc.domain.parse.verp import DEFAULT, VerpFormat
from bounceproc.mta.dkim_signer import DkimSigner, KeyFileError
from bounceproc.mta.hooks import Transaction

log = logging.getLogger("bounceproc.mta")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class OutgoingPreparer:
    def __init__(self, config: Callable[[], MtaConfig], *, verp_format: VerpFormat = DEFAULT,
                 public_url: str = "", secret: str | bytes = b"", signer: DkimSigner | None = None,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.config, self.verp_format = config, verp_format
        self.public_url, self.secret = public_url, secret
        self.signer = signer or DkimSigner()
        self.now = now
        self.signed = 0               # counters for `mta show status`
        self.unsigned_errors = 0

    async def prepare(self, tx: Transaction) -> list[Transaction]:
        cfg = self.config()
        msg = tx.jobs[0].msg
        source = cfg.source_for(msg.source_ip) if msg.source_ip else None
        verp = bool(source and (source.verp_default or source.verp_return_path)) and bool(tx.mail_from)
        headers = message_headers(tx.data)
        list_id = message_list_id(headers)
        unsub = bool(list_id and self.public_url and "list-unsubscribe" not in headers)
        txs = [tx]
        if (verp or unsub) and len(tx.jobs) > 1:
            txs = [Transaction(tx.queue, tx.settings, tx.mail_from, [j], tx.data) for j in tx.jobs]
        key = None
        if tx.settings.get("dkim_sign"):
            vm = cfg.vmtas.get(msg.vmta) if msg.vmta else None
            pool = cfg.pools.get(msg.pool) if msg.pool else None
            key = choose_key([vm.domain_keys if vm else [], pool.domain_keys if pool else [], cfg.domain_keys],
                             author_domain(headers))
        for t in txs:
            rcpt = t.jobs[0].rcpt
            if verp:
                t.mail_from = verp_sender(t.mail_from, rcpt, self.verp_format, source.verp_return_path)
            if unsub:
                fields = unsubscribe_fields(headers, rcpt, list_id, self.secret, self.public_url, self.now())
                t.data = add_headers(t.data, fields)
                t.headers_added += [n for n, _ in fields]
            if key is not None:
                t.data = self._sign(t, *key)
        return txs

    def _sign(self, t: Transaction, key, domain: str) -> bytes:
        try:
            signed = self.signer.sign(t.data, key, domain)
        except (KeyFileError, Exception) as exc:  # noqa: BLE001 - an unsigned message beats a stuck queue
            self.unsigned_errors += 1
            log.error("DKIM: not signed (%s, key %s): %s", domain, key.keyfile, exc)
            return t.data
        self.signed += 1
        t.headers_added.append("DKIM-Signature")
        return signed
