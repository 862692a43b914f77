"""Refuse webhook targets on loopback, private, link-local and other non-public networks.

Adapter layer (DNS resolution through the stdlib). Used when an endpoint is registered and again
before every delivery, because a name can be re-pointed after it was accepted (DNS rebinding).
In: a URL and the allow-list from settings (`webhook_allow`: host names, IPs or CIDRs).
Out: the resolved addresses, or UnsafeTarget with a human-readable reason.

Only http and https are accepted; credentials in the URL are refused. An allow-list entry matches
the URL's host name exactly, or any resolved address inside its network. Public means outside the
IANA special-purpose registries for IPv4 and IPv6 (tables below); an IPv6 address that embeds
IPv4 (mapped, SIIT, NAT64, 6to4, Teredo) is judged by the IPv4 inside (issue 13, item 11).
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_CHARS = 2048


class UnsafeTarget(ValueError):
    """The URL is malformed or points at a network that webhooks may not reach."""


def _networks(allow: Iterable[str]) -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    nets = []
    for entry in allow:
        entry = entry.strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return hosts, nets


# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates, as of 2026), with
# multicast (224.0.0.0/4). Every block is refused, including the few the registry calls
# globally reachable (AS112, AMT, PCP/TURN anycast): none of them is a webhook receiver.
IPV4_SPECIAL = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8",            # "this network" (RFC 791)
    "10.0.0.0/8",           # private (RFC 1918)
    "100.64.0.0/10",        # shared address space, carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",          # loopback (RFC 1122)
    "169.254.0.0/16",       # link local, cloud metadata (RFC 3927)
    "172.16.0.0/12",        # private (RFC 1918)
    "192.0.0.0/24",         # IETF protocol assignments, incl. 192.0.0.0/29 DS-Lite, 192.0.0.8,
                            # 192.0.0.9/10 anycast, 192.0.0.170/171 NAT64 discovery (RFC 6890)
    "192.0.2.0/24",         # documentation TEST-NET-1 (RFC 5737)
    "192.31.196.0/24",      # AS112-v4 (RFC 7535)
    "192.52.193.0/24",      # AMT (RFC 7450)
    "192.88.99.0/24",       # deprecated 6to4 relay anycast (RFC 7526)
    "192.168.0.0/16",       # private (RFC 1918)
    "192.175.48.0/24",      # AS112 direct delegation (RFC 7534)
    "198.18.0.0/15",        # benchmarking (RFC 2544)
    "198.51.100.0/24",      # documentation TEST-NET-2 (RFC 5737)
    "203.0.113.0/24",       # documentation TEST-NET-3 (RFC 5737)
    "224.0.0.0/4",          # multicast (RFC 5771)
    "240.0.0.0/4",          # reserved (RFC 1112), incl. 255.255.255.255 limited broadcast
))

# Only IPv6 global unicast (2000::/3) can be a target at all: that leaves out ::/128, ::1,
# IPv4-compatible ::/96, 100::/64 and 100:0:0:1::/64 (discard, dummy), 64:ff9b:1::/48 (local-use
# translation), fc00::/7 (unique local), fe80::/10 (link local), fec0::/10 (site local) and
# ff00::/8 (multicast). Inside it, the IANA IPv6 Special-Purpose Address Registry blocks:
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
IPV6_SPECIAL = tuple(ipaddress.IPv6Network(n) for n in (
    "2001::/23",            # IETF protocol assignments (RFC 2928): benchmarking, ORCHID, AMT,
                            # AS112, DRIP (Teredo, 2001::/32, is unwrapped before this is looked at)
    "2001:db8::/32",        # documentation (RFC 3849)
    "2620:4f:8000::/48",    # AS112 direct delegation (RFC 7534)
    "3fff::/20",            # documentation (RFC 9637)
    "5f00::/16",            # SRv6 SIDs (RFC 9602)
))
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")           # IPv4-mapped (RFC 4291)
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")     # IPv4-translated, SIIT (RFC 2765)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")             # well-known NAT64 prefix (RFC 6052)
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")            # 6to4 (RFC 3056)
_TEREDO = ipaddress.IPv6Network("2001::/32")               # Teredo (RFC 4380)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 addresses an IPv6 address stands for (mapped, translated, NAT64, 6to4, Teredo
    server and client), or None when it embeds none."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED or ip in _TRANSLATED or ip in _NAT64:
        return (low32,)
    if ip in _SIXTOFOUR:
        return (ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF),)
    if ip in _TEREDO:
        server = ipaddress.IPv4Address((int(ip) >> 64) & 0xFFFFFFFF)
        return (server, ipaddress.IPv4Address(int(low32) ^ 0xFFFFFFFF))
    return None


def is_public(ip: IPAddress) -> bool:
    """True for an address a webhook may be sent to: outside every special-purpose block, and for
    an IPv6 address that embeds IPv4, every embedded IPv4 address public too."""
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in IPV4_SPECIAL)
    ip = ipaddress.IPv6Address(int(ip))            # without a zone id
    inner = embedded_ipv4(ip)
    if inner is not None:
        return all(is_public(x) for x in inner)
    return ip in IPV6_GLOBAL_UNICAST and not any(ip in net for net in IPV6_SPECIAL)


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL; UnsafeTarget otherwise."""
    if not url or len(url) > MAX_URL_CHARS:
        raise UnsafeTarget("the URL is empty or too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"the URL does not parse: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs are accepted")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not accepted")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("the URL has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"the host {host!r} does not resolve") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


def check_url(url: str, allow: Iterable[str] = ()) -> list[IPAddress]:
    """Raise UnsafeTarget unless every address of the URL's host is public or allowed."""
    _scheme, host, port = parse_target(url)
    hosts, nets = _networks(allow)
    ips = resolve(host, port)
    if host.lower() in hosts:
        return ips
    for ip in ips:
        if is_public(ip) or any(ip in net for net in nets if net.version == ip.version):
            continue
        raise UnsafeTarget(f"{host} resolves to {ip}, a non-public address; "
                           "add it to webhook_allow to permit it")
    return ips
