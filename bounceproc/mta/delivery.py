"""One outbound SMTP connection (aiosmtplib): connect down the host levels, EHLO, opportunistic
STARTTLS, then transactions with a reply per recipient.

Adapter layer. In: host levels from the engine, the queue's DomainSettings, our EHLO name and
source address. Out: Connection.send(...) -> TxResult, one Reply per recipient, and whether the
connection was lost (the engine then defers those recipients and stops using it).

Host order: levels in order (MX preference); within a level in the given order; every address
of a host before the next host. A connection failure (refused, timeout, bad greeting) moves on
to the next address; when all fail, ConnectFailed carries the last error (`tq`).
`connect-timeout` bounds the TCP connect, `smtp-greeting-timeout` the banner, and
`data-send-timeout` the DATA phase.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from dataclasses import dataclass

import aiosmtplib

from bounceproc.domain.mta.config import DomainSettings
from bounceproc.mta.hooks import Reply

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


class ConnectFailed(Exception):
    def __init__(self, status: str, diag: str, remote: str) -> None:
        super().__init__(diag)
        self.status, self.diag, self.remote = status, diag, remote


@dataclass
class TxResult:
    replies: list[Reply]
    connection_lost: bool = False


def _reply(code: int, message: str, rcpt: str, host: str, stage: str) -> Reply:
    text = " ".join((message or "").split())
    m = _STATUS.search(text[:20])
    if m and m.group(1) == str(code)[0]:
        status = m.group(0)
    else:
        status = {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(code // 100, "4.0.0")
    return Reply(code, status, f"smtp;{code} {text}", rcpt, host, stage)


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False           # opportunistic TLS: encrypt, do not authenticate
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS = None


class Connection:
    def __init__(self, smtp: aiosmtplib.SMTP, host: str, ip: str, source_ip: str) -> None:
        self.smtp, self.remote_host, self.remote_ip, self.source_ip = smtp, host, ip, source_ip
        self.esmtp = ",".join(k.upper() for k in smtp.esmtp_extensions) if smtp.esmtp_extensions else ""

    async def send(self, mail_from: str, rcpts: list[str], data: bytes, s: DomainSettings) -> TxResult:
        host = self.remote_host
        stage = "mail"
        try:
            try:
                await self.smtp.mail(mail_from, timeout=s.smtp_greeting_timeout)
            except aiosmtplib.SMTPResponseException as exc:
                await self._rset()
                return TxResult([_reply(exc.code, exc.message, r, host, "mail") for r in rcpts])
            except ValueError as exc:     # an address aiosmtplib will not send
                return TxResult([Reply(553, "5.1.7", f"x-bounceproc;bad sender address: {exc}", r, host, "mail")
                                 for r in rcpts])
            stage = "rcpt"
            replies: list[Reply | None] = []
            accepted = []
            for r in rcpts:
                try:
                    resp = await self.smtp.rcpt(r, timeout=s.smtp_greeting_timeout)
                    replies.append(None)
                    accepted.append(len(replies) - 1)
                except aiosmtplib.SMTPResponseException as exc:
                    replies.append(_reply(exc.code, exc.message, r, host, "rcpt"))
                except ValueError as exc:
                    replies.append(Reply(553, "5.1.3", f"x-bounceproc;bad recipient address: {exc}", r, host, "rcpt"))
            if not accepted:
                await self._rset()
                return TxResult(replies)
            stage = "data"
            try:
                resp = await self.smtp.data(data, timeout=s.data_send_timeout)
                final = _reply(resp.code, resp.message, "", host, "data")
            except aiosmtplib.SMTPResponseException as exc:
                final = _reply(exc.code, exc.message, "", host, "data")
            for i in accepted:
                replies[i] = Reply(final.code, final.status, final.text, rcpts[i], host, "data")
            return TxResult(replies)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            what = "timeout" if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)) else "connection lost"
            diag = f"x-bounceproc;{what} during {stage.upper()} with {host}: {exc.__class__.__name__}"
            status = "4.4.1" if what == "timeout" else "4.4.2"
            return TxResult([Reply(451, status, diag, r, host, stage) for r in rcpts],
                            connection_lost=True)

    async def _rset(self) -> None:
        try:
            await self.smtp.rset()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            pass

    async def close(self) -> None:
        try:
            if self.smtp.is_connected:
                await asyncio.wait_for(self.smtp.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            self.smtp.close()


async def open_connection(levels, s: DomainSettings, helo: str, source_ip: str, resolver) -> Connection:
    global _TLS
    last = ConnectFailed("4.4.1", "x-bounceproc;no host to connect to", "")
    for level in levels:
        for host, port, literal in level:
            try:
                addrs = [host] if literal or _is_ip(host) else await resolver.addresses(host)
            except Exception as exc:     # DNS failure of one MX: try the next one
                last = ConnectFailed("4.4.3", f"x-bounceproc;cannot resolve {host}: {exc}", host)
                continue
            if not addrs:
                last = ConnectFailed("4.4.4", f"x-bounceproc;{host} has no address", host)
                continue
            for ip in addrs:
                smtp = aiosmtplib.SMTP(hostname=ip, port=port, local_hostname=helo or None,
                                       source_address=(source_ip, 0) if source_ip else None,
                                       timeout=s.smtp_greeting_timeout, start_tls=False, use_tls=False)
                try:
                    await asyncio.wait_for(smtp.connect(), s.connect_timeout + s.smtp_greeting_timeout)
                    await smtp.ehlo()
                    tls = False
                    if s.use_starttls and smtp.supports_extension("starttls"):
                        _TLS = _TLS or _tls_context()
                        await smtp.starttls(tls_context=_TLS)
                        tls = True
                    if s.require_starttls and not tls:
                        smtp.close()
                        last = ConnectFailed("4.7.10", f"x-bounceproc;{host} offers no STARTTLS "
                                             "(require-starttls)", host)
                        continue
                    return Connection(smtp, host if not literal else ip, ip, source_ip)
                except aiosmtplib.SMTPResponseException as exc:
                    smtp.close()
                    last = ConnectFailed(_reply(exc.code, exc.message, "", host, "connect").status,
                                         f"smtp;{exc.code} {' '.join(exc.message.split())}", host)
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
                    smtp.close()
                    last = ConnectFailed("4.4.1", f"x-bounceproc;cannot connect to {host} ({ip}:{port}): "
                                         f"{exc.__class__.__name__}", host)
    raise last


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
