"""Turn one returned message (DSN, legacy bounce, ARF report, auto-reply) into per-recipient verdicts.

Domain layer: pure; stdlib and flufl.bounce only.
In: the raw bytes of a message the sink received, the SMTP RCPT TO it arrived for
(`envelope_to`: a VERP return path names the recipient better than any body parse), an optional
classifier (user rules) and VERP format. Out: a `Report` whose `kind` is "dsn", "arf",
"autoreply", "delivered", "not-bounce" or "unknown" (with `note` saying why), and one `Verdict`
per recipient: address, codes, diagnostic, reason/category/hard/rule from classify.py, the
parser that read it and an `explain` line.

Order of readers: ARF (message/feedback-report and ISP variants) -> RFC 3464 delivery-status
fields -> a Sieve reject's MDN (RFC 5429) -> auto-reply headers -> legacy notification text (our
section scan, flufl.bounce for addresses as a fallback). Auto-replies yield one Verdict with
reason "vacation" and delivery notices one with reason "delivered"; neither is a failure.
parse_message never raises: a bug or hostile input gives kind "unknown" and the reason in `note`.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bounceproc.domain.classify import (Classifier, category_for, default_classifier, find_reply_code, find_status,
                                        is_hard, normalise_status, pseudo_status, strip_type)
from bounceproc.domain import precedence
from bounceproc.domain.lazy_regex import lazy
from bounceproc.domain.parse import arf as arf_mod
from bounceproc.domain.parse import autoreply, dsn, legacy
from bounceproc.domain.parse.mime import (ENCLOSED_TYPES, MAX_BYTES, MAX_HEADER_LINES, Part, decode_header, header_lines,
                                          normalise_newlines, parse_entity, parse_message_bytes)
from bounceproc.domain.parse.stamp import TRACKING_HEADER, decode_stamp
from bounceproc.domain.parse.verp import DEFAULT as DEFAULT_VERP
from bounceproc.domain.parse.verp import VerpFormat, decode_verp

MAX_ENCLOSED = 500_000
KINDS = ("dsn", "arf", "autoreply", "delivered", "not-bounce", "unknown")
_ENCLOSED = ENCLOSED_TYPES
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_MDN_TYPES = ("message/disposition-notification", "message/global-disposition-notification")
# RFC 5429 (Sieve reject): an MDN sent automatically whose disposition is "deleted".
_MDN_DELETED = re.compile(r"^\s*automatic-action\s*/[^;]*;\s*deleted\b", re.I)
_REJECTED = re.compile(r"reject", re.I)
_BOUNCE_FROM = lazy(r"mailer-daemon|post_?master|mail delivery|mail-daemon|maildaemon|"
                    r"delivery subsystem|mail administrator|mailadmin|bounce|nobody@|"
                    r"system administrator|daemon@|returned|microsoftexchange[0-9a-f]{8}|mail (?:system|router|transport)|"
                    r"courier mail server|delivery notification", re.I)
_BOUNCE_SUBJECT = lazy(
    r"undeliver|deliver(?:y|ed)? (?:status|failure|failed|notification|report|problem|incomplete)|"
    r"returned mail|return(?:ed)? to sender|failure notice|mail delivery failed|could not be delivered|"
    r"non[- ]?deliver|not delivered|delivery has failed|rejected|bounce|warning: could not send|"
    r"mail system error|unzustellbar|nicht zustellbar|failed delivery|mail error|delivery error|"
    r"message not delivered|permanent error|error sending|delivery fail|undelivered|"
    r"returned message|no se puede entregar|non remis|mail could not|notice of delivery|"
    r"status notification|dsn|unable to deliver|mail failed|returning to sender|delayed|"
    r"warning: message|mail(?:er)? error|error notification|failure notification|mail failure|"
    r"\u30a8\u30e9\u30fc|\u4e0d\u9054|\u914d\u4fe1\u5931\u6557|\u914d\u9001\u5931\u6557|"   # エラー 不達 配信失敗 配送失敗
    r"\u672a\u914d\u9054|non consegnato|nicht zugestellt|niet afgeleverd|n\u00e3o entregue|"
    r"non recapitabile|onbestelbaar|niet bezorgd|nie mo\u017cna dostarczy\u0107|niedostarczon|olevererbar|"
    r"kan ikke leveres|teslim edilemedi|nedoru\u010diteln|n\u00e3o \u00e9 poss\u00edvel entregar|no entregado|"
    r"[\u00e9e]chec de (?:la )?remise|"   # Exchange's "Undeliverable" in Italian, Dutch, Polish, Swedish, ...
    r"\u9000\u4fe1|\u6295\u9012\u5931\u8d25|\u65e0\u6cd5\u6295\u9012|"   # 退信 投递失败 无法投递
    r"non recapitat[oa]|"   # Italian (Libero / Virgilio) "Messaggio non recapitato"
    r"impossibile (?:recapitare|consegnare)|mancato recapito|recapito fallito|"   # Italian
    r"error de entrega|fallo (?:en la|de) entrega|entrega fallida|falha (?:na|de) entrega|"   # Spanish, Portuguese
    r"non distribuable|erreur de (?:distribution|livraison|remise)|message non d[\u00e9e]livr[\u00e9e]|"   # French
    r"zustellfehler|bezorging mislukt|"   # German, Dutch
    r"failed mail|unsuccessful delivery|(?:message|mail) (?:could )?not (?:be )?sent|could not send|"
    r"could not deliver|fail(?:ure|ed) (?:to )?deliver|(?:error|problem) delivering|estado de entrega|"
    r"niedostarczaln|nedoru\u010dite\u013en|\u043e\u0448\u0438\u0431\u043a\u0430 \u0434\u043e\u0441\u0442\u0430\u0432\u043a\u0438|"   # Polish, Slovak, ошибка доставки
    r"zustellung fehlgeschlagen|fehlgeschlagene zustellung|devoluci\u00f3n de correo|k\u00e9zbes\u00edthetetlen|"
    r"levering mislukt|toimitus ep\u00e4onnistui|\u914d\u4fe1\u4e0d\u80fd|\u9001\u4fe1\u5931\u6557|"   # 配信不能 送信失敗
    r"\uc804\ub2ec ?\uc2e4\ud328|"   # Korean 전달 실패
    r"\ubc1c\uc1a1 ?\uc2e4\ud328|\uc804\uc1a1 ?\uc2e4\ud328|\ubc30\ub2ec ?\uc2e4\ud328|\ubc18\uc1a1|"   # Korean 발송 실패 전송 실패 배달 실패 반송
    r"\u043d\u0435 \u0434\u043e\u0441\u0442\u0430\u0432\u043b\u0435\u043d|\u043d\u0435\u0434\u043e\u0441\u0442\u0430\u0432\u043b\u0435\u043d",   # не доставлен(о) недоставлен(о)
    re.I)
_BOUNCE_BODY = lazy(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered|undeliverable|"
    r"delivery (?:has )?failed|delivery to the following|unable to deliver|wasn't able to deliver|"
    r"permanent (?:error|failure)|following address(?:es)? failed|did not reach|not be delivered|"
    r"user unknown|no such user|returned to sender|message could not|failed permanently|"
    r"transcript of session follows|"
    r"delivery status notification|could not deliver|delivery error|temporary failure|"
    r"giving up|delivery problem|error occurred|has been rejected|was rejected|not delivered|"
    r"not yet been delivered|no valid recipients|failed addresses|invalid (?:user|recipient) address|"
    r"requested action not taken|mailbox (?:is )?full|could not be sent|incorrectly constructed|"
    # The MTAs' own opening lines (qmail, Exim, Postfix, Sendmail) and more notice wordings
    r"this is the qmail-send program|created automatically by mail delivery software|"
    r"this is the mail system at host|the original message was received at|"
    r"recipients? did not receive|delivery to \S+ failed|unable to be delivered|"
    r"recipient address rejected|"
    # "could not be delivered" in German, French, Spanish, Portuguese, Italian, Dutch, Swedish,
    # Polish, Turkish and Korean notices
    r"empf\u00e4nger nicht erreicht|no lleg\u00f3 a|n.est pas parvenu|"   # Exchange: did not reach (de, es, fr)
    r"nicht (?:\S+ ){0,4}zugestellt werden|n.a pas pu \u00eatre (?:remis|d\u00e9livr\u00e9|distribu\u00e9)|"
    r"no (?:pudo ser|ha podido ser) entregad|no se (?:pudo|ha podido) entregar|n\u00e3o (?:p\u00f4de ser|foi poss\u00edvel) entreg|"
    r"non \u00e8 stato possibile (?:recapitare|consegnare)|kon niet worden (?:afgeleverd|bezorgd)|"
    r"kunde inte levereras|nie (?:mog\u0142a|mo\u017ce) zosta\u0107 dostarczon|iletilemedi|"
    r"\uc804\uc1a1\ud560 \uc218 \uc5c6|\ubc30\ub2ec\ud560 \uc218 \uc5c6|"   # 전송할 수 없 배달할 수 없
    r"\u9001\u4fe1\u3067\u304d\u307e\u305b\u3093|\u914d\u9001\u3067\u304d\u307e\u305b\u3093|"   # 送信できません 配送できません
    r"\u914d\u4fe1\u3067\u304d\u307e\u305b\u3093|\u5c4a\u304d\u307e\u305b\u3093|"   # 配信できません 届きません
    r"(?:\u914d\u9001|\u914d\u4fe1|\u9001\u4fe1)\u306b\u5931\u6557|"   # 配送に失敗 配信に失敗 送信に失敗
    r"\u672a\u80fd(?:\u6210\u529f)?\u6295\u9012|\u65e0\u6cd5(?:\u6295\u9012|\u9001\u8fbe)|\u6295\u9012\u5931\u8d25|"   # 未能(成功)投递 无法投递/送达 投递失败
    r"\u672a\u80fd(?:\u6210\u529f)?\u9001\u8fbe|\u53d1\u9001\u5931\u8d25|\u88ab\u9000\u56de|\u9000\u4fe1|"   # 未能(成功)送达 发送失败 被退回 退信
    r"entrega (?:del mensaje |del correo )?(?:fall\u00f3|ha fallado)|"   # Spanish: la entrega (del mensaje) falló
    r"\u043d\u0435 (?:\u043c\u043e\u0436\u0435\u0442 \u0431\u044b\u0442\u044c |\u0431\u044b\u043b\u043e )?\u0434\u043e\u0441\u0442\u0430\u0432\u043b\u0435\u043d"   # не (может быть |было )доставлен
    r"|\u043d\u0435 \u0443\u0434\u0430\u043b\u043e\u0441\u044c \u0434\u043e\u0441\u0442\u0430\u0432\u0438\u0442\u044c"   # не удалось доставить
    r"|non (?:\u00e8 stat[oa] |pu\u00f2 essere )?(?:recapitat[oa]|consegnat[oa])"   # Italian: (non è stato) recapitato / consegnato
    r"|nemohl[ao]? b\u00fdt doru\u010den|nebyl[ao]? doru\u010den|nelze doru\u010dit"   # Czech: nemohla být doručena, nebyla doručena
    r"|\uc804\ub2ec\ub418\uc9c0 \uc54a|\uc804\uc1a1\ub418\uc9c0 \ubabb|\ubc1c\uc1a1\ub418\uc9c0 \uc54a|\ubc30\ub2ec\ub418\uc9c0 \uc54a",   # Korean 전달되지 않 전송되지 못 발송되지 않 배달되지 않
    re.I)
# A mailing-list manager refusing a post (not a member, moderator rejection, no permission):
# the list address refused the sender (taxonomy: rejected / filtered, soft). Its notices come
# from the list's admin / owner / request address, or carry the manager's own header.
_LIST_MANAGER_HEADERS = ("x-mlserver", "x-ml-name", "x-mailman-version", "x-ezmlm-version", "x-listserver")
_LIST_MANAGER_FROM = lazy(r"[-.+](?:admin|owner|request|bounces?)@|\bowner-[^@\s]*@|\blistserv@|\bmajordomo@", re.I)
_LIST_REFUSAL = lazy(
    r"\bnot (?:a )?member(?:s)? of (?:this|the) (?:mailing )?list|\bnon-?member|members[- ]only|"
    r"only (?:list )?members (?:can|may) post|(?:not (?:allowed|authori[sz]ed|permitted)|no permission|"
    r"do not have permission|don.t have permission) to (?:post|send (?:\S+ ){0,2}to (?:this|the)(?: \S+)? list)|"
    r"deemed inappropriate by the moderator|"
    r"forbidden from posting|rejected by (?:the )?(?:list )?moderator|post(?:ing)? (?:was )?rejected", re.I)
# ...but a post held for the moderator has not been refused (yet): not a bounce.
_LIST_HOLD = lazy(r"\bbeing held\b|\bheld (?:for|until|pending)|awaits? (?:the )?(?:list )?moderator|"
                        r"requires? (?:the )?(?:list )?moderator|pending (?:moderator )?approval", re.I)
# The failures were temporary; the report is final because the retry period ran out (Exim).
_RETRIES_EXHAUSTED = re.compile(r"retry timeout exceeded|retry time not reached|have been failing for a long time", re.I)
_FORWARDED = re.compile(r"^[ \t]*(?:begin forwarded message:|-{3,} ?forwarded message ?-{3,})[ \t]*\n", re.I | re.M)
_HEADER_FIELD = re.compile(r"[!-9;-~]+:")
_TEMPORARY_SUBJECT = re.compile(r"delay|warning|deferred|will retry|still trying|temporar", re.I)
# A notice's own stock phrases, never a cause: its subject ("Mail delivery failed: returning message
# to sender", "Mail System Error - Returned Mail") and the sentences around its recipient list ("why
# each recipient was rejected", "a message you sent with the following header fields"). Removed from
# the notice's text when that text decides, so that a reply which alone says nothing ("550 Message
# rejected") is not read as the sender refused, a block, a system error or a header fault.
_STOCK_PHRASES_SOURCE = (r"(?:returning message|returned|return(?:ed)? mail|sent back) to (?:the )?sender|"
                         r"the reasons? given by the (?:remote )?server (?:are|is) included to help you determine why"
                         r"(?: each)? recipients? (?:was|were) rejected|with the following header fields|"
                         r"mail system error\W+returned mail")
_STOCK_PHRASES = lazy(_STOCK_PHRASES_SOURCE, re.I)
# The same, searched case-sensitively in the lowercased text (a third of the cost of re.I).
_STOCK_PHRASES_LOW = lazy(_STOCK_PHRASES_SOURCE)


def without_stock_phrases(text: str) -> str:
    """`text` with the stock phrases of notices (_STOCK_PHRASES) replaced by a space."""
    low = text.lower()
    if len(low) != len(text):       # a letter whose lower case is longer: positions would shift
        return _STOCK_PHRASES.sub(" ", text)
    out, last = [], 0
    for m in _STOCK_PHRASES_LOW.finditer(low):
        out.append(text[last:m.start()])
        out.append(" ")
        last = m.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class Verdict:
    address: str = ""
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    action: str = ""
    reason: str = ""
    category: str = ""
    hard: bool = False
    feedback_type: str = ""
    rule: str = ""
    parser: str = ""
    explain: str = ""
    user_agent: str = ""
    arrival_date: str = ""
    source_ip: str = ""
    reported_domain: str = ""
    original_mail_from: str = ""
    original_message_id: str = ""
    list_id: str = ""
    job_id: str = ""
    recovered_by: str = ""


@dataclass(frozen=True)
class Report:
    kind: str
    recipients: tuple[Verdict, ...] = ()
    note: str = ""
    cuts: tuple[str, ...] = ()     # what a limit left unread (the intake quarantines the reasons)


def parse_message(raw: bytes, *, envelope_to: Sequence[str] = (), classifier: Classifier | None = None,
                  verp: VerpFormat | None = None) -> Report:
    """Read one returned message; never raises (see module docstring)."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if not raw or not raw.strip():
            return Report("unknown", (), "empty message")
        reader = _Reader(raw, envelope_to, classifier or default_classifier(), verp or DEFAULT_VERP)
        report = reader.read()
        cuts = tuple(reader.cuts) + _size_cuts(raw)
        return dataclasses.replace(report, cuts=cuts) if cuts else report
    except RecursionError:
        return Report("unknown", (), "message nested too deeply")
    except Exception as exc:  # noqa: BLE001 - the stream must go on; the note names the bug
        return Report("unknown", (), f"internal error: {type(exc).__name__}: {exc}"[:300])


