"""DKIM-sign outgoing messages with dkimpy (RSA or Ed25519, relaxed/relaxed).

Adapter layer: reads key files, calls dkimpy. Which key and which headers is decided by
bounceproc.domain.mta.dkim_keys; this module loads the key (once per file and modification
time) and produces the DKIM-Signature header.
In: message bytes, the DomainKey and the d= domain. Out: the message with DKIM-Signature first.

Key files: RSA as PEM (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`, as
`openssl genrsa` writes); Ed25519 (RFC 8463) as PKCS#8 PEM (`openssl genpkey -algorithm
ed25519`) or the bare base64 32-byte seed dkimpy uses. The algorithm follows from the key.
RSA's modular arithmetic is handed to OpenSSL when `cryptography` is installed (_openssl_rsa).
"""
from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass

import dkim

from bounceproc.domain.mta.dkim_keys import DomainKey, headers_to_sign
from bounceproc.domain.mta.outgoing import message_headers

# PKCS#8 PrivateKeyInfo of an Ed25519 key (RFC 8410): this DER prefix, then the 32-byte seed.
_ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
CANONICALIZE = (b"relaxed", b"relaxed")


def _openssl_rsa(pure_python):
    """dkimpy's RSASSA-PKCS1-v1_5 signing step done by OpenSSL (the `cryptography` package) when it
    is installed: dkimpy computes RSA in pure Python (~28 ms per RSA-2048 signature, bench/mta_checks);
    OpenSSL takes ~1 ms. Same inputs (the hash object, dkimpy's parsed key), same bytes out; dkimpy
    still canonicalises, hashes and builds the header. Without `cryptography`, dkimpy's own."""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
    except ImportError:
        return pure_python
    algorithms = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
    keys: dict[int, object] = {}

    def sign(hash, private_key):
        algorithm = algorithms.get(getattr(hash, "name", ""))
        if algorithm is None:
            return pure_python(hash, private_key)
        n = private_key["modulus"]
        key = keys.get(n)
        if key is None:
            key = keys[n] = rsa.RSAPrivateNumbers(
                private_key["prime1"], private_key["prime2"], private_key["privateExponent"],
                private_key["exponent1"], private_key["exponent2"], private_key["coefficient"],
                rsa.RSAPublicNumbers(private_key["publicExponent"], n)).private_key()
        return key.sign(hash.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm()))
    sign.pure_python = pure_python
    return sign


if not hasattr(dkim.RSASSA_PKCS1_v1_5_sign, "pure_python"):
    dkim.RSASSA_PKCS1_v1_5_sign = _openssl_rsa(dkim.RSASSA_PKCS1_v1_5_sign)


class KeyFileError(ValueError):
    """A key file that cannot be read or is not an RSA / Ed25519 private key."""


@dataclass(frozen=True)
class LoadedKey:
    algorithm: bytes              # b"rsa-sha256" | b"ed25519-sha256"
    private: bytes                # what dkimpy takes: PEM for RSA, base64 seed for Ed25519


def read_key(path: str) -> LoadedKey:
    """Load one key file; KeyFileError says why it is not usable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(64 * 1024)
    except OSError as exc:
        raise KeyFileError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from None
    text = raw.strip()
    if b"-----BEGIN" in text:
        body = b"".join(line for line in text.splitlines() if line and not line.startswith(b"-----"))
        try:
            der = base64.b64decode(body)
        except ValueError:
            raise KeyFileError(f"{path}: PEM body is not base64") from None
        if der.startswith(_ED25519_PKCS8_PREFIX) and len(der) == len(_ED25519_PKCS8_PREFIX) + 32:
            return LoadedKey(b"ed25519-sha256", base64.b64encode(der[-32:]))
        try:
            dkim.crypto.parse_pem_private_key(text)
        except Exception as exc:  # noqa: BLE001 - dkimpy raises several kinds
            raise KeyFileError(f"{path}: not an RSA or Ed25519 private key ({exc})") from None
        return LoadedKey(b"rsa-sha256", text)
    try:
        seed = base64.b64decode(text, validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise KeyFileError(f"{path}: expected a PEM private key or a base64 Ed25519 seed")
    return LoadedKey(b"ed25519-sha256", text)


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

    def sign(self, data: bytes, key: DomainKey, domain: str) -> bytes:
        """`data` with a DKIM-Signature for d=`domain`, s=`key.selector` in front."""
        loaded = self.key(key.keyfile)
        names = headers_to_sign(message_headers(data))
        eol = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
        header = dkim.sign(data, key.selector.encode(), domain.encode(), loaded.private,
                           canonicalize=CANONICALIZE, signature_algorithm=loaded.algorithm,
                           include_headers=[n.encode() for n in names], linesep=eol)
        return header + data
