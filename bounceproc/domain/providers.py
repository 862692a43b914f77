"""Receiving provider of a recipient domain: Gmail, Microsoft, Yahoo/AOL, Apple, ... else "other".

Domain layer: pure, stdlib only. The table is data (rules/providers.toml).
`provider_of(domain)` is what the per-minute traffic counts store, so the dashboard can stack
deliveries, bounces and complaints by provider without reading events. Unlisted domains are
"other", which keeps the counts' rows per minute bounded (see the table's header).
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

OTHER = "other"


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    text = resources.files("bounceproc.domain").joinpath("rules", "providers.toml").read_text(encoding="utf-8")
    return {d: name for name, domains in tomllib.loads(text)["providers"].items() for d in domains}


@lru_cache(maxsize=1)
def named_providers() -> tuple[str, ...]:
    """The providers with a name of their own, in the table's order."""
    return tuple(dict.fromkeys(_table().values()))


def provider_of(domain: str) -> str:
    """The provider's name for a (normalised) recipient domain, or "other"."""
    return _table().get(domain.lower().rstrip(".")) or OTHER
