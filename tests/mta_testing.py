"""Test helpers for the bundled MTA: fake remote MXes (aiosmtpd on loopback) and the `mxes`
fixture that stops them, a loopback DNS server (dnslib), config writing (`mta_config`, `route`),
bounded waits on conditions (bp_testing's). No sleeps as synchronisation."""
from __future__ import annotations

import csv
import glob
import io
import smtplib
import socket
import threading
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from bp_testing import free_port, wait_for  # noqa: F401 - the MTA tests import them from here


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes
    helo: str = ""
    tls: bool = False


@dataclass
class FakeMx:
    """An aiosmtpd server playing a remote MX. `mode`: accept, reject (550 5.1.1), tempfail
    (451 4.2.0 always), tempfail-once (451 per recipient first time, then accept), drop-data
    (closes the connection mid-DATA)."""
    mode: str = "accept"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    active: int = 0
    peak: int = 0
    connections: int = 0
    seen: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls_context: object = None     # an ssl.SSLContext: offer STARTTLS

    def start(self) -> "FakeMx":
        self.port = self.port or free_port()
        mx = self

        class _Tracked(SMTP):
            def connection_made(self, transport):
                with mx.lock:
                    mx.active += 1
                    mx.connections += 1
                    mx.peak = max(mx.peak, mx.active)
                super().connection_made(transport)

            def connection_lost(self, exc):
                with mx.lock:
                    mx.active -= 1
                super().connection_lost(exc)

        class _Ctl(Controller):
            def factory(self):
                return _Tracked(self.handler, hostname="mx.test", tls_context=mx.tls_context)

        self.controller = _Ctl(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        with self.lock:                  # the controller's own start-up probe is not a client
            self.connections = self.peak = 0
        return self

    def stop(self) -> None:
        self.controller.stop()

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.mode == "reject":
            return "550 5.1.1 <%s>: no such user" % address
        if self.mode == "tempfail":
            return "451 4.2.0 try again later"
        if self.mode == "tempfail-once":
            with self.lock:
                n = self.seen.get(address, 0)
                self.seen[address] = n + 1
            if n == 0:
                return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "drop-data":
            server.transport.close()
            return "421 closing"
        with self.lock:
            self.received.append(Received("" if envelope.mail_from == "<>" else envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                          session.host_name or "", session.ssl is not None))
        return "250 2.0.0 Ok"

    def rcpts(self) -> list[str]:
        with self.lock:
            return [r for m in self.received for r in m.rcpts]


class SilentServer:
    """Accepts TCP connections and never says anything (greeting timeout)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


class DnsServer:
    """A UDP DNS server on loopback answering from a zone dict: {(name, type): [rdata...]}."""

    def __init__(self, records: dict) -> None:
        from dnslib.server import DNSServer
        self.records = records
        self.port = free_port()
        self.server = DNSServer(self, port=self.port, address="127.0.0.1")
        self.server.start_thread()

    def resolve(self, request, handler):
        from dnslib import QTYPE, RCODE, RR, TXT, A, MX
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        known = any(n == qname for n, _ in self.records)
        for rdata in self.records.get((qname, qtype), []):
            if qtype == "MX":
                pref, host = rdata
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MX(host, pref), ttl=60))
            elif qtype == "A":
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(rdata), ttl=60))
            elif qtype == "TXT":
                chunks = [rdata[i:i + 255].encode() for i in range(0, len(rdata), 255)]
                reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def dkim_dnsfunc(self, name, timeout=5):
        """dkimpy's `dnsfunc`: the TXT record of `name` from this server (dnspython), or None."""
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers, r.port, r.lifetime = ["127.0.0.1"], self.port, timeout
        name = name.decode() if isinstance(name, bytes) else name
        try:
            answer = r.resolve(name.rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    def stop(self) -> None:
        self.server.stop()


def self_signed_context(tmp_path):
    """A server SSLContext with a throwaway self-signed certificate (openssl CLI)."""
    import shutil
    import ssl
    import subprocess
    if not shutil.which("openssl"):
        return None
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=mx.test"], check=True, capture_output=True, timeout=60)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def send(port: int, mail_from: str, rcpts: list[str], body: bytes | str = b"Subject: hi\r\n\r\nhello\r\n",
         host: str = "127.0.0.1", source: str | None = None):
    with smtplib.SMTP(host, port, timeout=30, source_address=(source, 0) if source else None) as s:
        return s.sendmail(mail_from, rcpts, body)


def acct_records(directory, rtype: str | None = None) -> list[dict]:
    """The accounting records the MTA has written so far under `directory` (acct-*.csv), of type
    `rtype` (all if None). The writer is appending while this reads: each file is read in one go
    and only its complete lines count (a read can see a write half done, even the header's)."""
    out = []
    for p in sorted(glob.glob(str(directory / "acct-*.csv"))):
        with open(p, newline="", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        text = text[:text.rfind("\n") + 1]
        if not text.startswith("type,"):
            continue
        out += [r for r in csv.DictReader(io.StringIO(text)) if rtype is None or r["type"] == rtype]
    return out


def write_config(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def mta_config(tmp_path, port: int, body: str = "", *, head: str = "", source: str = "", acct: str = "",
               host_name: str = "mta.test") -> str:
    """Write tmp_path/mta.conf: a listener on 127.0.0.1:`port` (plus `head` lines), a spool in
    tmp_path/spool, relaying for 127.0.0.1 (plus `source` lines), with `acct` ("d,b,t"...) an
    acct file tmp_path/acct/acct.csv, then `body` (domains, patterns...). Returns its path."""
    acct_file = f"<acct-file {tmp_path}/acct/acct.csv>\n  records {acct}\n</acct-file>\n" if acct else ""
    return write_config(tmp_path / "mta.conf", f"smtp-listener 127.0.0.1:{port}\nhost-name {host_name}\n{head}"
                        f"<spool {tmp_path}/spool>\n</spool>\n"
                        f"<source 127.0.0.1>\n  always-allow-relaying yes\n{source}</source>\n{acct_file}{body}")


def route(domain: str, port: int, extra: str = "") -> str:
    """A <domain> block sending `domain`'s mail to a fake MX on loopback."""
    return f"<domain {domain}>\n  smtp-hosts [127.0.0.1]:{port}\n{extra}</domain>\n"


@pytest.fixture
def mxes():
    """make(mode="accept", cls=FakeMx) -> a started fake MX, stopped after the test."""
    made = []

    def make(mode: str = "accept", cls=None) -> FakeMx:
        mx = (cls or FakeMx)(mode).start()
        made.append(mx)
        return mx
    yield make
    for mx in made:
        mx.stop()
