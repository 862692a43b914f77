"""Recognise auto-replies (RFC 3834 and the usual vacation / out-of-office / challenge signs).

Domain layer: pure; stdlib and parse/mime.py (RFC 2047 subjects) only.
In: the top-level headers of a message. Out: a short reason string when it is an auto-reply
(it is then not a bounce and must not count against the recipient), else "".

A bounce is also `Auto-Submitted: auto-replied` (Postfix sets it on DSNs), so the caller asks
this only after it found no delivery report; subjects and vendor headers decide the rest.
"""
from __future__ import annotations

import re

from bounceproc.domain.lazy_regex import lazy
from bounceproc.domain.parse.mime import decode_header

# Reply prefixes (Re, German AW, Scandinavian SV, Dutch Antw, Italian R): an auto-responder
# answers. A forward ("Fw:", "Fwd:") of an auto-reply is a person passing it on, not one.
_PREFIX = r"^\s*(?:(?:re|aw|sv|antw|r)\s*:\s*|\[)?"
# Subjects that only auto-responders write.
_STRONG = lazy(
    _PREFIX + r"(?:auto(?:matic)?[ \-_]?(?:reply|response|antwort|risposta|respuesta)|autoreply|auto:|"
    r"respuesta autom|risposta automatica|resposta autom|automatische antwort|automatisch antwoord|"
    r"automatisk svar|automaattinen vastaus|\u81ea\u52d5\u5fdc\u7b54|\u81ea\u52d5\u8fd4\u4fe1|"
    r"\u81ea\u52a8\u56de\u590d|\u81ea\u52d5\u56de\u8986|\u0430\u0432\u0442\u043e\u043e\u0442\u0432\u0435\u0442|"   # 自动回复 自動回覆 автоответ
    r"\u0430\u0432\u0442\u043e\u043c\u0430\u0442\u0438\u0447\u0435\u0441\u043a\u0438\u0439 \u043e\u0442\u0432\u0435\u0442|"   # автоматический ответ
    r"resposta autom[\u00e1a]tica|automatyczna odpowied[\u017az]|otomatik yan[\u0131i]t|"
    # Scandinavian, Polish, Czech / Slovak, Romanian, Hungarian, South Slavic, Baltic, Greek, Korean
    r"autosvar|odpowied[\u017az] automatyczna|automatick\u00e1 odpov\u011b\u010f|automatick\u00e1 odpove\u010f|"
    r"r\u0103spuns automat|automatikus v\u00e1lasz|samodejni odgovor|automatski odgovor|"
    r"autom\u0101tiska atbilde|automatinis atsakymas|automaatne vastus|"
    r"\u03b1\u03c5\u03c4\u03cc\u03bc\u03b1\u03c4\u03b7 \u03b1\u03c0\u03ac\u03bd\u03c4\u03b7\u03c3\u03b7|"   # αυτόματη απάντηση
    r"\uc790\ub3d9 ?(?:\ud68c\uc2e0|\uc751\ub2f5)|"   # 자동 회신 / 자동 응답
    r"out of (?:the )?office|abwesenheit|r[\u00e9e]ponse automatique|message d'absence|fuera de la oficina|"
    r"ooo\b)", re.I)
# Subjects a person may write too: they need another sign of automation.
_WEAK = lazy(
    _PREFIX + r"(?:absence|abwesend|afwezig|away from|away until|i am away|i'm away|on vacation|vacation|absent|"
    r"please confirm your (?:e-?mail|message)|confirm your e-?mail|challenge)", re.I)
_BOUNCE_WORDS = re.compile(r"undeliver|failure|delivery status|returned", re.I)


def autoreply_reason(headers: dict[str, list[str]]) -> str:
    """Why these headers are those of an auto-reply, or "" if they are not."""
    get = lambda k: (headers.get(k) or [""])[0].strip().lower()  # noqa: E731
    # Non-English subjects come as RFC 2047 encoded words ("=?UTF-8?Q?Abwesenheitsnotiz:_...?=",
    # fixtures/autoreply/abwesenheitsnotiz.eml): the words are read after decoding.
    subject = decode_header((headers.get("subject") or [""])[0]).strip().lower()
    auto = get("auto-submitted")
    if get("x-autoreply") or get("x-autorespond") or get("x-autoresponder"):
        return "x-autoreply header"
    if get("precedence") == "auto_reply":
        return "precedence: auto_reply"
    if _BOUNCE_WORDS.search(subject):
        return ""
    strong, weak = bool(_STRONG.match(subject)), bool(_WEAK.match(subject))
    automated = auto not in ("", "no") or get("x-auto-response-suppress") or (
        "return-path" in headers and get("return-path") in ("<>", ""))
    if strong:
        return "auto-reply subject"
    if weak and automated:
        return "vacation subject from an automated sender"
    return ""
