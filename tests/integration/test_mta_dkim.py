"""DKIM signing (dkimpy, RSA and Ed25519, relaxed/relaxed) verified by dkimpy against TXT records
served by a DNS server this test runs on loopback (dnslib, tests/mta_testing.py), looked up with dnspython."""
from __future__ import annotations

import base64
import shutil
import subprocess

import dkim
import nacl.signing
import pytest
from mta_testing import DnsServer

from bounceproc.domain.mta.dkim_keys import DomainKey
from bounceproc.mta.dkim_signer import DkimSigner, KeyFileError, read_key

MSG = (b"From: News <news@example.net>\r\nTo: alice@example.com\r\nSubject: weekly\r\n"
       b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.net>\r\n"
       b"List-Unsubscribe: <https://bp.example.net/u/TOKEN>\r\n"
       b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello  there \r\n\r\n")


@pytest.fixture
def dns_txt():
    server = DnsServer({})
    yield server
    server.stop()


def publish(server, name, record):
    server.records[(name, "TXT")] = [record]


def ed25519_key(tmp_path, pkcs8: bool):
    sk = nacl.signing.SigningKey.generate()
    path = tmp_path / "ed.key"
    if pkcs8:
        der = bytes.fromhex("302e020100300506032b657004220420") + bytes(sk)
        path.write_text("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----\n")
    else:
        path.write_text(base64.b64encode(bytes(sk)).decode() + "\n")
    return str(path), "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode()


def rsa_key(tmp_path, traditional: bool):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make an RSA test key")
    path = tmp_path / "rsa.key"
    subprocess.run(["openssl", "genrsa", *(["-traditional"] if traditional else []), "-out", str(path), "2048"],
                   check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return str(path), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


@pytest.mark.parametrize("kind", ["rsa-pkcs8", "rsa-pkcs1", "ed25519-pkcs8", "ed25519-seed"])
def test_signature_verifies_against_the_published_key(tmp_path, dns_txt, kind):
    if kind.startswith("rsa"):
        keyfile, record = rsa_key(tmp_path, traditional=kind == "rsa-pkcs1")
    else:
        keyfile, record = ed25519_key(tmp_path, pkcs8=kind == "ed25519-pkcs8")
    publish(dns_txt, "s2026._domainkey.example.net", record)
    signed = DkimSigner().sign(MSG, DomainKey("s2026", "*", keyfile), "example.net")
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(MSG)
    sig = signed[:signed.index(b"\r\nFrom:")].decode()
    assert "c=relaxed/relaxed" in sig and "d=example.net" in sig and "s=s2026" in sig
    assert ("a=ed25519-sha256" if kind.startswith("ed") else "a=rsa-sha256") in sig
    h = sig.split("h=", 1)[1].split(";", 1)[0].replace("\r\n", "").replace(" ", "")
    assert h.split(":") == ["from", "to", "subject", "date", "message-id", "list-unsubscribe",
                            "list-unsubscribe-post", "from"]
    assert dkim.verify(signed, dnsfunc=dns_txt.dkim_dnsfunc)
    # relaxed/relaxed survives re-folding whitespace; a changed body or an added From does not
    assert dkim.verify(signed.replace(b"Subject: weekly", b"Subject:   weekly"), dnsfunc=dns_txt.dkim_dnsfunc)
    assert not dkim.verify(signed.replace(b"Hello", b"Jello"), dnsfunc=dns_txt.dkim_dnsfunc)
    assert not dkim.verify(signed.replace(b"\r\n\r\nHello", b"\r\nFrom: evil@example.org\r\n\r\nHello"),
                           dnsfunc=dns_txt.dkim_dnsfunc)


def test_lf_messages_are_signed_in_their_own_line_ending(tmp_path, dns_txt):
    keyfile, record = ed25519_key(tmp_path, pkcs8=False)
    publish(dns_txt, "s1._domainkey.example.net", record)
    msg = MSG.replace(b"\r\n", b"\n")
    signed = DkimSigner().sign(msg, DomainKey("s1", "example.net", keyfile), "example.net")
    assert b"\r\n" not in signed and dkim.verify(signed, dnsfunc=dns_txt.dkim_dnsfunc)


def test_a_replaced_key_file_is_picked_up(tmp_path, dns_txt):
    signer = DkimSigner()
    keyfile, record1 = ed25519_key(tmp_path, pkcs8=False)
    signer.sign(MSG, DomainKey("s1", "*", keyfile), "example.net")
    import os
    _, record2 = ed25519_key(tmp_path, pkcs8=False)        # same path, new key
    os.utime(keyfile, (1, 1))
    publish(dns_txt, "s1._domainkey.example.net", record2)
    assert dkim.verify(signer.sign(MSG, DomainKey("s1", "*", keyfile), "example.net"), dnsfunc=dns_txt.dkim_dnsfunc)


def test_bad_key_files_say_why(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read"):
        read_key(str(tmp_path / "missing.key"))
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    with pytest.raises(KeyFileError, match="expected a PEM"):
        read_key(str(junk))
    pem = tmp_path / "pem.key"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not an RSA or Ed25519"):
        read_key(str(pem))


HEAD = MSG[:MSG.index(b"\r\n\r\n") + 4]
SHAPES = {
    "blanks to fold": MSG,                                   # dkimpy's own whitespace passes
    "plain": HEAD + b"Hello there\r\nsee you\r\n",              # nothing for them to change
    "lf": MSG.replace(b"\r\n", b"\n"),
    "mixed endings": HEAD + b"one\ntwo\r\nthree\n",
    "trailing empty lines": HEAD + b"text\r\n\r\n\r\n",
    "empty body": HEAD,
    "tab and no final eol": HEAD + b"a\tb\r\nend ",
    "folded header": MSG.replace(b"Subject: weekly", b"Subject: weekly\r\n\tnews"),
}


@pytest.mark.parametrize("kind,shape", [("rsa-pkcs1", "blanks to fold"), ("rsa-pkcs1", "plain")]
                         + [("ed25519-seed", shape) for shape in SHAPES])
def test_the_header_is_byte_for_byte_what_dkimpy_writes(tmp_path, kind, shape):
    """Our signer (dkimpy's canonicalisation and folding, OpenSSL's signature) against dkim.sign
    itself (pure-Python RSA / PyNaCl), same key, message and t=: RSA PKCS#1 v1.5 and Ed25519 are
    deterministic, so the headers must be equal."""
    import re
    if kind.startswith("rsa"):
        keyfile, _ = rsa_key(tmp_path, traditional=True)
        private, algorithm = open(keyfile, "rb").read(), b"rsa-sha256"
    else:
        keyfile, _ = ed25519_key(tmp_path, pkcs8=False)
        private, algorithm = open(keyfile, "rb").read().strip(), b"ed25519-sha256"
    msg = SHAPES[shape]
    eol = b"\r\n" if b"\r\n" in msg else b"\n"
    names = [b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
             b"list-unsubscribe-post", b"from"]
    theirs = dkim.sign(msg, b"s1", b"example.net", private, canonicalize=(b"relaxed", b"relaxed"),
                       signature_algorithm=algorithm, include_headers=names, linesep=eol)
    t = int(re.search(rb"t=(\d+)", theirs).group(1))
    ours = DkimSigner().sign(msg, DomainKey("s1", "*", keyfile), "example.net", now=t)
    assert ours == theirs + msg