def _size_cuts(raw: bytes) -> tuple[str, ...]:
    """The message-wide limits `raw` went past (mime.MAX_BYTES, mime.MAX_HEADER_LINES)."""
    cuts = []
    if len(raw) > MAX_BYTES:
        cuts.append(f"message over {MAX_BYTES} bytes ({len(raw)}): the rest was not read")
    if raw.count(b"\n", 0, min(len(raw), MAX_BYTES)) > MAX_HEADER_LINES:
        n = header_lines(normalise_newlines(raw[:MAX_BYTES]))
        if n > MAX_HEADER_LINES:
            cuts.append(f"header over {MAX_HEADER_LINES} lines ({n}): later header fields were not read")
    return tuple(cuts)


_REDACTED_LOCAL = re.compile(r"^(?:[x*#][x*#.\-_]{2,}|.*redacted.*|\[.*\])$", re.I)


def is_redacted(address: str) -> bool:
    """An address an ISP blanked out in a report: `redacted@…`, `xxxxxxx@…`, `****@…`, `[removed]@…`."""
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    return not at or not local or bool(_REDACTED_LOCAL.match(local))


def top_level_parts(root: Part):
    """Parts of the message itself, not those of a returned original enclosed in it."""
    stack = [root]
    while stack:
        p = stack.pop()
        yield p
        if p.ctype not in _ENCLOSED:
            stack.extend(reversed(p.children))


