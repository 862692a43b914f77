"""The MTA configuration after parsing: the model, and the effective settings of a queue.

Domain layer: pure, stdlib only (ipaddress for <source> matching). In: nothing but values the
builder (bounceproc.domain.mta.build) made from a parsed file. Out: `MtaConfig.effective(domain,
vmta, pool)` -> DomainSettings, `MtaConfig.source_for(ip)` -> Source.

Inheritance exactly as `powermta.md` §3: for `a.x.com` the matching `<domain>` blocks merge from
general to specific whatever their order in the file (`*` -> `[*.]x.com` -> `*.x.com` ->
`a.x.com`), then the pool's blocks over the global ones, then the virtual MTA's over the pool's.
A `<source>` is chosen by longest prefix (`0/0` -> CIDR -> IP).
"""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from bounceproc.domain.mta.units import Rate


@dataclass(frozen=True)
class Where:
    """A place in a config file, for errors and warnings."""
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


CLEARED = type("Cleared", (), {"__repr__": lambda self: '""'})()  # `name ""`: back to the default


class ConfigError(ValueError):
    """One or more config errors, each `file:line: what was expected`."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class SmtpHost:
    """One `smtp-hosts` entry: a name, an `[ip]` literal, or `lookup-mx:domain`."""
    host: str
    port: int | None = None
    literal: bool = False
    lookup_mx: bool = False

    def __str__(self) -> str:
        if self.lookup_mx:
            return f"lookup-mx:{self.host}"
        h = f"[{self.host}]" if self.literal else self.host
        return f"{h}:{self.port}" if self.port else h


@dataclass(frozen=True)
class DomainSettings:
    """Per-queue delivery settings, with PowerMTA's defaults (`powermta.md` §3)."""
    max_smtp_out: int = 20
    max_msg_per_connection: int = 0          # 0 = unlimited
    max_rcpt_per_transaction: int = 1000
    max_msg_rate: Rate | None = None         # None = unlimited
    max_connect_rate: Rate | None = None
    retry_after: tuple[float, ...] = (600.0,)
    bounce_after: float = 4 * 86400 + 12 * 3600
    connect_timeout: float = 120.0
    smtp_greeting_timeout: float = 300.0
    data_send_timeout: float = 180.0
    smtp_hosts: tuple[tuple[SmtpHost, ...], ...] = ()   # levels; () = MX lookup
    smtp_port: int = 25                      # bounceproc extension: port of MX / named hosts
    use_starttls: bool = True                # opportunistic
    require_starttls: bool = False
    extra: tuple[tuple[str, Any], ...] = ()  # directives added by extensions (name, value)

    def get(self, name: str, default: Any = None) -> Any:
        """An extension directive's value (see docs/sending-core.md, Extension points)."""
        for k, v in self.extra:
            if k == name:
                return v
        return default


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    source: str | None = None     # `smtp-listener IP:PORT source=NAME`


@dataclass(frozen=True)
class Source:
    pattern: str                  # "0/0", "10.0.0.0/8", "192.0.2.1", "{auth}", a name
    always_allow_relaying: bool = False
    process_x_virtual_mta: bool = False
    process_x_job: bool = False
    process_x_envid: bool = False
    smtp_service: bool = True
    default_virtual_mta: str = ""
    max_message_size: int = 50 * 1024 * 1024
    max_rcpt_per_message: int = 1000
    log_connections: bool = False
    log_commands: bool = False
    verp_default: bool = False
    verp_return_path: str = ""    # bounceproc extension: VERP prefix@bounce-domain (implies VERP)
    pattern_list: str = ""


DEFAULT_SOURCE = Source("0/0")


@dataclass
class DomainTable:
    """`<domain P>` blocks of one scope, indexed for lookup in O(labels of the name)."""
    exact: dict[str, dict] = field(default_factory=dict)
    star: dict | None = None                       # `*`
    subdomains: dict[str, dict] = field(default_factory=dict)   # `*.x.com`
    both: dict[str, dict] = field(default_factory=dict)         # `[*.]x.com`

    def add(self, pattern: str, overrides: dict) -> None:
        if pattern == "*":
            self.star = {**(self.star or {}), **overrides}
        elif pattern.startswith("*."):
            self.subdomains.setdefault(pattern[2:], {}).update(overrides)
        elif pattern.startswith("[*.]"):
            self.both.setdefault(pattern[4:], {}).update(overrides)
        else:
            self.exact.setdefault(pattern, {}).update(overrides)

    def matches(self, name: str) -> list[dict]:
        """Override dicts matching `name`, general first."""
        out = [self.star] if self.star else []
        labels = name.split(".")
        for i in range(len(labels) - 1, -1, -1):   # shortest suffix first
            suffix = ".".join(labels[i:])
            exact_hit = i == 0
            if suffix in self.both:
                out.append(self.both[suffix])
            if not exact_hit and suffix in self.subdomains:
                out.append(self.subdomains[suffix])
            if exact_hit and suffix in self.exact:
                out.append(self.exact[suffix])
        return out

    def __len__(self) -> int:
        return len(self.exact) + len(self.subdomains) + len(self.both) + (1 if self.star else 0)


