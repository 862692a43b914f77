"""Overfitting detector: the names particular to a corpus file must not decide its verdicts.

Every message of the labelled corpus (../shared/corpus/maildir, read in place) is rewritten with its
particular names replaced, consistently in headers, bodies (base64 text parts decoded and
re-encoded) and diagnostics: recipient / sender local parts (kijitora@, but also userunknown@,
filtered@, mailboxfull@, which must not be read as causes) and domains, the host names of the
reporting / remote MTAs, IP addresses, Message-IDs (their local part and domain) and dates (shifted
by a fixed number of days). Names that carry meaning per reference/wordings.md stay: the receivers'
own domains and MX names (those the `receiver` patterns of the rules name, the providers of
wordings.md §1, the consumer domains of providers.toml) and the blocklists and gateways §2-3 name.
Each recipient's (reason, hard) must then be what it was for the original message (its address
mapped through the rewrite). A difference is either an overfit (a rule or reader step keyed on a
corpus name: fix it in the rules / reader) or a dependence listed in EXPECTED_CHANGES with its reason.

A second pass also rewrites the receiver-meaningful names; which verdicts change there is reported
(the receiver-specific rules at work), not asserted: run this file with `-s` to see them.

Test code, not product code. Skips where the corpus is absent and fails under CI (tests/conftest.py).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
import re
import tomllib
from pathlib import Path

import pytest

from bounceproc.domain.parse.message import parse_message

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
WORDINGS = ROOT.parent / "shared" / "reference" / "wordings.md"
RULES = ROOT / "bounceproc" / "domain" / "rules"

# file -> why its verdicts may change when its particular names are replaced. Nothing else may.
_HOTMAIL = ("the recipient domain is hotmail.example.com, the corpus's scrubbed form of hotmail.com: the "
            "brand is the receiver's name, and w-mailbox-unavailable-trusted trusts Outlook.com / Hotmail's "
            "'550 Requested action not taken: mailbox unavailable' as an unknown user (wordings.md 1.2, §6); "
            "as site.test the generic meaning (filtered, soft) applies")
EXPECTED_CHANGES: dict[str, str] = {
    "maildir/bsd/lhost-outlook-08.eml": _HOTMAIL,
    "maildir/bsd/rhost-outlook-08.eml": _HOTMAIL,
}

# Local parts that name a role, not a person: every system has them (not particular to a file).
ROLES = {"postmaster", "mailer-daemon", "mailer_daemon", "maildaemon", "mail-daemon", "abuse", "root", "daemon",
         "nobody", "noreply", "no-reply", "hostmaster", "webmaster", "double-bounce", "mailadmin", "post_master"}
# Words that are also keywords of a report format (SES notificationType values, ARF feedback
# types): a local part spelled like one (complaint@simulator.amazonses.com) is replaced inside its
# address only, never where the word stands alone.
FORMAT_WORDS = {"complaint", "bounce", "delivery", "abuse", "fraud", "virus", "other", "not-spam", "auth-failure"}
# A report's blanked-out name (xxxx@, ****.net) is not a name: the reader drops such addresses.
_REDACTED = re.compile(r"^(?:[x*#][x*#.\-_]{2,}|.*redacted.*|\[.*\])$", re.I)

# Receivers (and blocklists / gateways) whose names carry meaning per reference/wordings.md, as
# registrable-domain patterns; completed below by the `receiver` patterns of the rules, the
# domains of providers.toml and the domain names wordings.md itself writes.
MEANINGFUL = [
    r"google\.com", r"googlemail\.com", r"gmail\.com", r"1e100\.net", r"outlook\.com", r"hotmail\.[a-z.]+",
    r"live\.[a-z.]+", r"msn\.com", r"office365\.com", r"microsoft\.com", r"yahoo\.[a-z.]+", r"yahoodns\.net",
    r"yahooinc\.com", r"ymail\.com", r"aol\.[a-z.]+", r"aim\.com", r"icloud\.com", r"me\.com", r"mac\.com",
    r"apple\.com", r"qq\.com", r"foxmail\.com", r"163\.com", r"126\.com", r"netease\.com", r"yeah\.net",
    r"coremail\.cn", r"docomo\.ne\.jp", r"ezweb\.ne\.jp", r"au\.com", r"kddi\.com", r"softbank\.(?:ne\.)?jp",
    r"mail\.ru", r"bk\.ru", r"inbox\.ru", r"list\.ru", r"yandex\.[a-z.]+", r"ya\.ru", r"zoho\.[a-z.]+",
    r"zeptomail\.[a-z.]+", r"comcast\.net", r"cox\.net", r"att\.net", r"bellsouth\.net", r"sbcglobal\.net",
    r"verizon\.net", r"orange\.fr", r"wanadoo\.fr", r"gmx\.[a-z.]+", r"web\.de", r"t-online\.de", r"ionos\.[a-z.]+",
    r"1and1\.[a-z.]+", r"1und1\.de", r"kundenserver\.de", r"freenet\.de", r"interia\.pl", r"spamhaus\.org",
    r"spamcop\.net", r"barracudacentral\.org", r"barracuda\.com", r"messagelabs\.com", r"mimecast\.[a-z.]+",
    r"proofpoint\.com", r"manitu\.net", r"sorbs\.net", r"abuseat\.org",
    r"trendmicro\.com", r"uribl\.com", r"surbl\.org",
]
_NAME_OF_A_DOMAIN = re.compile(r"\b((?:[a-z0-9-]+\.)+[a-z]{2,})\b", re.I)
_DOC_NAMES = re.compile(r"(?:^|\.)(?:example|invalid|test|localhost|local|localdomain)(?:\.|$)", re.I)
_GTLDS = {"com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "arpa", "local", "localdomain", "lan",
          "internal", "test", "invalid", "example", "corp", "home", "mobi", "name", "pro", "aero", "coop",
          "asia", "tel", "jobs", "travel", "xyz", "online", "site", "cloud", "email", "global", "systems"}
# (a MIME delimiter's "--" may stand before an address or host; a single "-" glues it to a word)
_ADDRESS = re.compile(r"(?<![\w.%+=#])(?<![^-]-)([a-z0-9][\w.%+=#-]*)"
                      r"@([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+)", re.I)
_AUTH_KEY = re.compile(r"^((?:header|smtp|policy)\.[a-z]+=(?:3d)?)(.*)$", re.I)
_HOST = re.compile(r"(?<![\w@.])(?<![^-]-)((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,24}))"
                   r"(?![\w]|-(?!-)|\.[a-z0-9])", re.I)
_IPV4 = re.compile(r"(?<![\w.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?::(?:\d{1,3}\.){3}\d{1,3})?)(?![\w:])", re.I)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_DATE = re.compile(r"(?:\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?\b(\d{1,2})\s+(" + "|".join(_MONTHS)
                   + r")[a-z]*\s+((?:19|20)\d\d)\b", re.I)
_ISO_DATE = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)(?=\b|T)")
_SHIFT = dt.timedelta(days=1000)
_WORD = re.compile(r"[a-z][a-z0-9-]*", re.I)
_B64_LINE = re.compile(r"^[A-Za-z0-9+/=]{4,}\s*$")
_CTE_B64 = re.compile(r"^content-transfer-encoding:\s*base64\s*$", re.I)


def _meaningful_patterns() -> re.Pattern:
    pats = list(MEANINGFUL)
    for name in ("wordings.toml", "bounces.toml"):
        for rule in tomllib.loads((RULES / name).read_text(encoding="utf-8")).get("rule", []):
            if rule.get("receiver"):
                pats.append(rule["receiver"])
    for domains in tomllib.loads((RULES / "providers.toml").read_text(encoding="utf-8"))["providers"].values():
        pats += [re.escape(d) for d in domains]
    if WORDINGS.is_file():
        for name in _NAME_OF_A_DOMAIN.findall(WORDINGS.read_text(encoding="utf-8")):
            if not _DOC_NAMES.search(name) and name.rsplit(".", 1)[-1].lower() in _GTLDS | {"de", "fr", "ru", "jp",
                                                                                          "pl", "ch", "cn", "uk"}:
                pats.append(re.escape(name.lower()))
    return re.compile(r"(?:^|\.)(?:" + "|".join(f"(?:{p})" for p in pats) + r")$", re.I)


def _wording_words() -> set[str]:
    """Words the reference wordings use: a local part that is one of them is not replaced where it
    stands alone (only inside its address), so the wording around it keeps its words."""
    if not WORDINGS.is_file():
        return set()
    frags = re.findall(r"`([^`]+)`", WORDINGS.read_text(encoding="utf-8"))
    return {w.lower() for f in frags for w in _WORD.findall(f)}


class Neutraliser:
    """Rewrites one message's particular names, the same name always to the same neutral one."""

    def __init__(self, keep: re.Pattern | None, words: set[str]):
        self.keep, self.words = keep, words
        self.locals: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        self.hosts: dict[str, str] = {}
        self.ips: dict[str, str] = {}

    # ------------------------------------------------------------------ names
    def kept(self, host: str) -> bool:
        """A receiver's own name: its registrable domain is meaningful (`hotmail.example.com`, the
        corpus's scrubbed form, is not: the brand is only a label of an example domain)."""
        host = host.lower().rstrip(".")
        return (self.keep is not None and not _DOC_NAMES.search(host)
                and bool(self.keep.search(self._registrable(host)[1])))

    def local(self, name: str) -> str:
        key = name.lower()
        if key in ROLES or _REDACTED.match(key):
            return name
        if key not in self.locals:
            self.locals[key] = f"jdoe{len(self.locals) + 1}"
        return self.locals[key]

    def _registrable(self, host: str) -> tuple[str, str]:
        labels = host.split(".")
        n = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "ne", "or", "ac", "com", "net",
                                                                              "org", "go", "ad", "gr", "ed"} else 2
        return ".".join(labels[:-n]), ".".join(labels[-n:])

    def host(self, name: str) -> str:
        key = name.lower().rstrip(".")
        if self.kept(key) or _REDACTED.match(self._registrable(key)[1].split(".")[0]):
            return name
        if key not in self.hosts:
            sub, dom = self._registrable(key)
            if dom not in self.domains:
                self.domains[dom] = f"site{len(self.domains) + 1}.test"
            self.hosts[key] = (f"h{len(self.hosts) + 1}." if sub else "") + self.domains[dom]
        return self.hosts[key] + ("." if name.endswith(".") else "")

    def ip(self, text: str) -> str:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return text
        if addr.is_loopback or addr.is_unspecified:
            return text
        if text not in self.ips:
            n = len(self.ips) + 1
            self.ips[text] = f"198.51.100.{n % 250 + 1}" if addr.version == 4 else f"2001:db8::{n:x}"
        return self.ips[text]

    def address(self, addr: str) -> str:
        local, _, domain = addr.rpartition("@")
        return f"{self.local(local)}@{self.host(domain)}" if local else addr

    # ------------------------------------------------------------------ text
    def _address_sub(self, m: re.Match) -> str:
        local, domain = m.group(1), m.group(2)
        prefix = ""
        k = _AUTH_KEY.match(local)
        if k:
            prefix, local = k.group(1), k.group(2)
        if not local:
            return m.group(0)
        return f"{prefix}{self.local(local)}@{self.host(domain)}"

    def _host_sub(self, m: re.Match) -> str:
        tld = m.group(2).lower()
        name = m.group(1)
        if not (len(tld) == 2 or tld in _GTLDS or name.lower() in self.hosts or _DOC_NAMES.search(name)):
            return m.group(0)
        return self.host(name)

    def _ipv6_sub(self, m: re.Match) -> str:
        text = m.group(1)
        if "::" not in text and text.count(":") < 7:
            return text
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return text
        return self.ip(text)

    @staticmethod
    def _date_sub(m: re.Match) -> str:
        wd, day, mon, year = m.groups()
        try:
            d = dt.date(int(year), _MONTHS.index(mon[:3].title()) + 1, int(day)) + _SHIFT
        except ValueError:
            return m.group(0)
        mon_out = _MONTHS[d.month - 1] if len(mon) == 3 else d.strftime("%B")
        day_out = f"{d.day:02d}" if len(day) == 2 else str(d.day)
        out = f"{day_out} {mon_out} {d.year}"
        return f"{_DAYS[d.weekday()]}, {out}" if wd else out

    @staticmethod
    def _iso_sub(m: re.Match) -> str:
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + _SHIFT
        except ValueError:
            return m.group(0)
        return d.isoformat()

    def collect(self, text: str) -> None:
        """First pass: learn the local parts (so a bare one can be replaced where it stands alone)."""
        for m in _ADDRESS.finditer(text):
            k = _AUTH_KEY.match(m.group(1))
            self.local(k.group(2) if k else m.group(1))

    def text(self, text: str) -> str:
        text = _ADDRESS.sub(self._address_sub, text)
        text = _IPV4.sub(lambda m: self.ip(m.group(1)), text)
        text = _IPV6.sub(self._ipv6_sub, text)
        text = _HOST.sub(self._host_sub, text)
        bare = [k for k in self.locals if len(k) >= 4 and k not in self.words | FORMAT_WORDS
                and not k.startswith("jdoe")]
        if bare:
            rx = re.compile(r"(?<![\w.+=-])(" + "|".join(re.escape(k) for k in sorted(bare, key=len, reverse=True))
                            + r")(?![\w+=-]|@)", re.I)
            text = rx.sub(lambda m: self.locals[m.group(1).lower()], text)
        text = _DATE.sub(self._date_sub, text)
        return _ISO_DATE.sub(self._iso_sub, text)

    # ------------------------------------------------------------------ message
    def _base64_blocks(self, lines: list[str]):
        """(start, end) line ranges of base64 bodies (after a `Content-Transfer-Encoding: base64`)."""
        i, pending = 0, False
        while i < len(lines):
            if _CTE_B64.match(lines[i]):
                pending = True
            elif pending and not lines[i].strip():
                j = i + 1
                while j < len(lines) and _B64_LINE.match(lines[j]):
                    j += 1
                if j > i + 1:
                    yield i + 1, j
                pending, i = False, j
                continue
            i += 1

    def message(self, raw: bytes) -> bytes:
        text = raw.decode("latin-1")
        lines = text.split("\n")
        decoded = {}
        for start, end in self._base64_blocks(lines):
            try:
                body = base64.b64decode("".join(x.strip() for x in lines[start:end]), validate=True)
            except (binascii.Error, ValueError):
                continue
            if body.count(b"\0") or sum(b < 9 for b in body) > len(body) // 50:
                continue   # not text
            decoded[(start, end)] = body.decode("latin-1")
        self.collect(text)
        for body in decoded.values():
            self.collect(body)
        out, pos = [], 0
        for (start, end), body in sorted(decoded.items()):
            out.append(self.text("\n".join(lines[pos:start]) + "\n"))
            width = len(lines[start].rstrip()) or 76
            enc = base64.b64encode(self.text(body).encode("latin-1")).decode("ascii")
            eol = "\r" if lines[start].endswith("\r") else ""
            out.append("\n".join(enc[k:k + width] + eol for k in range(0, len(enc), width)) + "\n")
            pos = end
        out.append(self.text("\n".join(lines[pos:])))
        return "".join(out).encode("latin-1")