# A leaf part of a multipart notice whose own header block is a message's (Received, Message-ID,
# Return-Path, or From with Subject / Date) and that no message/rfc822 wraps: some gateways return
# the original that way ("X1"-style Japanese gateways). It is the original, not notice text.
_MESSAGE_FIELDS = ("received", "message-id", "return-path")


def bare_original(p: Part, root: Part) -> bool:
    if p is root or p.children or p.ctype != "text/plain":
        return False
    keys = p.all_headers().keys()
    return any(k in keys for k in _MESSAGE_FIELDS) or ("from" in keys and ("subject" in keys or "date" in keys))


def enclosed_original(root: Part) -> Part | None:
    for p in top_level_parts(root):
        if p.ctype in _ENCLOSED and p.children:
            return p.children[0]
    for p in top_level_parts(root):
        if bare_original(p, root):
            return p
    return None


def _one_line(text: str, limit: int = 1000) -> str:
    """Whitespace runs folded to one space, stripped, cut at `limit`."""
    # str.split() breaks on exactly the characters regex \s matches (both use Unicode's
    # whitespace), at a fifth of the cost of re.sub(r"\s+", " ", text).strip().
    if len(text) > 4 * limit:
        # Folding only shortens, so a long enough folded prefix starts the same as the whole.
        head = " ".join(text[:4 * limit].split())
        if len(head) >= limit:
            return head[:limit]
    return " ".join(text.split())[:limit]