@dataclass
class VirtualMta:
    name: str
    source_ip: str = ""           # from smtp-source-host; "" = the system's choice
    host_name: str = ""           # EHLO name; "" = the global host-name
    domains: DomainTable = field(default_factory=DomainTable)
    where: Where | None = None
    domain_keys: list = field(default_factory=list)     # [DomainKey], `domain-key` lines


@dataclass
class VirtualMtaPool:
    name: str
    vmtas: list[str] = field(default_factory=list)
    domains: DomainTable = field(default_factory=DomainTable)
    where: Where | None = None
    domain_keys: list = field(default_factory=list)


@dataclass
class AcctFile:
    target: str                   # a path, or the command after "|"
    pipe: bool = False
    records: tuple[str, ...] = ("d", "b")
    record_fields: dict[str, str] = field(default_factory=dict)   # type -> "*,header_X"
    max_size: int = 250 * 1024 * 1024
    move_interval: float = 86400.0
    move_to: str = ""
    delete_after: float | None = 8 * 86400.0     # None = never
    retry_interval: float = 300.0
    write_timeout: float = 60.0
    iso_times: bool = True
    sync: bool = False
    world_readable: bool = False
    user_string: str = ""
    where: Where | None = None


@dataclass
class MtaConfig:
    listeners: list[Listener] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    spool_dir: str = "/var/spool/bounceproc"
    host_name: str = "localhost"
    postmasters: list[str] = field(default_factory=list)
    smtp_source_host: tuple[str, str] = ("", "")      # global default (ip, ehlo name)
    vmtas: dict[str, VirtualMta] = field(default_factory=dict)
    pools: dict[str, VirtualMtaPool] = field(default_factory=dict)
    domains: DomainTable = field(default_factory=DomainTable)
    acct_files: list[AcctFile] = field(default_factory=list)
    http_mgmt_port: int = 8080
    http_access: list[tuple[str, str]] = field(default_factory=list)
    http_api_key: str = ""                                  # X-API-Key for the management HTTP
    suppression_cache_ttl: float = 30.0                     # seconds a suppression lookup is reused
    domain_keys: list = field(default_factory=list)         # global `domain-key` lines [DomainKey]
    pattern_lists: dict[str, list] = field(default_factory=dict)   # <smtp-pattern-list N> -> [ReplyPattern]
    dns_servers: list[tuple[str, int]] = field(default_factory=list)  # [] = the system's
    warnings: list[str] = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)
    _source_cache: dict = field(default_factory=dict, repr=False)

    def effective(self, domain: str, vmta: str | None = None, pool: str | None = None) -> DomainSettings:
        """The settings of queue `domain/vmta`: defaults <- global <- pool <- virtual MTA."""
        key = (domain, vmta, pool)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        merged: dict = {}
        tables = [self.domains]
        if pool and pool in self.pools:
            tables.append(self.pools[pool].domains)
        if vmta and vmta in self.vmtas:
            tables.append(self.vmtas[vmta].domains)
        name = domain.lower().rstrip(".")
        for table in tables:
            for overrides in table.matches(name):
                merged.update(overrides)
        merged = {k: v for k, v in merged.items() if v is not CLEARED}
        extra = tuple(sorted((k, v) for k, v in merged.items() if k not in _FIELDS))
        plain = {k: v for k, v in merged.items() if k in _FIELDS}
        result = dataclasses.replace(DEFAULT_SETTINGS, **plain, extra=extra)
        self._cache[key] = result
        return result

    def source_for(self, ip: str, name: str | None = None) -> Source:
        """The `<source>` of a client: a listener's named source, else the longest prefix."""
        if name and name in self.sources:
            return self.sources[name]
        hit = self._source_cache.get(ip)       # asked several times per message: remembered per address
        if hit is not None:
            return hit
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return self.sources.get("0/0", DEFAULT_SOURCE)
        best, best_len = None, -1
        for pattern, src in self.sources.items():
            net = _network(pattern)
            if net is not None and addr.version == net.version and addr in net and net.prefixlen > best_len:
                best, best_len = src, net.prefixlen
        if len(self._source_cache) >= 10_000:
            self._source_cache.clear()
        self._source_cache[ip] = best = best or DEFAULT_SOURCE
        return best

    def vmta(self, name: str | None) -> VirtualMta | None:
        return self.vmtas.get(name) if name else None


DEFAULT_SETTINGS = DomainSettings()
_FIELDS = {f.name for f in dataclasses.fields(DomainSettings)} - {"extra"}


def _network(pattern: str):
    p = "0.0.0.0/0" if pattern in ("0/0", "0.0.0.0/0") else pattern
    try:
        return ipaddress.ip_network(p, strict=False)
    except ValueError:
        return None
