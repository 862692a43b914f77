"""Bounce and FBL mailboxes over IMAP and POP3: fetch, commit to the durable intake, then mark.

Adapter layer (stdlib imaplib / poplib). For senders whose feedback-loop reports and bounces land
in an existing mailbox (Microsoft 365 or Google Workspace `abuse@`, a hosted bounce mailbox), a
`MailboxReader` does what the SMTP sink does for mail that reaches it directly: each raw message
is committed to the `intake` table (kind "message", origin `mailbox:<user>@<host>/<folder>`) and
processed by the same engine. Only **after** that commit is the message marked on the server:

- IMAP with `move_to`: moved there (UID MOVE, or COPY + \\Deleted + UID EXPUNGE);
- IMAP without `move_to`: flagged `\\Seen` and with the keyword `$BounceprocDone` where the
  server keeps keywords (PERMANENTFLAGS has `\\*`), and later runs skip messages with it; where it
  does not, `\\Seen` alone marks it and only unseen messages are read;
- IMAP with `delete`: flagged \\Deleted and expunged (never before the commit);
- POP3: deleted after the commit (POP3 has no flags; that is the only mark it keeps).

A crash between the commit and the mark fetches the message again on restart; its intake
`batch_key` (`mailbox:<host>:<user>:<folder>:<uidvalidity>:<uid>`, or the POP3 UIDL) is already
stored, so it is stored once and marked then. A UIDVALIDITY change only changes the keys of
messages still unmarked, and their events keep their own keys (Message-ID), so nothing counts
twice. IMAP IDLE is used where the server offers it (woken by new mail, renewed every `poll`
seconds up to 25 minutes), polling otherwise. Connection and login failures are retried with
backoff (1 s doubling to 5 minutes); the password file and the OAuth2 token command are read on
every connection, so a rotated password or token is picked up without a restart. OAuth2
(XOAUTH2, for Microsoft 365 and Google) takes its access token from the standard output of
`oauth2_token_command`.
"""
from __future__ import annotations

import hashlib
import imaplib
import logging
import poplib
import re
import shlex
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

log = logging.getLogger("bounceproc.mailbox")

DONE_KEYWORD = "$BounceprocDone"
MAX_PER_ROUND = 500                  # messages fetched before the server is asked again
MAX_MESSAGE = 25 * 1024 * 1024
IDLE_MAX = 25 * 60                   # RFC 2177: re-issue IDLE at least every 29 minutes
BACKOFF_MAX = 300.0
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"UID (\d+)")


class MailboxError(ValueError):
    """A mailbox URL or option that cannot work (a clear one-line error for the operator)."""


@dataclass(frozen=True)
class MailboxSpec:
    scheme: str            # imap | imaps | pop3 | pop3s
    host: str
    port: int
    user: str
    folder: str = "INBOX"
    password: str = ""     # from the URL (discouraged) - password_file is read at each connection
    password_file: str = ""
    oauth2_token_command: str = ""
    move_to: str = ""
    delete: bool = False
    poll: float = 60.0
    ca_file: str = ""      # extra CA bundle for a private server's certificate
    starttls: bool = True  # imap:// and pop3:// upgrade with STARTTLS / STLS when offered

    @property
    def name(self) -> str:
        return f"{self.user}@{self.host}/{self.folder}" if self.scheme.startswith("imap") else f"{self.user}@{self.host}"

    @property
    def is_imap(self) -> bool:
        return self.scheme.startswith("imap")

    def secret(self) -> str:
        if self.password_file:
            try:
                with open(self.password_file, encoding="utf-8") as fh:
                    return fh.readline().rstrip("\r\n")
            except OSError as exc:
                raise MailboxError(f"{self.name}: cannot read password file {self.password_file}: "
                                   f"{exc.strerror or exc}") from None
        return self.password

    def oauth2_token(self) -> str:
        try:
            out = subprocess.run(shlex.split(self.oauth2_token_command), capture_output=True, text=True,
                                 timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise MailboxError(f"{self.name}: the OAuth2 token command failed: {exc}") from None
        token = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
        if not token:
            raise MailboxError(f"{self.name}: the OAuth2 token command printed no token")
        return token


_DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}