class _Reader:
    def __init__(self, raw: bytes, envelope_to: Sequence[str], classifier: Classifier, verp: VerpFormat):
        self.root = parse_message_bytes(raw)
        self.raw = raw
        self.classifier = classifier
        self.verp = verp
        self.envelope_to = [e for e in envelope_to if isinstance(e, str)][:10]
        self._original: Part | None | bool = False
        self._forwarded: Report | None | bool = False
        self._text: str | None = None
        self._note: str | None = None
        self.depth = 0
        self.cuts: list[str] = []       # limits this message went past (Report.cuts)

    # ------------------------------------------------------------------ shared pieces
    def _nested(self, root: Part) -> _Reader:
        """A reader of a message enclosed in this one (same settings, its own caches, one level
        deeper: a nested reader does not look for forwarded notices again)."""
        inner = _Reader.__new__(_Reader)
        inner.__dict__.update(self.__dict__)
        inner.root, inner._original, inner._forwarded, inner._text, inner._note = root, False, None, None, None
        inner.depth = self.depth + 1
        return inner

    def original(self) -> Part | None:
        """The returned / reported original message, enclosed as a part or inline after a cut line."""
        if self._original is False:
            orig = enclosed_original(self.root)
            if orig is None:
                text = self.body_text()
                cut = self.notification_text()
                rest = text[len(cut):]
                if rest:
                    lines = rest.split("\n", 1)
                    # The cut line is the original's first header field, or a label line to skip
                    # (Exchange's "Original message headers:", whose "name" has spaces).
                    body = rest if _HEADER_FIELD.match(lines[0]) else (lines[1] if len(lines) > 1 else "")
                    orig = parse_entity(body.lstrip("\n").encode("utf-8", "replace")[:200000], 3)
                    if not orig.all_headers():
                        orig = None
            self._original = orig
        return self._original  # type: ignore[return-value]

    def body_text(self) -> str:
        """Text of the notification parts (plain preferred, HTML stripped as fallback)."""
        if self._text is None:
            plain, html = [], []
            for p in top_level_parts(self.root):
                if p.children or p.ctype in _ENCLOSED or p.ctype in _DSN_TYPES or bare_original(p, self.root):
                    continue
                if p.ctype == "text/plain":
                    plain.append(p.text())
                elif p.ctype == "text/html" and not plain:
                    html.append(_strip_html(p.text()))
                if sum(map(len, plain)) > legacy.MAX_TEXT:
                    break
            self._text = "\n".join(plain or html)[:legacy.MAX_TEXT]
        return self._text

    def notification_text(self) -> str:
        """body_text() up to where the returned original starts (legacy.notification_text)."""
        if self._note is None:
            self._note = legacy.notification_text(self.body_text())
        return self._note

    def notice_evidence(self) -> str:
        """The notification's text and subject without the notice's stock phrases: what decides when
        a recipient's own diagnostic does not."""
        return without_stock_phrases(_one_line(self.notification_text() + " " + self.subject()))

    def subject(self) -> str:
        """The notice's Subject as text: RFC 2047 encoded words decoded (a gateway that encodes an
        ASCII subject, "=?UTF-8?B?...?=", says the same as one that does not)."""
        return decode_header(self.root.get("subject"))

    def own_addresses(self) -> set[str]:
        """Addresses of the bounce itself (its From / To / Reply-To): never failed recipients."""
        out = set()
        for h in ("from", "to", "reply-to", "return-path", "sender"):
            for v in self.root.get_all(h):
                out.update(a.lower() for a in legacy.ADDRESS.findall(v))
        return out

    def original_senders(self) -> set[str]:
        """Addresses that sent the returned original (its From / Sender / Return-Path) and that it
        was not also addressed to: a remote reply quoting the sender ("The message from
        (<news@example.net>) ... may consider spam", fixtures/dsn/barracuda-spam-profile.eml) does
        not name another failed recipient."""
        orig = self.original()
        if orig is None:
            return set()
        senders = set()
        for h in ("from", "sender", "return-path"):
            senders.update(a.lower() for a in legacy.ADDRESS.findall(orig.get(h)))
        return senders - self.original_targets()

    def original_targets(self) -> set[str]:
        """The returned original's To / Cc addresses (empty when no original is enclosed)."""
        orig = self.original()
        if orig is None:
            return set()
        return {a.lower() for h in ("to", "cc") for a in legacy.ADDRESS.findall(orig.get(h))}

    def tracking(self) -> dict[str, str]:
        """Message-ID, list and job of the enclosed original (headers or our stamp)."""
        orig = self.original()
        info = {"original_message_id": "", "list_id": "", "job_id": ""}
        if orig is None:
            return info
        info["original_message_id"] = orig.get("message-id").strip()[:300]
        info["list_id"] = decode_header(orig.get("list-id")).strip()[:300]
        info["job_id"] = (orig.get("x-job") or orig.get("x-job-id")).strip()[:300]
        stamp = decode_stamp(orig.get(TRACKING_HEADER))
        if stamp:
            info["list_id"] = info["list_id"] or stamp["l"]
            info["job_id"] = info["job_id"] or stamp["j"]
        return info

    def recover_address(self, mail_from: str = "", use_envelope: bool = True) -> tuple[str, str]:
        """An address for a report that names none: the VERP envelope (bounces only: an FBL
        mailbox's own +tag is not a recipient), our stamp, a VERP mail-from / Return-Path or
        List-Unsubscribe of the original, the original's single To."""
        for e in (self.envelope_to if use_envelope else ()):
            a = decode_verp(e, self.verp)
            if a:
                return a, "verp"
        if mail_from:
            a = decode_verp(mail_from, self.verp)
            if a:
                return a, "verp"
        orig = self.original()
        if orig is None:
            return "", ""
        stamp = decode_stamp(orig.get(TRACKING_HEADER))
        if stamp and stamp["r"]:
            return stamp["r"], "stamp"
        rp = legacy.ADDRESS.findall(orig.get("return-path"))
        if rp:
            a = decode_verp(rp[0], self.verp)
            if a:
                return a, "verp"
        for m in re.finditer(r"<mailto:([^>?]+)", orig.get("list-unsubscribe")):
            a = decode_verp(m.group(1), self.verp)
            if a:
                return a, "list-unsubscribe"
        to = legacy.ADDRESS.findall(orig.get("to"))
        if len(to) == 1 and not is_redacted(to[0]):
            return to[0], "original-to"
        return "", ""

    def envelope_recipient(self) -> str:
        for e in self.envelope_to:
            a = decode_verp(e, self.verp)
            if a:
                return a
        return ""

    def transcript_stage(self, address: str) -> str:
        """The command a Sendmail-style transcript shows before the reply naming `address`
        (">>> DATA" then "<<< 550 5.7.1 <address>... User unknown"), for reports that list
        several recipients above one transcript; see fixtures/dsn/sendmail-data-filter.eml."""
        if not address or ">>> " not in self.body_text():
            return ""
        text = self.notification_text()
        low = text.lower()
        at = low.find("<<< ", 0)
        pos = -1
        needle = address.lower()
        while at >= 0:
            end = low.find("\n", at)
            end = len(low) if end < 0 else end
            if needle in low[at:end]:
                pos = at
                break
            at = low.find("<<< ", end)
        if pos < 0:
            return ""
        start = text.rfind(">>> ", 0, pos)
        if start < 0 or "while talking to" in low[start:pos]:
            return ""   # the reply came from another host's session than the last command shown
        return smtp_stage(text[start:pos])

    def verdict(self, address: str, status: str, reply: str, diag: str, mta: str, action: str,
                parser: str, recovered_by: str, fallback_text: str = "", whole_notice=None, shown: str = "",
                section: str = "", **extra) -> Verdict:
        """One recipient's verdict: classify `diag`, else `fallback_text` (its section of the notice),
        else `whole_notice()` (called only then: the notice of a one-recipient report). `shown`, if
        given, is the diagnostic reported instead of `diag` (the server's reply within it); `section`,
        if given, is the text around `diag` that may name the SMTP stage."""
        temporary = action == "delayed" or status.startswith("4") or (not status and reply.startswith("4")) or (
            not status and bool(_RETRIES_EXHAUSTED.search(diag)))
        stage = smtp_stage(diag) or smtp_stage(section) or self.transcript_stage(address)
        if not stage and smtp_stage(fallback_text) != "mail":
            # The notice's stage, when the recipient's own text names none; but a MAIL FROM named
            # only elsewhere in the notice belongs to another session (a Sendmail transcript of
            # several hosts), and would make the refusal the sender's (precedence step 1).
            stage = smtp_stage(fallback_text)
        if stage:
            # The SMTP command the server refused is evidence too: "user unknown" after DATA
            # comes from a content filter, a refusal after MAIL FROM is about the sender.
            diag = f"{diag} (smtp stage: {stage})"
            fallback_text = f"{fallback_text} (smtp stage: {stage})" if fallback_text else ""
        notes = f" (smtp stage: {stage})" if stage else ""
        # A notice that quotes a refusal without any RFC 3463 code (in its fields or in the text
        # classified): typical of filtering gateways relaying another server's bare reply (rule
        # text-unknown-relayed-without-code).
        codeless = not status and parser in ("dsn", "legacy")

        def noted(text: str) -> str:
            return f"{text} (notice: no status code)" if codeless and text and not find_status(text) else text

        diag = noted(diag)
        fallback_text = noted(fallback_text)
        failed = action != "delivered"

        def readable(text: str) -> str:
            # A 2.x.x code in a failure report is a command that succeeded (a transcript's "250
            # 2.1.0 Ok" before a refusal that may carry no code), never the outcome: not evidence.
            return _SUCCESS_CODE.sub("", text) if failed and not status and "2." in text else text

        def classify(text: str):
            return self.classifier.classify(status, reply, readable(text), mta, address)

        c = classify(diag)
        used = diag
        if c.reason in ("undefined", "onhold") and fallback_text and fallback_text != diag:
            c2 = classify(fallback_text)
            if c2.reason != "undefined":
                c, used = c2, fallback_text
        if c.reason in ("undefined", "onhold") and whole_notice is not None:
            text = whole_notice()
            if text and noted(text + notes) not in (diag, fallback_text):
                text = noted(text + notes)
                c3 = classify(text)
                if c3.reason not in ("undefined", "onhold"):
                    c, used = c3, text
        found = status or (failure_status(used) if failed else find_status(used))
        if not reply and "(local mailer: " not in diag:
            reply = find_reply_code(strip_type(used))
        code = found or pseudo_status(c.reason, temporary or reply.startswith("4"))
        if c.reason == "undefined":
            # A failure report we cannot explain: taxonomy "onhold" (too little to decide).
            code = found or pseudo_status("onhold", temporary)
            c = type(c)("onhold", "other", False, c.rule)
        # A report that the message is still queued (Action: delayed) is never final, whatever its
        # code: the policy reads it as a deferral and suppresses nobody, and the verdict says so.
        hard = c.hard and is_hard(c.reason, code, reply) and action != "delayed"
        explain = self.classifier.explain(status, reply, readable(used), mta, address)
        if precedence.expired_by_action(c.reason, code, action, used, reply):
            # taxonomy.md precedence 4: the last deferral's code in a final failure = expiry.
            explain += f" [precedence 4-action-failed: Action failed + {code or reply} -> expired, not {c.reason}]"
            code = code or pseudo_status("expired", temporary)
            c = type(c)("expired", category_for("expired"), False, c.rule, "4-action-failed")
            hard = False
        return Verdict(address=address, status=code, reply_code=reply,
                       diagnostic=_one_line(shown) if shown else _one_line(_NOTES.sub("", diag)),
                       remote_mta=mta, action=action, reason=c.reason, category=c.category, hard=hard,
                       rule=c.rule, parser=parser, explain=explain, recovered_by=recovered_by, **extra)

    # ------------------------------------------------------------------ readers
    def read(self) -> Report:
        report = self.read_arf()
        if report is None:
            report = self.read_ses()
        if report is None:
            report = self.read_dsn()
        if report is None:
            report = self.read_enclosed_report()
        if report is None:
            report = self.read_mdn_reject()
        if report is None:
            reason = autoreply.autoreply_reason(self.root.all_headers())
            if reason:
                return self.autoreply(reason)
        if report is None:
            report = self.read_legacy()
            if report.kind == "not-bounce" and self.root.get("auto-submitted").strip().lower().startswith("auto-replied"):
                # RFC 3834's own mark, on a message that is no bounce notice (those carry it too,
                # so it is asked only now): a reply of a responder, whatever its subject.
                return self.autoreply("auto-submitted: auto-replied")
        if report.kind in ("dsn", "arf", "delivered") and report.recipients:
            report = self.add_tracking(report)
        return report

    def autoreply(self, reason: str) -> Report:
        sender = legacy.ADDRESS.findall(self.root.get("from"))
        return Report("autoreply", (Verdict(address=sender[0] if sender else "", reason="vacation", category="other",
                                            rule="autoreply", parser="autoreply", explain=reason),), reason)

    def read_mdn_reject(self) -> Report | None:
        """A Sieve `reject` (RFC 5429): the recipient's own filter refused the message and says so
        in an MDN sent automatically with the disposition "deleted" (Dovecot Pigeonhole, Cyrus;
        fixtures/dsn/dovecot-sieve-reject-mdn.eml). The recipient filtered us: `filtered`, soft.
        Read receipts and "deleted without being read" notices are not rejections: the notice must
        say "reject" in its Auto-Submitted field (`auto-replied (rejected)`), subject or text."""
        if self.root.ctype != "multipart/report" or \
                self.root.params.get("report-type", "").lower() != "disposition-notification":
            return None
        part = next((p for p in top_level_parts(self.root) if p.ctype in _MDN_TYPES), None)
        if part is None:
            return None
        fields, blocks = dsn.parse_fields(part.text())
        for b in blocks:
            for k, v in b.items():
                fields.setdefault(k, v)
        if not _MDN_DELETED.match(fields.get("disposition", "")):
            return None
        text = self.notification_text()
        if not any(_REJECTED.search(t) for t in (self.root.get("auto-submitted"), self.subject(), text[:2000])):
            return None
        address, how = dsn.recipient_of(fields)
        if not address:
            address, how = self.recover_address()
        verdict = Verdict(address=address, status=pseudo_status("filtered"), diagnostic=_one_line(text),
                          remote_mta=fields.get("reporting-ua", "").split(";")[0].strip()[:255],
                          action="failed", reason="filtered", category=category_for("filtered"),
                          rule="mdn-sieve-reject", parser="mdn", recovered_by=how,
                          explain="RFC 5429 reject: an MDN sent automatically with the disposition 'deleted'")
        return Report("dsn", (verdict,))

    def read_enclosed_report(self) -> Report | None:
        """A gateway that wraps another system's DSN as message/rfc822 under its own short notice
        (corpus:maildir/bsd/lhost-x5-01.eml): read the enclosed delivery-status report."""
        if self.depth:
            return None
        orig = enclosed_original(self.root)
        if orig is None:
            return None
        ctype = orig.get("content-type").lower()
        if "multipart/report" not in ctype or "delivery-status" not in ctype:
            return None
        # The enclosed message is kept lazy (headers only); split it now, bounded as any message.
        head = orig._head if orig._head else b""
        root = parse_entity(head + b"\n\n" + orig.body[:MAX_ENCLOSED], 2)
        inner = self._nested(root)
        report = inner.read_dsn()
        return report if report is not None and report.recipients else None

    def add_tracking(self, report: Report) -> Report:
        info = self.tracking()
        if not any(info.values()):
            return report
        # Verdict(**dict) is several times cheaper than dataclasses.replace on 22 fields.
        return Report(report.kind, tuple(Verdict(**{**v.__dict__, **{k: getattr(v, k) or val for k, val in info.items()}})
                                         for v in report.recipients), report.note)

    def read_arf(self) -> Report | None:
        rep = arf_mod.parse_arf(self.root)
        if rep is None:
            return None
        if rep.original is not None:
            self._original = rep.original
        extra = dict(feedback_type=rep.feedback_type, user_agent=rep.user_agent[:200],
                     arrival_date=rep.arrival_date[:100], source_ip=rep.source_ip[:100],
                     reported_domain=rep.reported_domain[:255], original_mail_from=rep.original_mail_from[:320])
        addrs = [(a, "original-rcpt-to") for a in rep.recipients if "@" in a and not is_redacted(a)]
        if not addrs:
            a, how = self.recover_address(rep.original_mail_from, use_envelope=False)
            addrs = [(a, how)]
        verdicts = tuple(Verdict(address=a, reason="feedback", category="other", rule="arf-" + rep.variant,
                                 parser="arf", explain=f"{rep.variant} report, feedback type {rep.feedback_type}",
                                 recovered_by=how, **extra) for a, how in addrs)
        return Report("arf", verdicts)

    def read_ses(self) -> Report | None:
        """Amazon SES notifications (Bounce / Complaint / Delivery) sent as JSON by mail: the
        message's text, or its first text/plain part where a gateway made a multipart of it (to
        add a footer or a disclaimer part)."""
        if self.root.ctype.startswith("text/"):
            text = self.root.text()
        elif self.root.ctype in ("multipart/mixed", "multipart/alternative"):
            text = next((p.text() for p in top_level_parts(self.root)
                         if p.ctype == "text/plain" and not p.children), "")
        else:
            return None
        data = legacy.ses_notification(text[:300000])
        if data is None:
            return None
        kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
        if kind == "complaint":
            c = data.get("complaint") or {}
            ftype = str(c.get("complaintFeedbackType") or "abuse")
            return Report("arf", tuple(Verdict(address=str(r.get("emailAddress", "")), reason="feedback",
                                               category="other", feedback_type=ftype, rule="ses-complaint",
                                               parser="ses", user_agent=str(c.get("userAgent", ""))[:200],
                                               explain="Amazon SES complaint notification",
                                               recovered_by="ses")
                                       for r in (c.get("complainedRecipients") or [])[:legacy.MAX_RECIPIENTS]
                                       if isinstance(r, dict)))
        if kind == "delivery":
            d = data.get("delivery") or {}
            resp = str(d.get("smtpResponse", ""))
            return Report("delivered", tuple(Verdict(address=str(a), status=find_status(resp), action="delivered",
                                                     diagnostic=resp[:1000], remote_mta=str(d.get("remoteMtaIp", "")),
                                                     reason="delivered", category="success", rule="ses-delivery",
                                                     parser="ses", explain="Amazon SES delivery notification",
                                                     recovered_by="ses")
                                             for a in (d.get("recipients") or [])[:legacy.MAX_RECIPIENTS]))
        if kind == "bounce":
            b = data.get("bounce") or {}
            verdicts = []
            for r in (b.get("bouncedRecipients") or [])[:legacy.MAX_RECIPIENTS]:
                if not isinstance(r, dict):
                    continue
                diag = strip_type(str(r.get("diagnosticCode", "")))
                status = find_status(diag) or normalise_status(str(r.get("status", "")))
                temporary = str(b.get("bounceType", "")).lower() == "transient"
                verdicts.append(self.verdict(str(r.get("emailAddress", "")), status, find_reply_code(diag), diag,
                                             str(b.get("reportingMTA", "")), "delayed" if temporary else "failed",
                                             "ses", "ses"))
            return Report("dsn", tuple(verdicts)) if verdicts else None
        return None

    def read_dsn(self) -> Report | None:
        blocks: list[dict[str, str]] = []
        message_fields: dict[str, str] = {}
        for p in top_level_parts(self.root):
            if p.ctype in _DSN_TYPES or (p.ctype == "text/plain" and not p.children and
                                          dsn.looks_like_dsn(p.text())):
                msg, b = dsn.parse_fields(p.text())
                if len(b) >= dsn.MAX_RECIPIENTS:
                    self.cuts.append(f"delivery-status part with {dsn.MAX_RECIPIENTS} recipient blocks, "
                                     "the limit: any after them were not read")
                blocks.extend(b)
                for k, v in msg.items():
                    message_fields.setdefault(k, v)
                if p.ctype in _DSN_TYPES and b:
                    break
        if not blocks:
            return None
        own = self.own_addresses()
        preamble, secs = legacy.sections(legacy.without_quoted_headers(self.notification_text()), own)
        by_addr = {a.lower(): s for a, s in secs}
        verdicts = []
        failed = False
        sent_to = _addresses_we_sent_to(blocks)
        for f in blocks:
            addr, how = dsn.recipient_of(f)
            final = addr
            if sent_to.get(id(f)):
                addr, how = sent_to[id(f)], "original-recipient"
            action = f.get("action", "").strip().lower().split()[0] if f.get("action", "").strip() else ""
            status = normalise_status(f.get("status", ""))
            raw_diag = f.get("diagnostic-code", "")
            # some MTAs put RFC 2047 encoded words ("550 =?UTF-8?Q?Empf=C3=A4nger_unbekannt?=") or
            # HTML entities ("&quot;") into the field
            diag = _unescaped(strip_type(raw_diag)).strip()
            status_text = f.get("status", "").partition("(")[2].rstrip(")").strip()
            if not diag and status_text:
                diag = status_text
            section = by_addr.get(addr.lower()) or by_addr.get(final.lower(), "")
            # No Diagnostic-Code: the reply the notice text labels is what is reported (CommuniGate
            # Pro "SMTP module(...) reports:", Sun / Oracle "Diagnostic code:" in the text only;
            # fixtures/dsn/communigate-user-unknown.eml, sun-messaging-delayed.eml).
            shown = legacy.labelled_reply(section) if section and not raw_diag.strip() else ""
            if not diag:
                # The labelled reply is classified, the section names the stage (see read_legacy).
                own = _reply_decides(shown, section)
                diag = _one_line(shown) if own else _one_line(section) if section else ""
            diag_type = raw_diag.partition(";")[0].strip().lower() if ";" in raw_diag else ""
            local_mailer = diag_type in ("x-unix", "x-local")
            reply = "" if local_mailer else find_reply_code(diag)
            dsn_status = status
            diag_status = remote_status(diag) if raw_diag else ""
            if diag_status and not diag_status.endswith(".0.0") and diag_status[0] == (status or diag_status)[0]:
                status = diag_status  # the remote server's own code is more specific than the DSN's
            elif diag_status and not status:
                status = diag_status
            if (not status or status.endswith(".0.0")) and len(blocks) == 1:
                # A generic DSN code: the notification text often carries the real one
                # (Sendmail transcripts: "554 5.3.0 unknown mailer error 255").
                text_status = find_status(section or self.notification_text())
                if text_status and not text_status.endswith(".0.0") and text_status[0] == (status or text_status)[0]:
                    status = text_status
            own_status = remote_status(diag) if status.startswith("5") and status.endswith(".0.0") else ""
            if own_status.startswith("4") or (own_status[:1] not in "25" and reply.startswith("4")):
                # A generic 5.0.0 ("failed") over the server's own 4xx reply: the report gave up, the
                # refusal itself was temporary (CommuniGate Pro writes 5.0.0 for every failure).
                status = own_status if own_status.startswith("4") else "4.0.0"
            if local_mailer:
                # Diagnostic type X-Unix: the local delivery program's exit status, not SMTP.
                diag = f"{diag} (local mailer: {diag_type})"
            mta = dsn.mta_name(f.get("remote-mta", ""))
            if action in ("delivered", "relayed", "expanded") or (not action and dsn_status.startswith("2")):
                verdicts.append(Verdict(address=addr, status=dsn_status, action=action or "delivered",
                                        diagnostic=_one_line(diag), remote_mta=mta, reason="delivered",
                                        category="success", rule="dsn-delivered", parser="dsn",
                                        explain=f"DSN Action: {action or 'delivered'}", recovered_by=how))
                continue
            failed = True
            fallback = _one_line(section) if section else self.notice_evidence()
            # One recipient: the whole notice is about it; the text above the delivery-status
            # fields may be where the reason is, not under the recipient's address
            # (Sendmail: "554 "|procmail ..."... Service unavailable", corpus:maildir/bsd/rfc3464-04.eml).
            whole = self.notice_evidence if (
                section and len(blocks) == 1) else None
            verdicts.append(self.verdict(addr, status, reply, diag, mta or "", action or "failed", "dsn", how,
                                         fallback, whole, shown=shown, section=section))
        if not failed:
            return Report("delivered", tuple(verdicts))
        verdicts = [v for v in verdicts if v.reason != "delivered"]
        verdicts = self.apply_envelope(verdicts)
        return Report("dsn", tuple(verdicts))

    def apply_envelope(self, verdicts: list[Verdict]) -> list[Verdict]:
        """A VERP envelope names the recipient: it wins when the report names one recipient or none."""
        env = self.envelope_recipient()
        if env and len(verdicts) == 1 and verdicts[0].address.lower() != env.lower():
            return [dataclasses.replace(verdicts[0], address=env, recovered_by="verp")]
        if len(verdicts) == 1 and "@" not in verdicts[0].address:
            # none, or a local name only ("Final-Recipient: LOCAL; carol"): not the address we sent to
            a, how = self.recover_address()
            if a:
                return [dataclasses.replace(verdicts[0], address=a, recovered_by=how)]
            v = verdicts[0]
            if v.rule == "none":
                # Neither a recipient nor a cause (Postfix "Delivery report unavailable",
                # corpus:maildir/bsd/lhost-postfix-64.eml): taxonomy "undefined", not "onhold".
                temporary = v.status.startswith("4")
                status = pseudo_status("undefined", temporary) if v.status == pseudo_status("onhold", temporary) else v.status
                return [dataclasses.replace(v, reason="undefined", status=status)]
        return verdicts

    def is_bounce(self) -> str:
        """Why this message looks like a non-delivery notice ("" if it does not)."""
        h = self.root
        if h.get("x-failed-recipients"):
            return "X-Failed-Recipients header"
        report_type = h.params.get("report-type", "delivery-status").lower()
        if h.ctype == "multipart/report" and report_type in ("delivery-status", "delivery-status-notification"):
            return "multipart/report"
        if h.ctype == "multipart/report":
            return ""   # read receipts (disposition-notification) and other reports are not bounces
        list_manager = any(h.get(k) for k in _LIST_MANAGER_HEADERS) or _LIST_MANAGER_FROM.search(h.get("from"))
        if list_manager:
            text = self.subject() + "\n" + self.notification_text()[:5000]
            if _LIST_REFUSAL.search(text) and not _LIST_HOLD.search(text):
                return "a list manager refused the post"
        if h.get("x-mailman-version") and h.get("return-path").strip() not in ("<>", ""):
            # A list manager's own notice (held for moderation, bounce action notice to the owner,
            # membership reminder), sent with a return path: it may quote a member's bounce, but
            # does not report one of ours (fixtures/not-a-bounce/mailman-bounce-action-notice.eml).
            return ""
        frm = decode_header(h.get("from"))
        subject = self.subject()
        if _BOUNCE_FROM.search(frm) and (_BOUNCE_SUBJECT.search(subject) or _BOUNCE_BODY.search(self.body_text()[:5000])):
            return "from a mail daemon"
        # (a message without a Return-Path field at all, as a file handed to `classify`, says
        # nothing of its sender: only "<>" is the null sender)
        null_sender = h.get("return-path", "-").strip() in ("<>", "")
        automated = null_sender or (
            h.get("auto-submitted").strip().lower() not in ("", "no")) or h.get("precedence").lower() in ("bulk", "junk")
        if automated and _BOUNCE_SUBJECT.search(subject) and _BOUNCE_BODY.search(self.body_text()[:5000]):
            return "bounce subject and wording"
        if _BOUNCE_BODY.search(self.body_text()[:5000]) and enclosed_original(self.root) is not None:
            return "bounce wording and the original enclosed"
        if null_sender and _BOUNCE_BODY.search(self.body_text()[:5000]) and (
                _BOUNCE_FROM.search(frm) or _BOUNCE_SUBJECT.search(subject)):
            return "null sender and bounce wording"
        if _BOUNCE_SUBJECT.search(subject) and self.read_forwarded() is not None:
            return "a mail daemon's notice forwarded"
        return ""

    def read_legacy(self) -> Report:
        why = self.is_bounce()
        if not why:
            return Report("not-bounce", (), "no delivery report, no bounce signs")
        forwarded = self.read_forwarded()
        if forwarded is not None:
            return forwarded
        note = self.notification_text()
        own = self.own_addresses() | self.original_senders()
        preamble, secs = legacy.sections(legacy.without_quoted_headers(note), own)
        if len(secs) >= legacy.MAX_RECIPIENTS:
            self.cuts.append(f"text notice naming {legacy.MAX_RECIPIENTS} recipients, the limit: "
                             "any after them were not read")
        if len(self.body_text()) >= legacy.MAX_TEXT:
            self.cuts.append(f"notice text over {legacy.MAX_TEXT} characters: the rest was not read")
        failed_hdr = [a for v in self.root.get_all("x-failed-recipients") for a in legacy.ADDRESS.findall(v)]
        how = "text"
        if not secs and failed_hdr:
            secs = [(a, note) for a in failed_hdr]
            how = "x-failed-recipients"
        if not secs:
            found = [a for a in legacy.flufl_addresses(self.raw) if a.lower() not in own]
            secs = [(a, note) for a in found[:legacy.MAX_RECIPIENTS]]
            how = "flufl"
        if not secs:
            a, how = self.recover_address()
            secs = [(a, note)]
        blocks = legacy.transcript_blocks(note) if how == "text" else {}
        if blocks:
            # A recipient whose own transcript block holds the remote reply: that block is its text.
            secs = [(a, blocks[a.lower()]) if "<<< " in blocks.get(a.lower(), "") else (a, sec) for a, sec in secs]
        causes = legacy.causes_before_lists(note) if how == "text" else {}
        if causes:
            # The cause stated above a recipient list is each listed recipient's text (MailMarshal).
            secs = [(a, causes[a.lower()]) if a.lower() in causes else (a, sec) for a, sec in secs]
        if how == "text":
            secs = legacy.as_sent(secs)     # an alias's recipient is the address we sent to
        subject = self.subject()
        temporary = bool(_TEMPORARY_SUBJECT.search(subject))
        verdicts = []
        evidence = []
        for addr, sec in secs:
            sec1 = _one_line(sec)
            said = legacy.labelled_reply(sec)
            status = failure_status(sec1)
            reply = find_reply_code(_diag_start(_one_line(said) if said else sec1))
            fallback = without_stock_phrases(_one_line(preamble + " " + sec + " " + subject))
            # A subject such as Sendmail's "Returned mail: Deferred: ..." names one attempt's
            # error; a section whose own code is permanent (5xx) failed for good
            # (corpus:maildir/bsd/lhost-v5sendmail-06.eml).
            delayed = temporary and not (status or reply).startswith("5")
            # A reply the notice labels as the server's ("Remote Server returned '...'") is the
            # diagnostic reported; the section around it is what is classified, for its words name
            # the stage ("Connected to ... but my name was rejected", corpus:maildir/bsd/lhost-qmail-04.eml).
            # The reply the notice labels is what is classified (anchored rules read the reply's
            # start; the notice's own words around it, "because:", "Reason:", the Postmaster line
            # after it, must not decide); the section still names the stage, and decides when the
            # reply alone says nothing. Not for qmail, whose words before "Remote host said:" are
            # evidence themselves ("Connected to <ip> but my name was rejected.": the HELO was
            # refused, corpus:maildir/bsd/lhost-qmail-04.eml) and are removed by the classifier
            # where they are only a preamble (classify.reply_first).
            own = _reply_decides(said, sec1)
            v = self.verdict(addr, status, reply, _one_line(said) if own else sec1, "",
                             "delayed" if delayed else "failed", "legacy", how, fallback, shown=said,
                             section=sec1 if own else "")
            verdicts.append(v)
            evidence.append(bool(status or reply) or self.classifier.classify("", "", sec1).rule != "none")
        if any(evidence) and not all(evidence):
            # An address whose own section says nothing about a failure, next to ones that do, is
            # the sender or a contact address quoted in the text (Exim: "A message sent by <x>") —
            # unless the returned original was addressed to it: then it is a recipient whose
            # wording no rule knows (reported, as onhold, rather than lost).
            targets = self.original_targets()
            verdicts = [v for v, e in zip(verdicts, evidence) if e or v.address.lower() in targets]
        elif len(verdicts) > 1 and not any(evidence):
            # No section says anything (the cause is above them all): those the returned original
            # was addressed to are the recipients; the others are addresses the text quotes (a
            # list manager's "send help to the address <list-ctl@...>").
            targets = self.original_targets()
            if any(v.address.lower() in targets for v in verdicts):
                verdicts = [v for v in verdicts if v.address.lower() in targets]
        verdicts = self.apply_envelope(verdicts)
        return Report("dsn", tuple(verdicts), why)

    def read_forwarded(self) -> Report | None:
        if self._forwarded is False:
            self._forwarded = self._read_forwarded()
        return self._forwarded  # type: ignore[return-value]

    def _read_forwarded(self) -> Report | None:
        """A bounce a person forwarded inline (Apple Mail "Begin forwarded message:" with the
        original '>'-quoted, or a "---------- Forwarded message ----------" block): read the
        enclosed bounce, when its own From is a mail daemon; the forwarder's text around it, and the
        headers of the original quoted below it, name no failed recipient
        (corpus:maildir/bsd/lhost-sendmail-14.eml, fixtures/dsn/forwarded-inline-bounce.eml)."""
        if self.depth:
            return None
        text = self.body_text()
        m = _FORWARDED.search(text)
        if m is None:
            return None
        lines = text[m.end():].split("\n")
        if any(line.startswith(">") for line in lines[:3]):
            kept = []
            for line in lines:
                if line.startswith(">"):
                    kept.append(line[2:] if line.startswith("> ") else line[1:])
                elif line.strip() or kept:
                    break
            lines = kept
        inner_text = "\n".join(lines).lstrip("\n")
        head = inner_text[:inner_text.find("\n\n")] if "\n\n" in inner_text else ""
        frm = re.search(r"(?im)^from:(.*)$", head)
        if frm is None or not _BOUNCE_FROM.search(frm.group(1)):
            return None
        root = parse_entity(inner_text.encode("utf-8", "replace")[:MAX_ENCLOSED], 2)
        inner = self._nested(root)
        report = inner.read_dsn() or inner.read_legacy()
        if report is None or report.kind != "dsn" or not report.recipients or all(
                v.reason == "onhold" for v in report.recipients):
            return None
        return report