def _verdicts(raw: bytes) -> list[tuple[str, str, bool]]:
    return [(v.address.lower(), v.reason, v.hard) for v in parse_message(raw).recipients]


def _changes(keep: re.Pattern | None, words: set[str]) -> dict[str, tuple[list, list]]:
    """file -> (verdicts expected after the rewrite, verdicts found) where they differ."""
    changed = {}
    for path in sorted((CORPUS / "maildir").glob("*/*.eml")):
        raw = path.read_bytes()
        before = _verdicts(raw)
        neutral = Neutraliser(keep, words)
        after = _verdicts(neutral.message(raw))
        expected = sorted((neutral.text(a).lower(), r, h) for a, r, h in before)
        if sorted(after) != expected:
            changed[str(path.relative_to(CORPUS))] = (expected, sorted(after))
    return changed


def _describe(changes: dict) -> str:
    rows = []
    for rel, (expected, found) in changes.items():
        rows.append(f"{rel}: {expected} -> {found}")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def particular_changes():
    """The changes when only the file's particular names are rewritten (computed once)."""
    for need, what in ((CORPUS / "maildir", "the labelled corpus"), (WORDINGS, "reference/wordings.md")):
        if not need.exists():
            if os.environ.get("CI"):
                pytest.fail(f"{what} is absent at {need} (CI must have it)")
            pytest.skip(f"{what} is not at {need} (the corpus and references ship beside the project as ../shared)")
    return _changes(_meaningful_patterns(), _wording_words())


