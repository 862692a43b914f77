"""Refuse webhook targets on loopback, private, link-local and other non-public networks.

Adapter layer (DNS resolution through the stdlib). Used when an endpoint is registered and again
before every delivery, because a name can be re-pointed after it was accepted (DNS rebinding).
In: a URL and the allow-list from settings (`webhook_allow`: host names, IPs or CIDRs).
Out: the resolved addresses, or UnsafeTarget with a human-readable reason.

Only http and https are accepted; credentials in the URL are refused. An allow-list entry matches
the URL's host name exactly, or any resolved address inside its network.
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


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


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
