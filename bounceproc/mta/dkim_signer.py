"""DKIM-sign outgoing messages (RSA or Ed25519, relaxed/relaxed): dkimpy's rules, OpenSSL's keys.

Adapter layer: reads key files, builds the DKIM-Signature header. Which key and which headers is
decided by bounceproc.domain.mta.dkim_keys; this module loads the key (once per file and
modification time) and signs.
In: message bytes, the DomainKey and the d= domain. Out: the message with DKIM-Signature first.

Division of labour (calls only, nothing of dkimpy is replaced or patched):
- dkimpy does what RFC 6376 defines: the message parse (`dkim.rfc822_parse`), relaxed header and
  body canonicalisation (`dkim.canonicalization.Relaxed`) and header folding (`dkim.fold`), so the
  header is byte for byte what `dkim.sign` writes for the same inputs (tested). These are
  module-level functions, not in dkimpy's `__all__`: an upgrade that moved one fails at import
  and in that test, never silently;
- `cryptography` (OpenSSL) holds the parsed key and makes the signature: RSASSA-PKCS1-v1_5 with
  SHA-256, or Ed25519 over the SHA-256 of the header block (RFC 8463). `dkim.sign` would parse the
  PEM key in Python and compute RSA in pure Python on every message (~28 ms per RSA-2048
  signature, bench/mta_checks); here the key is parsed once and a signature takes ~1 ms.

Key files: RSA as PEM (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`, as
`openssl genrsa` writes); Ed25519 as PKCS#8 PEM (`openssl genpkey -algorithm ed25519`) or the
bare base64 32-byte seed dkimpy uses. The algorithm follows from the key.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from dkim.canonicalization import Relaxed, correct_empty_body, strip_trailing_lines

from bounceproc.domain.mta.dkim_keys import DomainKey, headers_to_sign

HEADER_NAME = b"DKIM-Signature"
_EMPTY_LINE = re.compile(rb"\r?\n\r?\n")
_PLACEHOLDER = b"0" * 60          # as dkimpy: b= gets its own folded line before the real value


class KeyFileError(ValueError):
    """A key file that cannot be read or is not an RSA / Ed25519 private key."""


@dataclass(frozen=True)
class LoadedKey:
    algorithm: bytes              # b"rsa-sha256" | b"ed25519-sha256"
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def sign(self, header_block: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(header_block, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(hashlib.sha256(header_block).digest())


def read_key(path: str) -> LoadedKey:
    """Load one key file; KeyFileError says why it is not usable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(64 * 1024)
    except OSError as exc:
        raise KeyFileError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from None
    text = raw.strip()
    if b"-----BEGIN" in text:
        try:
            private = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not an RSA or Ed25519 private key ({exc})") from None
        if isinstance(private, rsa.RSAPrivateKey):
            return LoadedKey(b"rsa-sha256", private)
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return LoadedKey(b"ed25519-sha256", private)
        raise KeyFileError(f"{path}: not an RSA or Ed25519 private key ({type(private).__name__})")
    try:
        seed = base64.b64decode(text, validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise KeyFileError(f"{path}: expected a PEM private key or a base64 Ed25519 seed")
    return LoadedKey(b"ed25519-sha256", ed25519.Ed25519PrivateKey.from_private_bytes(seed))


def _selected(headers: list, names: list[bytes]) -> list:
    """RFC 6376 §5.4.2: each h= name takes the last instance not taken yet; none left, nothing."""
    out, last = [], {}
    for name in names:
        i = last.get(name, len(headers))
        while i > 0:
            i -= 1
            if headers[i][0].lower() == name:
                out.append(headers[i])
                break
        last[name] = i
    return out


def signature_header(data: bytes, loaded: LoadedKey, selector: bytes, domain: bytes,
                     names: list[bytes], now: int, linesep: bytes = b"\r\n") -> bytes:
    """The `DKIM-Signature: ...` field (ending in `linesep`) for `data`, relaxed/relaxed,
    h= `names` (lowercased), t= `now`; the tags and folding are dkimpy's."""
    headers, body = _parse(data)
    bh = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())
    fields = [(b"v", b"1"), (b"a", loaded.algorithm), (b"c", b"relaxed/relaxed"), (b"d", domain),
              (b"i", b"@" + domain), (b"q", b"dns/txt"), (b"s", selector), (b"t", str(now).encode()),
              (b"h", b" : ".join(names)), (b"bh", bh), (b"b", _PLACEHOLDER)]
    unsigned = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(HEADER_NAME))
    unsigned = unsigned[:unsigned.rindex(b"b=") + 2]          # b= empty for the hash (§3.7)
    block = b"".join(n + b":" + v for n, v in Relaxed.canonicalize_headers(_selected(headers, names)))
    (_, own), = Relaxed.canonicalize_headers([(HEADER_NAME, b" " + unsigned)])
    block += b"dkim-signature:" + own.rstrip()                # the signature's own field, no CRLF
    fields[-1] = (b"b", base64.b64encode(loaded.sign(block)))
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields) + linesep, namelen=len(HEADER_NAME),
                      linesep=linesep)
    return HEADER_NAME + b": " + value


