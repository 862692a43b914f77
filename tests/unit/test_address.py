"""Address normalisation: the key every suppression and event uses."""
from __future__ import annotations

import pytest

from bounceproc.domain.address import AddressError, normalise_address


@pytest.mark.parametrize("raw,expected", [
    ("  Alice@Example.COM ", "alice@example.com"),
    ("<bob@example.net>", "bob@example.net"),
    ("rfc822; carol@EXAMPLE.org", "carol@example.org"),
    ("dan@bücher.example", "dan@xn--bcher-kva.example"),
    ("eve@example.com.", "eve@example.com"),
])
def test_normalises(raw, expected):
    assert normalise_address(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "@example.com", "a@", "a b@example.com",
                                 "x" * 65 + "@example.com", "a@localhost", "a\n@example.com"])
def test_rejects(raw):
    with pytest.raises(AddressError):
        normalise_address(raw)