def parse_mailbox_url(url: str, **options) -> MailboxSpec:
    """`imaps://user@host[:port]/Folder`, `pop3s://user@host` (user may be URL-encoded:
    `abuse%40example.com@outlook.office365.com`)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise MailboxError(f"{url!r}: the scheme must be imaps, imap, pop3s or pop3")
    if not parts.hostname or not parts.username:
        raise MailboxError(f"{url!r}: say user@host, e.g. imaps://fbl%40example.com@imap.example.com/INBOX")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise MailboxError(f"{url!r}: the port is not a number") from None
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if not scheme.startswith("imap") and parts.path.strip("/"):
        raise MailboxError(f"{url!r}: POP3 has no folders")
    spec = MailboxSpec(scheme=scheme, host=parts.hostname, port=port, user=unquote(parts.username),
                       folder=folder, password=unquote(parts.password or ""),
                       **{k: v for k, v in options.items() if v is not None})
    if spec.move_to and not spec.is_imap:
        raise MailboxError(f"{url!r}: --move-to needs IMAP (POP3 deletes after the commit)")
    if spec.move_to and spec.delete:
        raise MailboxError(f"{url!r}: --move-to and --delete exclude each other")
    return spec


def _tls(spec: MailboxSpec) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if spec.ca_file:
        ctx.load_verify_locations(spec.ca_file)
    return ctx


def _xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


class MailboxReader:
    """Reads one mailbox until `stop` is set. `commit(raw, batch_key, origin) -> intake id`
    must return only once the message is durable (bootstrap.submit_intake does)."""

    def __init__(self, spec: MailboxSpec, commit, stop: threading.Event | None = None) -> None:
        self.spec = spec
        self.commit = commit
        self.stop = stop or threading.Event()
        self.stored = 0          # messages committed (including ones already stored before)
        self.rounds = 0
        self.last_error = ""

    @property
    def origin(self) -> str:
        return f"mailbox:{self.spec.name}"[:120]

    # ------------------------------------------------------------------------------ loop
    def run(self, once: bool = False) -> int:
        """Read until stopped (or one round with `once`); returns the messages stored."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                if self.spec.is_imap:
                    self._imap_session(once)
                else:
                    self._pop3_round()
                    self.rounds += 1
                    if not once:
                        self.stop.wait(self.spec.poll)
                backoff = 1.0
                if once:
                    return self.stored
            except MailboxError:
                raise
            except (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto, ssl.SSLError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if once:
                    raise
                log.warning("mailbox %s: %s; reconnecting in %.0f s", self.spec.name, self.last_error, backoff)
                self.stop.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
        return self.stored

    # ------------------------------------------------------------------------------ IMAP
    def _imap_connect(self) -> imaplib.IMAP4:
        s = self.spec
        if s.scheme == "imaps":
            conn = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=_tls(s), timeout=60)
        else:
            conn = imaplib.IMAP4(s.host, s.port, timeout=60)
            if s.starttls and "STARTTLS" in conn.capabilities:
                conn.starttls(_tls(s))
        if s.oauth2_token_command:
            token = s.oauth2_token()
            conn.authenticate("XOAUTH2", lambda _challenge: _xoauth2(s.user, token))
        else:
            conn.login(s.user, s.secret())
        typ, data = conn.capability()             # servers announce more (MOVE, UIDPLUS) after login
        if typ == "OK" and data and data[-1]:
            conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
        if s.move_to:
            conn.create(_quote(s.move_to))        # NO [ALREADYEXISTS] when it is there: fine
        return conn

    def _imap_session(self, once: bool) -> None:
        conn = self._imap_connect()
        try:
            typ, data = conn.select(_quote(self.spec.folder))
            if typ != "OK":
                raise MailboxError(f"{self.spec.name}: cannot select folder: {data}")
            uidvalidity = self._uidvalidity(conn)
            keywords = self._keeps_keywords(conn)
            while not self.stop.is_set():
                self._imap_round(conn, uidvalidity, keywords)
                self.rounds += 1
                if once:
                    return
                if "IDLE" in conn.capabilities:
                    self._idle(conn, min(IDLE_MAX, max(1.0, self.spec.poll)))
                else:
                    self.stop.wait(self.spec.poll)
                    conn.noop()
                now_valid = self._uidvalidity(conn, refresh=True)
                if now_valid != uidvalidity:
                    log.warning("mailbox %s: UIDVALIDITY changed %s -> %s", self.spec.name, uidvalidity, now_valid)
                    uidvalidity = now_valid
        finally:
            try:
                conn.logout()
            except (OSError, imaplib.IMAP4.error):
                pass

    def _uidvalidity(self, conn: imaplib.IMAP4, refresh: bool = False) -> str:
        if refresh:
            typ, data = conn.status(_quote(self.spec.folder), "(UIDVALIDITY)")
        else:
            typ, data = conn.response("UIDVALIDITY")
            if data and data[0]:
                return data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            typ, data = conn.status(_quote(self.spec.folder), "(UIDVALIDITY)")
        m = _UIDVALIDITY.search(b" ".join(d for d in data if isinstance(d, bytes)))
        return m.group(1).decode() if m else "0"

    def _keeps_keywords(self, conn: imaplib.IMAP4) -> bool:
        typ, data = conn.response("PERMANENTFLAGS")
        text = b" ".join(d for d in data if isinstance(d, bytes)) if data else b""
        return b"\\*" in text

    def _imap_round(self, conn: imaplib.IMAP4, uidvalidity: str, keywords: bool) -> None:
        criteria = "UNKEYWORD " + DONE_KEYWORD if keywords else "UNSEEN"
        if self.spec.move_to or self.spec.delete:
            criteria = "UNDELETED"            # whatever is still here has not been committed and moved
        typ, data = conn.uid("SEARCH", None, criteria)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"UID SEARCH failed: {data}")
        uids = [u for u in (data[0] or b"").split()][:MAX_PER_ROUND]
        for uid in uids:
            if self.stop.is_set():
                return
            typ, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched or () if isinstance(item, tuple)), None)
            if typ != "OK" or raw is None:
                continue                       # expunged by someone else meanwhile
            key = f"mailbox:{self.spec.host}:{self.spec.user}:{self.spec.folder}:{uidvalidity}:{uid.decode()}"
            self.commit(raw[:MAX_MESSAGE], key[:200], self.origin)
            self.stored += 1
            self._imap_mark(conn, uid, keywords)

    def _imap_mark(self, conn: imaplib.IMAP4, uid: bytes, keywords: bool) -> None:
        s = self.spec
        if s.move_to:
            if "MOVE" in conn.capabilities:
                typ, data = conn.uid("MOVE", uid, _quote(s.move_to))
                if typ == "OK":
                    return
                raise imaplib.IMAP4.error(f"UID MOVE to {s.move_to} failed: {data}")
            typ, data = conn.uid("COPY", uid, _quote(s.move_to))
            if typ != "OK":
                raise imaplib.IMAP4.error(f"UID COPY to {s.move_to} failed: {data}")
            self._expunge(conn, uid)
        elif s.delete:
            self._expunge(conn, uid)
        else:
            flags = "(\\Seen " + DONE_KEYWORD + ")" if keywords else "(\\Seen)"
            conn.uid("STORE", uid, "+FLAGS.SILENT", flags)

    def _expunge(self, conn: imaplib.IMAP4, uid: bytes) -> None:
        conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in conn.capabilities:
            conn.uid("EXPUNGE", uid)
        else:
            conn.expunge()

    def _idle(self, conn: imaplib.IMAP4, seconds: float) -> None:
        """RFC 2177 IDLE until new mail, `seconds`, or stop (checked every second)."""
        tag = conn._new_tag()                        # imaplib has no IDLE before Python 3.14
        conn.send(tag + b" IDLE\r\n")
        line = conn.readline()
        if not line.startswith(b"+"):
            raise imaplib.IMAP4.error(f"IDLE refused: {line[:200]!r}")
        sock = conn.socket()
        deadline = time.monotonic() + seconds
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                sock.settimeout(1.0)
                try:
                    line = conn.readline()
                except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                    continue
                if not line:
                    raise EOFError("server closed the connection during IDLE")
                if b"EXISTS" in line or b"RECENT" in line:
                    break
        finally:
            sock.settimeout(60)
            conn.send(b"DONE\r\n")
            while True:
                line = conn.readline()
                if not line:
                    raise EOFError("server closed the connection after IDLE")
                if line.startswith(tag):
                    break

    # ------------------------------------------------------------------------------ POP3
    def _pop3_round(self) -> None:
        s = self.spec
        if s.scheme == "pop3s":
            conn = poplib.POP3_SSL(s.host, s.port, context=_tls(s), timeout=60)
        else:
            conn = poplib.POP3(s.host, s.port, timeout=60)
            if s.starttls:
                try:
                    if "STLS" in conn.capa():
                        conn.stls(_tls(s))
                except poplib.error_proto:
                    pass
        try:
            if s.oauth2_token_command:
                import base64
                token = base64.b64encode(_xoauth2(s.user, s.oauth2_token())).decode()
                conn._shortcmd("AUTH XOAUTH2 " + token)
            else:
                conn.user(s.user)
                conn.pass_(s.secret())
            _, listing, _ = conn.uidl()
            for entry in listing[:MAX_PER_ROUND]:
                if self.stop.is_set():
                    break
                num, _, uidl = entry.decode("ascii", "replace").partition(" ")
                _, lines, _ = conn.retr(int(num))
                raw = b"\r\n".join(lines) + b"\r\n"
                self.commit(raw[:MAX_MESSAGE], f"pop3:{s.host}:{s.user}:{uidl}"[:200], self.origin)
                self.stored += 1
                conn.dele(int(num))
            conn.quit()                 # DELE takes effect only here (UPDATE state)
        except BaseException:
            try:
                conn.close()            # no QUIT: nothing is deleted; the next round fetches again
            except OSError:
                pass
            raise


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def intake_committer(settings, dispatch=None):
    """commit(raw, batch_key, origin) for these settings: the durable intake, like the sink.
    Embedded, committed ids go to `dispatch` (default: processed at once, entrypoints.dispatch)."""
    from bounceproc import bootstrap
    from bounceproc.entrypoints.dispatch import process_now
    inline = dispatch or process_now(settings)

    def commit(raw: bytes, batch_key: str, origin: str) -> int:
        # intake.batch_key holds 64 characters: the mailbox's own key is hashed to fit
        key = "mbx:" + hashlib.blake2b(batch_key.encode("utf-8", "replace"), digest_size=24).hexdigest()
        return bootstrap.submit_intake(settings, "message", raw, inline=inline, origin=origin, batch_key=key,
                                       meta={"mail_from": "", "rcpt_tos": [], "peer": origin, "mailbox_key": batch_key})
    return commit


def specs_from_settings(settings) -> list[MailboxSpec]:
    """The `[[mailboxes]]` of the config file: url plus the same options as the command's flags."""
    out = []
    for entry in settings.mailboxes:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or "url" not in entry:
            raise MailboxError(f"a [[mailboxes]] entry needs url = \"imaps://user@host/INBOX\": {entry!r}")
        opts = {k.replace("-", "_"): v for k, v in entry.items() if k != "url"}
        unknown = set(opts) - {"password_file", "oauth2_token_command", "move_to", "delete", "poll", "ca_file",
                               "starttls"}
        if unknown:
            raise MailboxError(f"mailbox {entry['url']}: unknown option(s) {', '.join(sorted(unknown))}")
        out.append(parse_mailbox_url(str(entry["url"]), **opts))
    return out