def _parse(data: bytes) -> tuple[list, bytes]:
    """`dkim.rfc822_parse(data)`, which splits and re-joins the whole message line by line: here
    it gets the header block only, and a body already in CRLF is taken as it is (the same bytes)."""
    end = _EMPTY_LINE.search(data)
    if end is None or data[:1] in (b"\r", b"\n"):
        return dkim.rfc822_parse(data)
    headers, _ = dkim.rfc822_parse(data[:end.end()])
    body = data[end.end():]
    if body.count(b"\n") != body.count(b"\r\n"):
        body = b"\r\n".join(re.split(rb"\r?\n", body))
    return headers, body


def _relaxed_body(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation (RFC 6376 §3.4.4). Its whitespace passes rewrite
    every run of blanks, one regex match per word; a body without a tab, two blanks in a row or
    a blank before a line end is left as it is by them, so only the trailing empty lines are
    dkimpy's to handle then (same bytes: tested against dkim.sign)."""
    if b"\t" in body or b"  " in body or b" \r\n" in body or body.endswith(b" "):
        return Relaxed.canonicalize_body(body)
    return correct_empty_body(strip_trailing_lines(body))


class DkimSigner:
    """Signs with keys read from disk, cached per (path, mtime) so a replaced key is picked up."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, LoadedKey]] = {}
        self._lock = threading.Lock()

    def key(self, path: str) -> LoadedKey:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            mtime = -1.0
        with self._lock:
            hit = self._cache.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        loaded = read_key(path)
        with self._lock:
            self._cache[path] = (mtime, loaded)
        return loaded

    def sign(self, data: bytes, key: DomainKey, domain: str, now: int | None = None) -> bytes:
        """`data` with a DKIM-Signature for d=`domain`, s=`key.selector` in front."""
        loaded = self.key(key.keyfile)
        head = data[:dkim_head_end(data)]
        names = [n.encode() for n in headers_to_sign(_field_names(head))]
        if b"from" not in names:
            raise ValueError("the message has no From header to sign")
        eol = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
        header = signature_header(data, loaded, key.selector.encode(), domain.encode(), names,
                                  int(time.time()) if now is None else now, eol)
        return header + data


def dkim_head_end(data: bytes) -> int:
    """Where the header block ends (the first empty line), or the end of the data."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(data)


def _field_names(head: bytes) -> list[str]:
    """Names of the header fields in a header block (continuation lines skipped)."""
    names = []
    for line in head.splitlines():
        if line[:1] not in (b" ", b"\t"):
            colon = line.find(b":")
            if colon > 0:
                names.append(line[:colon].strip().decode("ascii", "replace"))
    return names
