"""The provider rollup (domain/providers.py) and the address masking of the operations view."""
from __future__ import annotations

from bounceproc.app.ops_view import mask, rollup
from bounceproc.domain.providers import OTHER, named_providers, provider_of


def test_consumer_domains_roll_up_to_their_provider():
    assert provider_of("gmail.com") == provider_of("googlemail.com") == "Gmail"
    assert provider_of("Hotmail.com.") == provider_of("outlook.com") == "Microsoft"
    assert provider_of("aol.com") == provider_of("yahoo.co.uk") == "Yahoo/AOL"
    assert provider_of("icloud.com") == "Apple"
    assert provider_of("example.com") == provider_of("") == OTHER
    assert named_providers()[:4] == ("Gmail", "Microsoft", "Yahoo/AOL", "Apple")


def test_stored_values_roll_up_the_same_way():
    # the migration's backfill stores recipient domains; the write path stores provider names
    assert rollup("Gmail") == rollup("gmail.com") == "Gmail"
    assert rollup("some.example") == rollup(OTHER) == OTHER


def test_mask_hides_local_parts_and_keeps_the_rest():
    diag = "550 5.1.1 <john.smith+x@example.com>: Recipient address rejected; from a@b.co to c@d.org"
    masked = mask(diag)
    assert "john.smith" not in masked and "a@b" not in masked and "c@d" not in masked
    assert masked == "550 5.1.1 <•••@example.com>: Recipient address rejected; from •••@b.co to •••@d.org"
    assert mask("") == "" and mask("no address here") == "no address here"