_TAGS = re.compile(r"<(?:script|style)[^>]*>.*?</(?:script|style)>|<[^>]{0,2000}>", re.S | re.I)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def _reply_decides(reply: str, section: str) -> bool:
    """Is the labelled `reply` (legacy.labelled_reply) what is classified, rather than its whole
    `section`? Not for qmail: its words before "Remote host said:" are evidence (see read_legacy)."""
    return bool(reply) and "remote host said:" not in section.lower()


def _addresses_we_sent_to(blocks: list[dict]) -> dict[int, str]:
    """Per block (by id), the Original-Recipient to record instead of a different Final-Recipient.

    Original-Recipient is the address as our MTA gave it at RCPT (RFC 3464 2.3.1; Postfix and
    Exchange write it from the RCPT command); the Final-Recipient is where the receiver's aliases,
    forwarding or internal routing took it (`contact@example.jp` -> `staff7@mail.example.jp`).
    The sender's list holds the first, so the suppression must too. Not when one Original names
    several blocks (a group expanded to its members: one dead member must not suppress the group)
    or is another block's Final-Recipient (the same recipient twice)."""
    originals: dict[str, list[dict]] = {}
    finals = set()
    for f in blocks:
        final = dsn.address_of(f.get("final-recipient", "")).lower()
        finals.add(final)
        orig = dsn.address_of(f.get("original-recipient", ""))
        if "@" in orig and "@" in final and orig.lower() != final:
            originals.setdefault(orig.lower(), []).append(f)
    out: dict[int, str] = {}
    for low, fs in originals.items():
        if len(fs) == 1 and low not in finals:
            out[id(fs[0])] = dsn.address_of(fs[0].get("original-recipient", ""))
    return out


