"""The MIME reader against the standard library's writer: multipart messages of text parts in any
characters and transfer encoding (7bit, 8bit, quoted-printable, base64), LF or CRLF, parsed back
to the same part texts (hypothesis). The base64 tail bug (`=` padding stripped, the rest cut off)
would fail here."""
from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP, default

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.mime import decode_bytes, decode_transfer, parse_message_bytes

TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), min_size=1,
                max_size=300).map(lambda s: s if s.endswith("\n") else s + "\n")


def _leaves(part):
    if not part.children:
        yield part
    for child in part.children:
        yield from _leaves(child)


def _norm(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXTS, st.sampled_from(["7bit", "8bit", "quoted-printable", "base64"])),
                min_size=1, max_size=4), st.booleans())
def test_parts_read_back_as_written(parts, crlf):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "x"
    msg.set_content("first\n")
    msg.make_mixed()
    for text, cte in parts:
        sub = EmailMessage()
        sub.set_content(text, cte="8bit" if cte == "7bit" and not text.isascii() else cte)
        msg.attach(sub)
    root = parse_message_bytes(msg.as_bytes(policy=SMTP if crlf else default))
    got = [decode_transfer(p.body, p.get("content-transfer-encoding")).decode("utf-8", "replace")
           for p in _leaves(root)]
    assert [_norm(g) for g in got] == [_norm(t) for t in ["first\n"] + [t for t, _ in parts]]


def test_seven_bit_iso_2022_jp_reads_as_japanese_whatever_the_part_declares():
    """Domino writes ISO-2022-JP into a DSN's Diagnostic-Code (a part with no charset): its escape
    sequences are Japanese, not ASCII; ASCII with another escape stays as it is."""
    jis = "ユーザー Neko は Domino ディレクトリには見つかりません。".encode("iso-2022-jp")
    assert decode_bytes(b"Diagnostic-Code: X-Notes; " + jis).endswith("ディレクトリには見つかりません。")
    assert decode_bytes(jis, "us-ascii") == decode_bytes(jis, "iso-2022-jp") == jis.decode("iso-2022-jp")
    assert decode_bytes(b"colour \x1b[31mred\x1b[0m") == "colour \x1b[31mred\x1b[0m"


def test_a_parameter_folded_without_its_semicolon_is_still_a_parameter():
    """A media type holds no space: "text/plain\\n   charset=…" (a gateway that forgot the ";") is
    text/plain with that charset, not an unknown type whose part would be skipped."""
    from bounceproc.domain.parse.mime import content_type
    assert content_type('text/plain\n   charset="iso-2022-jp"') == ("text/plain", {"charset": "iso-2022-jp"})
    assert content_type("text/plain charset=utf-8; format=flowed") == (
        "text/plain", {"charset": "utf-8", "format": "flowed"})
    assert content_type("text/html ; charset=x") == ("text/html", {"charset": "x"})
    assert content_type("garbage") == ("text/plain", {})


def test_undeclared_or_mislabelled_8bit_text_is_read_as_what_it_is():
    """UTF-8 labelled Latin-1 is UTF-8; Shift_JIS, EUC-JP (with kana) and GB2312 under no charset or
    US-ASCII are Japanese / Chinese, Windows-1251 and KOI8-R Russian; undeclared Latin-1 stays Latin-1 (an accent before a plain
    letter is not a double-byte character); a part that declares another charset and breaks it
    keeps the Latin-1 reading (au's EUC-JP under ISO-2022-JP, see mime.decode_bytes)."""
    assert decode_bytes("Benutzer unbekannt – Größe".encode(), "iso-8859-1") == "Benutzer unbekannt – Größe"
    assert decode_bytes("Empfänger unbekannt".encode("latin-1")) == "Empfänger unbekannt"
    assert decode_bytes("Adresse électronique inconnue".encode("latin-1"), "us-ascii") == "Adresse électronique inconnue"
    japanese = "宛先のメールアドレスが見つかりません"
    assert decode_bytes(japanese.encode("shift_jis"), "us-ascii") == japanese
    assert decode_bytes(japanese.encode("euc_jp")) == japanese
    assert decode_bytes("收件人邮箱地址不存在".encode("gbk")) == "收件人邮箱地址不存在"
    assert decode_bytes(japanese.encode("euc_jp"), "iso-2022-jp") != japanese
    russian = "Письмо не доставлено: пользователь не найден, почтовый ящик переполнен"
    assert decode_bytes(russian.encode("cp1251")) == russian
    assert decode_bytes(russian.encode("koi8_r"), "us-ascii") == russian
    assert decode_bytes(("550 5.1.1 <ann@example.ru>: " + russian).encode("koi8_r")).endswith(russian)
    assert decode_bytes("Réception échouée à l'adresse, boîte pleine".encode("latin-1")) == \
        "Réception échouée à l'adresse, boîte pleine"
