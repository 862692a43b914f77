"""MX and address lookups for delivery (dnspython), with a small TTL cache.

Adapter layer. In: a destination domain. Out: Route — MX hosts grouped by preference (lowest
first), or the domain itself when there is no MX (RFC 5321 §5.1 A/AAAA fallback), or `null_mx`
(RFC 7505: a single MX "." -> bounce at once with 5.1.10), or `nxdomain` (bounce with 5.1.2).
A DNS failure raises DnsTemporaryError: the queue retries later.
The resolver address is configurable (`dns-server IP[:PORT]`; tests run one on loopback).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.rdatatype


class DnsTemporaryError(Exception):
    pass


@dataclass(frozen=True)
class Route:
    levels: tuple[tuple[str, ...], ...] = ()
    null_mx: bool = False
    nxdomain: bool = False


class Resolver:
    def __init__(self, servers: list[tuple[str, int]] | None = None, timeout: float = 10.0) -> None:
        if servers:
            r = dns.asyncresolver.Resolver(configure=False)
            r.nameservers = [ip for ip, _ in servers]
            r.port = servers[0][1]
        else:
            r = dns.asyncresolver.Resolver()
        r.lifetime = timeout
        self._r = r
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}

    async def _query(self, name: str, rdtype: str):
        key = (name, rdtype)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            ans = await self._r.resolve(name, rdtype, search=False)
            result, ttl = list(ans), ans.rrset.ttl if ans.rrset is not None else 300
        except dns.resolver.NXDOMAIN:
            result, ttl = "nxdomain", 300
        except dns.resolver.NoAnswer:
            result, ttl = [], 300
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.exception.DNSException) as exc:
            raise DnsTemporaryError(f"{rdtype} lookup of {name} failed: {exc.__class__.__name__}") from exc
        self._cache[key] = (time.monotonic() + max(min(ttl, 3600), 5), result)
        return result

    async def route(self, domain: str) -> Route:
        ans = await self._query(domain, "MX")
        if ans == "nxdomain":
            return Route(nxdomain=True)
        if not ans:
            return Route(levels=((domain,),))
        if len(ans) == 1 and str(ans[0].exchange) == ".":
            return Route(null_mx=True)
        by_pref: dict[int, list[str]] = {}
        for rr in ans:
            host = str(rr.exchange).rstrip(".").lower()
            if host:
                by_pref.setdefault(rr.preference, []).append(host)
        return Route(levels=tuple(tuple(sorted(by_pref[p])) for p in sorted(by_pref)))

    async def addresses(self, host: str) -> list[str]:
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                ans = await self._query(host, rdtype)
            except DnsTemporaryError:
                if rdtype == "A":
                    raise
                continue
            if ans != "nxdomain":
                out += [rr.address for rr in ans]
        return out