def _unescaped(text: str) -> str:
    """RFC 2047 encoded words and HTML entities decoded, where the text has any."""
    if "=?" in text:
        text = decode_header(text)
    if "&" in text and ";" in text:
        from html import unescape      # html.entities is a large table: loaded only when needed
        text = unescape(text)
    return text


def _strip_html(html: str) -> str:
    text = _TAGS.sub("\n", html[:200000])
    for k, v in _ENTITIES.items():
        text = text.replace(k, v)
    return text


_CODE_AT = re.compile(r"(?<![\d.])[245]\d\d[ \-][^\n]{0,20}")
_FAILURE_CODE_AT = re.compile(r"(?<![\d.])[45]\d\d[ \-][^\n]{0,20}")
# An enhanced code that follows an SMTP reply code ("550 5.7.1", "550-5.7.1", "550-'5.7.1") is the
# answering server's own; a relay often puts its own summary code first (Amazon SES:
# "5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'", corpus:maildir/bsd/lhost-amazonses-01.eml).
_REPLY_STATUS = re.compile(r"(?<![\d.])[245]\d\d[ \-]['\"]?([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)")
_FAILURE_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")


def _diag_start(section: str) -> str:
    """The section from its first failure reply code on (so that code is the reply code); a
    transcript shows the accepted commands' 2xx replies before the refusal
    (Postfix "Out: 250 2.1.5 Ok" ... "Out: 451 4.3.0 Error", corpus:maildir/bsd/lhost-postfix-75.eml)."""
    m = _FAILURE_CODE_AT.search(section) or _CODE_AT.search(section)
    return section[m.start():] if m else section


