"""A real Dovecot IMAP / POP3 server on loopback for the mailbox tests (no tests here).

`Dovecot()` writes its own configuration, users file and Maildir in a directory of its own
(world-searchable: Dovecot's auth and mail processes run as other users), starts
`dovecot -F` on free loopback ports (plain IMAP and POP3 with STARTTLS / STLS offered, and IMAPS /
POP3S with a certificate the test makes) and stops it, by PID, at `stop()`, removing its directory. Messages are put in
the Maildir directly (`deliver`), and read back per folder (`folder_count`). Skips with the
reason when Dovecot is not installed (CI installs dovecot-imapd and dovecot-pop3d).
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bp_testing import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def available() -> bool:
    return os.path.exists(DOVECOT)


def _self_signed(cert: Path, key: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)


class Dovecot:
    def __init__(self, user: str = "fbl@example.net", password: str = "secret-1",
                 oauth2_introspection_url: str = "") -> None:
        self.oauth2_url = oauth2_introspection_url
        self.root = root = Path(tempfile.mkdtemp(prefix="bp-dovecot-"))
        os.chmod(root, 0o755)
        self.user, self.password = user, password
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = (free_port() for _ in range(4))
        self.mail_owner = pwd.getpwnam("mail")
        self.cert, self.key = root / "cert.pem", root / "key.pem"
        self.proc: subprocess.Popen | None = None

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def write_config(self) -> None:
        r = self.root
        for d in ("run", "state", "mail", "home"):
            (r / d).mkdir(parents=True, exist_ok=True)
        if not self.cert.exists():
            _self_signed(self.cert, self.key)
        (r / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        uid, gid = self.mail_owner.pw_uid, self.mail_owner.pw_gid
        (r / "dovecot.conf").write_text(f"""
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
instance_name = bp-test-{uuid.uuid4().hex[:6]}
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_url else ""}
mail_location = maildir:{r}/mail/%u
first_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {gid}
default_login_user = dovenull
default_internal_user = dovecot
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/users
}}
{self._oauth2_passdb()}userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
""")
        os.system(f"chown -R {uid}:{gid} {r}/mail {r}/home")

    def _oauth2_passdb(self) -> str:
        """XOAUTH2 / OAUTHBEARER tokens checked by POSTing them to the test's introspection server."""
        if not self.oauth2_url:
            return ""
        (self.root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {self.oauth2_url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {self.root}/oauth2.conf\n}}\n"

    def set_password(self, password: str) -> None:
        self.password = password
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{password}::::::\n")

    def start(self) -> "Dovecot":
        self.write_config()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.proc.stderr.read().decode(errors="replace")[-2000:]
                                   + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start: " + self.log())

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        p = self.root / "dovecot.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def deliver(self, raw: bytes, folder: str = "") -> None:
        base = self.maildir / (f".{folder}" if folder else "")
        for d in ("tmp", "new", "cur"):
            (base / d).mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.{uuid.uuid4().hex[:8]}.test"
        (base / "tmp" / name).write_bytes(raw)
        os.rename(base / "tmp" / name, base / "new" / name)
        os.system(f"chown -R {self.mail_owner.pw_uid}:{self.mail_owner.pw_gid} {self.root}/mail")

    def folder_count(self, folder: str = "") -> int:
        base = self.maildir / (f".{folder}" if folder else "")
        return sum(1 for d in ("new", "cur") if (base / d).exists() for f in (base / d).iterdir()
                   if "T" not in f.name.rpartition(",")[2] or ":2," not in f.name)