def test_the_rewrite_replaces_particular_names_and_keeps_meaningful_ones():
    n = Neutraliser(_meaningful_patterns(), _wording_words())
    raw = (b"From: MAILER-DAEMON@mx.example.jp\nTo: kijitora@example.jp\nDate: Sat, 21 Jun 2014 18:35:16 +0000\n"
           b"Message-Id: <20140621.0A35@smtp.example.com>\n\n<userunknown@example.co.jp>: host "
           b"gmail-smtp-in.l.google.com[192.0.2.153] said: 550 5.1.1 The email account that you tried to reach "
           b"does not exist. userunknown ... User unknown; kijitora [2001:db8:1::5] at 18:35:16\n")
    out = n.message(raw).decode()
    assert "example" not in out and "kijitora" not in out and "userunknown" not in out
    assert "MAILER-DAEMON@" in out and "gmail-smtp-in.l.google.com" in out and "18:35:16" in out
    assert "Fri, 17 Mar 2017" in out and "192.0.2.153" not in out and "User unknown" in out
    assert n.address("userunknown@example.co.jp") in out


def test_verdicts_do_not_depend_on_the_names_particular_to_a_file(particular_changes):
    changes = particular_changes
    unexpected = {k: v for k, v in changes.items() if k not in EXPECTED_CHANGES}
    assert unexpected == {}, "verdicts changed when only the file's own names were replaced:\n" + _describe(unexpected)
    stale = sorted(set(EXPECTED_CHANGES) - set(changes))
    assert stale == [], f"EXPECTED_CHANGES lists files whose verdicts no longer change: {stale}"


def test_report_verdicts_that_follow_receiver_names(particular_changes, capsys):
    """Not an assertion: the verdicts that change when the receivers' own names (and blocklist
    names) are replaced too are the receiver-specific rules at work: each should be grounded in
    wordings.md. Printed (run with -s); files already in EXPECTED_CHANGES are marked."""
    changes = _changes(None, _wording_words())
    rows = _describe(changes).splitlines()
    marked = [r + ("   [EXPECTED_CHANGES]" if r.split(":", 1)[0] in particular_changes else "") for r in rows]
    with capsys.disabled():
        print(f"\n{len(changes)} file(s) whose verdicts follow a receiver's or blocklist's name:")
        print("\n".join(marked))