def remote_status(diag: str) -> str:
    """The enhanced code the answering server gave in a diagnostic: the one right after its reply
    code if there is one, else the first code in the text."""
    m = _REPLY_STATUS.search(diag or "")
    return m.group(1) if m else find_status(diag)


_SUCCESS_CODE = re.compile(r"(?<![\w.])2\.\d{1,3}\.\d{1,3}(?![\w.])")


def failure_status(text: str) -> str:
    """The enhanced code of a failure notice's section: its first 4.x.x / 5.x.x code, preferring one
    that follows a reply code (a transcript's 2.x.x codes are for the commands that succeeded)."""
    for m in _REPLY_STATUS.finditer(text or ""):
        if m.group(1)[0] in "45":
            return m.group(1)
    m = _FAILURE_STATUS.search(text or "")
    if m:
        return "%s.%s.%s" % m.groups()
    found = find_status(text)
    # A 2.x.x code in a failure notice is a command that succeeded (MDaemon's transcript: "<-- 250
    # 2.1.0 Ok" then the refusal, which may carry no code at all), never the failure's code.
    return "" if found.startswith("2") else found


# Sendmail / Courier transcripts name the command as ">>> DATA" or ">>> RCPT To:<...>" (MDaemon:
# "--> RCPT To:<...>", fixtures/dsn/mdaemon-mailbox-full.eml; Trend Micro IMSS: "Sent <<< RCPT TO:<...>"). With
# PIPELINING the RCPT replies follow ">>> DATA", so a stage of "data" is only evidence together
# with a status that is not x.1.1 (see the rules text-unknown-*-data in bounces.toml);
# fixtures: corpus:maildir/bsd/lhost-courier-02.eml (>>> DATA), lhost-ezweb-04.eml (>>> RCPT TO).
# The stage is found from the commands named (few per text), each read with the words just before
# it: a lead ("in reply to", "after", ">>>", "[" …, optionally "end of "), or "for / during / at /
# to the <command> command | stage | phase", or "<command> command failed".
_STAGE_COMMAND = re.compile(r"(?<![a-z])(data|bdat|rcpt[ _]to|mail[ _]from|helo|ehlo|initial connection)(?![a-z])")
_STAGE_LEAD = re.compile(r"(?:(?:in reply to|after(?: pipelined)?|smtp command:?|did not like our|while sending|>>>|-->"
                         r"|sent <<<|\bsent:|\brejected|\[) ?|(?P<named>\b(?:for|during|at|(?<!rcpt )(?<!rcpt_)to|in response to)(?: the)? ))"
                         r"(?P<end>end of )?$")
