"""Build the MTA config model from a parsed directive tree: which directive goes where, its value
syntax, aliases, and every error with file:line.

Domain layer: pure, stdlib only. In: a list of Directive / Block nodes (the reader,
bounceproc.mta.config_reader, turns text and `include`s into them). Out: MtaConfig, with
`warnings` for aliases; ConfigError listing every error otherwise.

The directive table is data: DIRECTIVES maps a name to (setter key, value parser, scopes).
Extensions add rows to it (docs/sending-core.md, "Extension points"); a domain directive whose key
is not a DomainSettings field lands in `DomainSettings.extra`.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bounceproc.domain.mta.config import (
    CLEARED as _CLEARED, AcctFile, ConfigError, DomainTable, Listener, MtaConfig, SmtpHost, Source, VirtualMta,
    VirtualMtaPool, Where,
)
from bounceproc.domain.mta.dkim_keys import parse_domain_key
from bounceproc.domain.mta.reply_patterns import parse_reply_pattern
from bounceproc.domain.mta.units import (
    parse_bool, parse_duration, parse_duration_list, parse_int, parse_rate, parse_size,
)


@dataclass
class Directive:
    name: str
    value: str            # unquoted; words joined by single spaces
    where: Where
    cleared: bool = False  # written as `""`: back to the inherited / default value


@dataclass
class Block:
    tag: str
    arg: str
    where: Where
    children: list = field(default_factory=list)
    end: Where | None = None


# Scopes
G, SRC, VMTA, POOL, DOM, ACCT, SPOOL = "global", "source", "virtual-mta", "virtual-mta-pool", "domain", "acct-file", "spool"
PATTERNS = "smtp-pattern-list"
BLOCKS = {  # tag -> scopes it may appear in
    "source": {G}, "spool": {G}, "virtual-mta": {G}, "virtual-mta-pool": {G},
    "domain": {G, VMTA, POOL}, "acct-file": {G}, PATTERNS: {G},
}


def _text(v: str) -> str:
    return v.strip()


def _port(v: str) -> int:
    n = parse_int(v)
    if not 0 < n < 65536:
        raise ValueError(f"expected a port 1-65535, got {v!r}")
    return n


def _email(v: str) -> str:
    if "@" not in v or " " in v.strip():
        raise ValueError(f"expected an email address, got {v!r}")
    return v.strip()


def parse_smtp_hosts(v: str) -> tuple[tuple[SmtpHost, ...], ...]:
    """`a.mx, b.mx; [192.0.2.1]:2525; lookup-mx:other.example`: `,` same level, `;` next."""
    levels = []
    for level in v.split(";"):
        hosts = []
        for item in (x.strip() for x in level.split(",")):
            if not item:
                continue
            if item.lower().startswith("lookup-mx:"):
                hosts.append(SmtpHost(item[10:].strip().lower(), lookup_mx=True))
                continue
            m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", item)
            if m:
                ipaddress.ip_address(m.group(1))
                hosts.append(SmtpHost(m.group(1), _port(m.group(2)) if m.group(2) else None, literal=True))
                continue
            m = re.fullmatch(r"([A-Za-z0-9.-]+)(?::(\d+))?", item)
            if not m:
                raise ValueError(f"expected host, [ip]:port or lookup-mx:domain, got {item!r}")
            hosts.append(SmtpHost(m.group(1).lower(), _port(m.group(2)) if m.group(2) else None))
        if hosts:
            levels.append(tuple(hosts))
    if not levels:
        raise ValueError("expected at least one host")
    return tuple(levels)


def _listener(v: str) -> Listener:
    words = v.split()
    source = None
    for w in words[1:]:
        if not w.startswith("source="):
            raise ValueError(f"expected IP:PORT [source=NAME], got {v!r}")
        source = w[7:]
    m = re.fullmatch(r"\[?([0-9A-Fa-f:.]+|0/0)\]?:(\d+)", words[0]) if words else None
    if not m:
        raise ValueError(f"expected IP:PORT like 0/0:25 or 127.0.0.1:2525, got {v!r}")
    host = "0.0.0.0" if m.group(1) == "0/0" else m.group(1)
    ipaddress.ip_address(host)
    return Listener(host, _port(m.group(2)), source)


def _source_host(v: str) -> tuple[str, str]:
    words = v.split()
    if len(words) != 2:
        raise ValueError(f"expected IP HOSTNAME, got {v!r}")
    ip = words[0].split("/")[0]
    ipaddress.ip_address(ip)
    return ip, words[1]


def _dns_server(v: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[?([0-9A-Fa-f:.]+?)\]?(?::(\d+))?", v.strip())
    if not m:
        raise ValueError(f"expected IP or IP:PORT, got {v!r}")
    ipaddress.ip_address(m.group(1))
    return m.group(1), _port(m.group(2)) if m.group(2) else 53


RECORD_TYPES = {"d": "d", "delivery": "d", "b": "b", "bounce": "b", "t": "t", "transient": "t",
                "tq": "tq", "transient-queue": "tq", "r": "r", "receipt": "r", "f": "f",
                "feedback-loop": "f", "rb": "rb", "remote-bounce": "rb", "rs": "rs", "remote-status": "rs"}


def _records(v: str) -> tuple[str, ...]:
    out = []
    for w in (x.strip().lower() for x in v.split(",")):
        if w not in RECORD_TYPES:
            raise ValueError(f"expected record types among d,b,t,tq,r,f,rb,rs, got {w!r}")
        out.append(RECORD_TYPES[w])
    return tuple(dict.fromkeys(out))


def _record_fields(v: str) -> tuple[str, str]:
    words = v.split(None, 1)
    if len(words) != 2 or words[0].lower() not in RECORD_TYPES:
        raise ValueError(f"expected TYPE FIELDS, like `d *,header_X-Job`, got {v!r}")
    return RECORD_TYPES[words[0].lower()], words[1].replace(" ", "")


def _delete_after(v: str) -> float | None:
    return None if v.strip().lower() == "never" else parse_duration(v)


_never_or_duration = _delete_after


def _access(v: str) -> tuple[str, str]:
    words = v.split()
    if len(words) != 2 or words[1] not in ("none", "monitor", "operator", "admin"):
        raise ValueError(f"expected CIDR none|monitor|operator|admin, got {v!r}")
    return words[0], words[1]


@dataclass(frozen=True)
class Spec:
    key: str
    parse: Callable[[str], Any]
    scopes: frozenset
    repeat: bool = False          # values accumulate in a list


def _spec(key, parse, *scopes, repeat=False) -> Spec:
    return Spec(key, parse, frozenset(scopes), repeat)


DIRECTIVES: dict[str, Spec] = {
    # global
    "smtp-listener": _spec("listeners", _listener, G, repeat=True),
    "host-name": _spec("host_name", _text, G, VMTA),
    "postmaster": _spec("postmasters", _email, G, repeat=True),
    "http-mgmt-port": _spec("http_mgmt_port", _port, G),
    "http-access": _spec("http_access", _access, G, repeat=True),
    "smtp-source-host": _spec("smtp_source_host", _source_host, G, VMTA),
    "dns-server": _spec("dns_servers", _dns_server, G, repeat=True),   # bounceproc extension
    "http-api-key": _spec("http_api_key", _text, G),
    "suppression-cache-ttl": _spec("suppression_cache_ttl", parse_duration, G),   # bounceproc extension
    "domain-key": _spec("domain_keys", parse_domain_key, G, VMTA, POOL, repeat=True),
    # <smtp-pattern-list N>
    "reply": _spec("replies", parse_reply_pattern, PATTERNS, repeat=True),
    "domain-macro": _spec("domain_macro", _text, G, repeat=True),
    # <source>
    "always-allow-relaying": _spec("always_allow_relaying", parse_bool, SRC),
    "process-x-virtual-mta": _spec("process_x_virtual_mta", parse_bool, SRC),
    "process-x-job": _spec("process_x_job", parse_bool, SRC),
    "process-x-envid": _spec("process_x_envid", parse_bool, SRC),
    "smtp-service": _spec("smtp_service", parse_bool, SRC),
    "default-virtual-mta": _spec("default_virtual_mta", _text, SRC),
    "max-message-size": _spec("max_message_size", parse_size, SRC),
    "max-rcpt-per-message": _spec("max_rcpt_per_message", parse_int, SRC),
    "log-connections": _spec("log_connections", parse_bool, SRC),
    "log-commands": _spec("log_commands", parse_bool, SRC),
    "verp-default": _spec("verp_default", parse_bool, SRC),
    "verp-return-path": _spec("verp_return_path", _email, SRC),        # bounceproc extension
    "pattern-list": _spec("pattern_list", _text, SRC),
    # <virtual-mta-pool>
    "virtual-mta": _spec("vmtas", _text, POOL, repeat=True),
    # <domain> (max-smtp-out also at vmta / pool level: a default for their queues)
    "max-smtp-out": _spec("max_smtp_out", parse_int, DOM, VMTA, POOL),
    "max-msg-per-connection": _spec("max_msg_per_connection", parse_int, DOM),
    "max-rcpt-per-transaction": _spec("max_rcpt_per_transaction", parse_int, DOM),
    "max-msg-rate": _spec("max_msg_rate", parse_rate, DOM),
    "max-connect-rate": _spec("max_connect_rate", parse_rate, DOM),
    "retry-after": _spec("retry_after", parse_duration_list, DOM),
    "bounce-after": _spec("bounce_after", parse_duration, DOM),
    "connect-timeout": _spec("connect_timeout", parse_duration, DOM),
    "smtp-greeting-timeout": _spec("smtp_greeting_timeout", parse_duration, DOM),
    "data-send-timeout": _spec("data_send_timeout", parse_duration, DOM),
    "smtp-hosts": _spec("smtp_hosts", parse_smtp_hosts, DOM),
    "smtp-port": _spec("smtp_port", _port, DOM),                      # bounceproc extension
    "use-starttls": _spec("use_starttls", parse_bool, DOM),
    "require-starttls": _spec("require_starttls", parse_bool, DOM),
    # part 2 (docs/sending-core.md, "Closing the loop"): kept in DomainSettings.extra
    "dkim-sign": _spec("dkim_sign", parse_bool, DOM),
    "smtp-pattern-list": _spec("smtp_pattern_list", _text, DOM),
    "backoff-max-msg-rate": _spec("backoff_max_msg_rate", parse_rate, DOM),
    "backoff-max-connect-rate": _spec("backoff_max_connect_rate", parse_rate, DOM),
    "backoff-max-smtp-out": _spec("backoff_max_smtp_out", parse_int, DOM),
    "backoff-retry-after": _spec("backoff_retry_after", parse_duration_list, DOM),
    "backoff-to-normal-after": _spec("backoff_to_normal_after", _never_or_duration, DOM),
    "backoff-to-normal-after-delivery": _spec("backoff_to_normal_after_delivery", parse_bool, DOM),
    # <acct-file>
    "records": _spec("records", _records, ACCT),
    "record-fields": _spec("record_fields", _record_fields, ACCT, repeat=True),
    "max-size": _spec("max_size", parse_size, ACCT),
    "move-interval": _spec("move_interval", parse_duration, ACCT),
    "move-to": _spec("move_to", _text, ACCT),
    "delete-after": _spec("delete_after", _delete_after, ACCT),
    "retry-interval": _spec("retry_interval", parse_duration, ACCT),
    "write-timeout": _spec("write_timeout", parse_duration, ACCT),
    "iso-times": _spec("iso_times", parse_bool, ACCT),
    "sync": _spec("sync", parse_bool, ACCT),
    "world-readable": _spec("world_readable", parse_bool, ACCT),
    "user-string": _spec("user_string", _text, ACCT),
    # <spool DIR> options: accepted, not acted on
    "priority": _spec("priority", parse_int, SPOOL),
    "delete-file-holders": _spec("delete_file_holders", parse_bool, SPOOL),
    "deliver-only": _spec("deliver_only", parse_bool, SPOOL),
    "min-free-space": _spec("min_free_space", parse_size, SPOOL),
}

# Names that are not PowerMTA's own, read as the real directive, with a warning.
# scope -> alias -> canonical. `retry-interval` is a real <acct-file> directive, an alias elsewhere.
ALIASES: dict[str, dict[str, str]] = {
    DOM: {"max-delivery-rate": "max-msg-rate", "retry-interval": "retry-after", "retry": "retry-after",
          "max-message-per-connection": "max-msg-per-connection", "max-connections": "max-smtp-out"},
    G: {"queue-path": "<spool>", "spool": "<spool>"},
}


def directive_names(scope: str) -> set[str]:
    """Names valid in `scope` (aliases included): the reader splits one-line blocks on them."""
    names = {n for n, s in DIRECTIVES.items() if scope in s.scopes}
    return names | set(ALIASES.get(scope, {})) | {"include"}


_MISS = object()
_DOMAIN_PATTERN = re.compile(r"(\*|(\*\.|\[\*\.\])?[a-z0-9_$](?:[a-z0-9_.$-]*[a-z0-9_$])?|\[[0-9a-f:./]+\])\Z")


class _Builder:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.macros: dict[str, list[str]] = {}
        self._parsed: dict[tuple[str, str], Any] = {}

    def parse(self, spec: Spec, text: str) -> Any:
        """Values repeat across thousands of <domain> blocks: parse each distinct text once."""
        key = (spec.key, text)
        hit = self._parsed.get(key, _MISS)
        if hit is _MISS:
            hit = self._parsed[key] = spec.parse(text)
        return list(hit) if isinstance(hit, list) else hit

    def err(self, where: Where, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def values(self, children: list, scope: str, tag_desc: str) -> dict[str, Any]:
        """Parse the plain directives of one block into {key: value}; nested blocks are skipped."""
        out: dict[str, Any] = {}
        for node in children:
            if isinstance(node, Block):
                continue
            name = node.name
            alias = ALIASES.get(scope, {}).get(name)
            if alias == "<spool>":
                continue  # handled by build()
            if alias:
                self.warnings.append(f"{node.where}: warning: '{name}' is not a PowerMTA directive; "
                                     f"read as '{alias}'")
                name = alias
            spec = DIRECTIVES.get(name)
            if spec is None:
                self.err(node.where, f"unknown directive '{node.name}' (expected one of the directives "
                                     f"of {tag_desc}; see docs/sending-core.md)")
                continue
            if scope not in spec.scopes:
                where_ok = " or ".join(sorted(f"<{s}>" if s != G else "the global level" for s in spec.scopes))
                self.err(node.where, f"'{node.name}' is not allowed in {tag_desc} (expected in {where_ok})")
                continue
            if node.cleared:
                out.pop(spec.key, None)
                out[spec.key] = _CLEARED
                continue
            try:
                value = self.parse(spec, node.value)
            except ValueError as exc:
                self.err(node.where, f"'{node.name}': {exc}")
                continue
            if spec.repeat:
                out.setdefault(spec.key, []).append(value)
            else:
                out[spec.key] = value
        return out

    def domain_patterns(self, block: Block) -> list[str]:
        arg = block.arg.strip().lower()
        if not arg or not _DOMAIN_PATTERN.match(arg):
            self.err(block.where, f"<domain {block.arg}>: expected *, name, *.name, [*.]name or [ip/mask]")
            return []
        if "$" not in arg:
            return [arg]
        m = re.search(r"\$([a-z0-9_-]+)", arg)
        names = self.macros.get(m.group(1)) if m else None
        if not names:
            self.err(block.where, f"<domain {block.arg}>: unknown domain-macro")
            return []
        return [arg.replace(m.group(0), n) for n in names]

    def domains(self, children: list, table: DomainTable, scope_desc: str) -> None:
        for node in children:
            if isinstance(node, Block) and node.tag == "domain":
                patterns = self.domain_patterns(node)
                self.nested_blocks(node, DOM)
                overrides = self.values(node.children, DOM, f"<domain {node.arg}>")
                for p in patterns:
                    table.add(p, overrides)

    def nested_blocks(self, block: Block, scope: str) -> None:
        for node in block.children:
            if isinstance(node, Block) and scope not in BLOCKS.get(node.tag, ()):
                self.bad_block(node, f"<{block.tag} {block.arg}>")

    def bad_block(self, node: Block, inside: str) -> None:
        if node.tag in BLOCKS:
            self.err(node.where, f"<{node.tag}> is not allowed inside {inside}")
        else:
            self.err(node.where, f"unknown block <{node.tag}> (expected one of "
                                 f"{', '.join('<%s>' % t for t in BLOCKS)})")




def build_config(nodes: list) -> MtaConfig:
    """The MtaConfig of a whole parsed file; ConfigError lists every problem."""
    b = _Builder()
    cfg = MtaConfig()
    for node in nodes:  # macros first: `<domain x.$M>` may precede `domain-macro M ...`
        if isinstance(node, Directive) and node.name == "domain-macro":
            words = node.value.split(None, 1)
            if len(words) != 2:
                b.err(node.where, "'domain-macro': expected NAME a, b, c")
            else:
                b.macros[words[0].lower()] = [w.strip().lower() for w in words[1].split(",") if w.strip()]
    g = b.values(nodes, G, "the global level")
    for key in ("listeners", "postmasters", "http_access", "dns_servers"):
        if key in g and g[key] is not _CLEARED:
            setattr(cfg, key, g[key])
    for key in ("host_name", "http_mgmt_port", "smtp_source_host", "http_api_key", "domain_keys",
                "suppression_cache_ttl"):
        if key in g and g[key] is not _CLEARED:
            setattr(cfg, key, g[key])
    spools = []
    for node in nodes:
        if isinstance(node, Directive) and ALIASES[G].get(node.name) == "<spool>":
            b.warnings.append(f"{node.where}: warning: '{node.name}' is not a PowerMTA directive; "
                              f"read as '<spool {node.value}>'")
            spools.append((node.value, node.where))
        if not isinstance(node, Block):
            continue
        desc = f"<{node.tag} {node.arg}>"
        if node.tag == "spool":
            b.nested_blocks(node, SPOOL)
            b.values(node.children, SPOOL, desc)
            spools.append((node.arg, node.where))
        elif node.tag == "source":
            b.nested_blocks(node, SRC)
            v = b.values(node.children, SRC, desc)
            if not node.arg.strip():
                b.err(node.where, "<source>: expected an IP, CIDR, 0/0, {auth} or a name")
            src = Source(node.arg.strip(), **{k: x for k, x in v.items() if x is not _CLEARED})
            cfg.sources[src.pattern] = src
        elif node.tag == "virtual-mta":
            b.nested_blocks(node, VMTA)
            v = b.values(node.children, VMTA, desc)
            vm = VirtualMta(node.arg.strip(), where=node.where)
            if "smtp_source_host" in v:
                vm.source_ip, vm.host_name = v["smtp_source_host"]
            if "host_name" in v:
                vm.host_name = v["host_name"]
            vm.domain_keys = list(v.get("domain_keys", []))
            if "max_smtp_out" in v:
                vm.domains.add("*", {"max_smtp_out": v["max_smtp_out"]})
            b.domains(node.children, vm.domains, desc)
            if not vm.name:
                b.err(node.where, "<virtual-mta>: expected a name")
            cfg.vmtas[vm.name] = vm
        elif node.tag == "virtual-mta-pool":
            b.nested_blocks(node, POOL)
            v = b.values(node.children, POOL, desc)
            pool = VirtualMtaPool(node.arg.strip(), list(v.get("vmtas", [])), where=node.where)
            pool.domain_keys = list(v.get("domain_keys", []))
            if "max_smtp_out" in v:
                pool.domains.add("*", {"max_smtp_out": v["max_smtp_out"]})
            b.domains(node.children, pool.domains, desc)
            cfg.pools[pool.name] = pool
        elif node.tag == "domain":
            pass  # below, all together
        elif node.tag == PATTERNS:
            b.nested_blocks(node, PATTERNS)
            name = node.arg.strip()
            if not name:
                b.err(node.where, f"<{PATTERNS}>: expected a name")
            cfg.pattern_lists[name] = list(b.values(node.children, PATTERNS, desc).get("replies", []))
        elif node.tag == "acct-file":
            b.nested_blocks(node, ACCT)
            v = b.values(node.children, ACCT, desc)
            target = node.arg.strip()
            if not target:
                b.err(node.where, "<acct-file>: expected a path or |command")
                continue
            acct = AcctFile(target.lstrip("|").strip(), pipe=target.startswith("|"), where=node.where)
            for key, val in v.items():
                if val is _CLEARED:
                    continue
                if key == "record_fields":
                    acct.record_fields = dict(val)
                else:
                    setattr(acct, key, val)
            cfg.acct_files.append(acct)
        else:
            b.bad_block(node, "the global level")
    b.domains(nodes, cfg.domains, "the global level")
    if len(spools) > 1:
        b.err(spools[1][1], f"a second spool directory (the first is at {spools[0][1]}): expected one")
    if spools:
        cfg.spool_dir = spools[0][0].strip()
    for pool in cfg.pools.values():
        for name in pool.vmtas:
            if name not in cfg.vmtas:
                b.err(pool.where, f"<virtual-mta-pool {pool.name}>: unknown virtual-mta '{name}'")
    for where, name in _pattern_list_uses(nodes):
        if name not in cfg.pattern_lists:
            b.err(where, f"'smtp-pattern-list': unknown <smtp-pattern-list {name}>")
    for src in cfg.sources.values():
        if src.default_virtual_mta and src.default_virtual_mta not in cfg.vmtas \
                and src.default_virtual_mta not in cfg.pools:
            b.errors.append(f"<source {src.pattern}>: unknown default-virtual-mta '{src.default_virtual_mta}'")
    if not cfg.listeners:
        cfg.listeners = [Listener("0.0.0.0", 25)]
    cfg.warnings = b.warnings
    if b.errors:
        raise ConfigError(b.errors)
    return cfg


def _pattern_list_uses(nodes: list):
    """(where, name) of every `smtp-pattern-list NAME` inside <domain> blocks, at any depth."""
    for node in nodes:
        if isinstance(node, Block):
            yield from _pattern_list_uses(node.children)
        elif node.name == "smtp-pattern-list" and not node.cleared:
            yield node.where, node.value.strip()