_STAGE_NAMED_AFTER = (" command", " stage", " phase")
_QMAIL_STAGE = re.compile(r"does not like (recipient)|(failed after i sent the message)|"
                          r"(does not like sender|sender was rejected)")
_STAGE_WORDS = ("data", "bdat", "rcpt", "mail from", "helo", "ehlo", "initial connection")
_NOTES = re.compile(r"(?: \((?:smtp stage|local mailer|notice): [a-z\- ]+\))+$")


def smtp_stage(text: str) -> str:
    """The SMTP command a refusal answered ("data", "end of data", "rcpt", "mail", "connect"), if the
    text says. "data" is the DATA command (where PIPELINING also reports late RCPT refusals); "end of
    data" is the reply to the message content."""
    text = (text or "")[:2000]
    low = text.lower()
    if "does not like" in low or "failed after i sent" in low or "sender was rejected" in low:
        # qmail-remote names the stage in words: "does not like recipient" (RCPT), "sender was
        # rejected" (MAIL), "failed after I sent the message" (end of DATA).
        m = _QMAIL_STAGE.search(low)
        if m:
            return "rcpt" if m.group(1) else "end of data" if m.group(2) else "mail"
    if not any(w in low for w in _STAGE_WORDS):
        return ""
    # the last command named is the one that was refused (sendmail transcripts)
    for c in reversed(list(_STAGE_COMMAND.finditer(low))):
        word, after = c.group(1), low[c.end():c.end() + 16]
        lead = _STAGE_LEAD.search(low, max(0, c.start() - 32), c.start())
        if lead and (not lead.group("named") or after.startswith(_STAGE_NAMED_AFTER)):
            end_of = lead.group("end")
            break
        if word[0] in "drm" and after.startswith(" command failed"):     # data, rcpt to, mail from
            end_of = low.endswith("end of ", 0, c.start())
            break
    else:
        return ""
    word = word.replace("_", " ")     # Yahoo's legacy notices: "[RCPT_TO]"
    if word == "bdat":
        return "end of data"    # CHUNKING: BDAT's reply answers the content (its LAST chunk)
    if word == "data" and end_of:
        return "end of data"    # said in so many words: the reply came after the message content
    return {"rcpt to": "rcpt", "mail from": "mail", "helo": "connect", "ehlo": "connect",
            "initial connection": "connect"}.get(word, word)
