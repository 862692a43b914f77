"""The MTA config: PowerMTA syntax, every directive, units, inheritance, includes, aliases, errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bounceproc.domain.mta.config import ConfigError
from bounceproc.domain.mta.units import Rate, parse_duration, parse_duration_list, parse_rate, parse_size, parse_bool
from bounceproc.mta.config_reader import read_config


def load(tmp_path, text: str, name: str = "mta.conf"):
    p = tmp_path / name
    p.write_text(text)
    return read_config(str(p))


def errors(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    return e.value.errors


def test_units():
    assert parse_duration("1w2d12h") == 7 * 86400 + 2 * 86400 + 12 * 3600
    assert parse_duration("300s") == 300 and parse_duration("10m") == 600 and parse_duration("90") == 90
    assert parse_duration_list("10m,10m,1h") == (600, 600, 3600)
    assert parse_duration_list("5m 10m 30m") == (300, 600, 1800)
    assert parse_rate("1000/h") == Rate(1000, 3600) and parse_rate("83/10m") == Rate(83, 600)
    assert parse_rate("5/sec") == Rate(5, 1) and parse_rate("2/day") == Rate(2, 86400)
    assert parse_rate("unlimited") is None and parse_rate("0") is None
    assert parse_size("50M") == 50 * 1024 ** 2 and parse_size("250k") == 250 * 1024 and parse_size("12") == 12
    assert parse_bool("yes") and parse_bool("true") and not parse_bool("no") and not parse_bool("false")
    for bad, fn in (("10x", parse_duration), ("1000/fortnight", parse_rate), ("5Q", parse_size),
                    ("maybe", parse_bool)):
        with pytest.raises(ValueError):
            fn(bad)
    with pytest.raises(ValueError, match="at most 30"):
        parse_duration_list(",".join(["1m"] * 31))


FULL = """
# every directive the MTA understands
smtp-listener 127.0.0.1:2525
smtp-listener 0/0:2526 source=apps
host-name mta.example.com
postmaster ops@example.com
http-mgmt-port 8081
http-access 127.0.0.1/32 admin
dns-server 127.0.0.1:5353
smtp-source-host 192.0.2.1 out.example.com
domain-macro big gmail.com, yahoo.com
<spool /var/spool/bpmta>
  min-free-space 1g
</spool>
<source 0/0>
  smtp-service no
</source>
<source 10.0.0.0/8>            # the applications
  always-allow-relaying yes
  process-x-virtual-mta yes
  process-x-job yes
  process-x-envid yes
  smtp-service yes
  default-virtual-mta pool1
  max-message-size 10M
  max-rcpt-per-message 100
  log-connections yes
  log-commands no
</source>
<source apps>
  always-allow-relaying yes
</source>
<virtual-mta v1>
  smtp-source-host 192.0.2.10 out1.example.com
  max-smtp-out 7
  <domain gmail.com>
    max-smtp-out 3
  </domain>
</virtual-mta>
<virtual-mta v2>
  smtp-source-host 192.0.2.11 out2.example.com
</virtual-mta>
<virtual-mta-pool pool1>
  virtual-mta v1
  virtual-mta v2
  <domain gmail.com>
    max-smtp-out 5
    max-msg-rate 500/h
  </domain>
</virtual-mta-pool>
<domain *>
  max-smtp-out 20
  max-msg-per-connection 100
  max-rcpt-per-transaction 50
  max-msg-rate 1000/h
  max-connect-rate 83/10m
  retry-after 10m,10m,1h,4h,12h
  bounce-after 4d12h
  connect-timeout 1m
  smtp-greeting-timeout 2m
  data-send-timeout 3m
  use-starttls yes
  require-starttls no
</domain>
<domain x.$big>
  max-smtp-out 1
</domain>
<domain [*.]example.net>
  smtp-hosts mx1.example.net, mx2.example.net; [192.0.2.5]:2525; lookup-mx:backup.example.org
  smtp-port 2525
</domain>
<acct-file /var/log/bpmta/acct.csv>
  records d,b,t,tq,r
  record-fields d *,header_X-Tracker
  max-size 50M
  move-interval 5m
  move-to /var/log/bpmta/old
  delete-after 8d
  iso-times yes
  sync no
  world-readable no
  user-string hello
</acct-file>
<acct-file "|bounceproc pipe">
  records delivery,bounce
  retry-interval 1m
  write-timeout 30s
</acct-file>
"""


def test_every_directive_loads(tmp_path):
    c = load(tmp_path, FULL)
    assert c.warnings == []
    assert [(l.host, l.port, l.source) for l in c.listeners] == [("127.0.0.1", 2525, None), ("0.0.0.0", 2526, "apps")]
    assert c.host_name == "mta.example.com" and c.postmasters == ["ops@example.com"]
    assert c.http_mgmt_port == 8081 and c.http_access == [("127.0.0.1/32", "admin")]
    assert c.dns_servers == [("127.0.0.1", 5353)] and c.spool_dir == "/var/spool/bpmta"
    assert c.smtp_source_host == ("192.0.2.1", "out.example.com")
    src = c.source_for("10.1.2.3")
    assert src.always_allow_relaying and src.process_x_virtual_mta and src.process_x_job and src.process_x_envid
    assert src.max_message_size == 10 * 1024 ** 2 and src.max_rcpt_per_message == 100
    assert src.default_virtual_mta == "pool1"
    assert not c.source_for("192.0.2.99").smtp_service                 # 0/0
    assert c.source_for("192.0.2.99", "apps").always_allow_relaying    # listener's named source
    assert c.vmtas["v1"].source_ip == "192.0.2.10" and c.vmtas["v1"].host_name == "out1.example.com"
    assert c.pools["pool1"].vmtas == ["v1", "v2"]
    g = c.effective("anything.org")
    assert (g.max_smtp_out, g.max_msg_per_connection, g.max_rcpt_per_transaction) == (20, 100, 50)
    assert g.max_msg_rate == Rate(1000, 3600) and g.max_connect_rate == Rate(83, 600)
    assert g.retry_after == (600, 600, 3600, 4 * 3600, 12 * 3600) and g.bounce_after == 4 * 86400 + 12 * 3600
    assert (g.connect_timeout, g.smtp_greeting_timeout, g.data_send_timeout) == (60, 120, 180)
    assert g.use_starttls and not g.require_starttls
    n = c.effective("a.example.net")
    assert [[str(h) for h in lv] for lv in n.smtp_hosts] == [
        ["mx1.example.net", "mx2.example.net"], ["[192.0.2.5]:2525"], ["lookup-mx:backup.example.org"]]
    assert n.smtp_port == 2525 and c.effective("example.net").smtp_port == 2525
    assert c.effective("x.gmail.com").max_smtp_out == 1 and c.effective("x.yahoo.com").max_smtp_out == 1
    files = {a.target: a for a in c.acct_files}
    f = files["/var/log/bpmta/acct.csv"]
    assert f.records == ("d", "b", "t", "tq", "r") and f.record_fields == {"d": "*,header_X-Tracker"}
    assert (f.max_size, f.move_interval, f.move_to, f.delete_after) == (50 * 1024 ** 2, 300, "/var/log/bpmta/old", 8 * 86400)
    p = files["bounceproc pipe"]
    assert p.pipe and p.records == ("d", "b") and p.retry_interval == 60 and p.write_timeout == 30


def test_inheritance_most_specific_wins_whatever_the_order(tmp_path):
    c = load(tmp_path, """
<domain a.x.com>
  max-smtp-out 4
</domain>
<domain *.x.com>
  max-smtp-out 3
  max-msg-per-connection 30
</domain>
<domain [*.]x.com>
  max-smtp-out 2
  max-rcpt-per-transaction 20
  bounce-after 1d
</domain>
<domain *>
  max-smtp-out 1
  bounce-after 2d
  connect-timeout 10s
</domain>
""")
    a = c.effective("a.x.com")
    assert (a.max_smtp_out, a.max_msg_per_connection, a.max_rcpt_per_transaction, a.bounce_after, a.connect_timeout) \
        == (4, 30, 20, 86400, 10)
    b = c.effective("b.x.com")           # *.x.com over [*.]x.com
    assert (b.max_smtp_out, b.max_msg_per_connection) == (3, 30)
    x = c.effective("x.com")             # *.x.com does not match x.com itself
    assert (x.max_smtp_out, x.max_msg_per_connection, x.bounce_after) == (2, 0, 86400)
    o = c.effective("other.org")
    assert (o.max_smtp_out, o.bounce_after) == (1, 2 * 86400)


def test_vmta_domain_over_pool_over_global(tmp_path):
    c = load(tmp_path, FULL)
    assert c.effective("gmail.com").max_smtp_out == 20
    assert c.effective("gmail.com", None, "pool1").max_smtp_out == 5
    assert c.effective("gmail.com", None, "pool1").max_msg_rate == Rate(500, 3600)
    assert c.effective("gmail.com", "v1", "pool1").max_smtp_out == 3        # vmta's <domain>
    assert c.effective("gmail.com", "v1", "pool1").max_msg_rate == Rate(500, 3600)  # merged from the pool
    assert c.effective("aol.com", "v1").max_smtp_out == 7                   # vmta-level max-smtp-out


def test_cleared_value_goes_back_to_the_default(tmp_path):
    c = load(tmp_path, '<domain *>\n max-msg-rate 10/h\n</domain>\n<domain x.com>\n max-msg-rate ""\n</domain>\n')
    assert c.effective("x.com").max_msg_rate is None and c.effective("y.com").max_msg_rate == Rate(10, 3600)


def test_seed_guide_examples_load_with_alias_warnings(tmp_path):
    c = load(tmp_path, """
queue-path /var/spool/pmta
<domain *> max-delivery-rate 1000/h retry-interval 5m bounce-after 5d </domain>
<domain example.com>
  retry 5m 10m 30m 1h 6h 24h 72h 7d
  max-message-per-connection 50
  max-connections 10
</domain>
""")
    assert c.spool_dir == "/var/spool/pmta"
    d = c.effective("example.com")
    assert d.max_msg_rate == Rate(1000, 3600) and d.bounce_after == 5 * 86400
    assert d.retry_after == (300, 600, 1800, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400)
    assert d.max_msg_per_connection == 50 and d.max_smtp_out == 10
    assert c.effective("other.com").retry_after == (300,)
    text = "\n".join(c.warnings)
    for alias, canonical in (("queue-path", "<spool /var/spool/pmta>"), ("max-delivery-rate", "max-msg-rate"),
                             ("retry-interval", "retry-after"), ("retry", "retry-after"),
                             ("max-message-per-connection", "max-msg-per-connection"),
                             ("max-connections", "max-smtp-out")):
        assert f"'{alias}' is not a PowerMTA directive; read as '{canonical}'" in text
    assert "mta.conf:3: warning: 'max-delivery-rate'" in text


def test_include_with_wildcards_and_errors_name_the_included_file(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "domains" / "a.conf").write_text("<domain a.com>\n  max-smtp-out 3\n</domain>\n")
    (tmp_path / "domains" / "b.conf").write_text("<domain b.com>\n  max-smtp-out 4\n</domain>\n")
    (tmp_path / "src.conf").write_text("always-allow-relaying yes\n")
    c = load(tmp_path, "include domains/*.conf\n<source 127.0.0.1>\n  include src.conf\n</source>\n")
    assert c.effective("a.com").max_smtp_out == 3 and c.effective("b.com").max_smtp_out == 4
    assert c.source_for("127.0.0.1").always_allow_relaying
    (tmp_path / "domains" / "c.conf").write_text("<domain c.com>\n  max-smtp-out many\n</domain>\n")
    errs = errors(tmp_path, "include domains/*.conf\n")
    assert any(e.startswith(f"{tmp_path}/domains/c.conf:2: 'max-smtp-out': expected a whole number") for e in errs)
    errs = errors(tmp_path, "include nothere.conf\n")
    assert errs[0].startswith(f"{tmp_path}/mta.conf:1: include: no such file")


def test_quoting_and_comments(tmp_path):
    c = load(tmp_path, 'host-name "mta.example.com"  # our name\n<acct-file "|bounceproc pipe --quiet">\n</acct-file>\n')
    assert c.host_name == "mta.example.com"
    assert c.acct_files[0].target == "bounceproc pipe --quiet" and c.acct_files[0].pipe


@pytest.mark.parametrize("text, expected", [
    ("bogus-directive 1\n", "mta.conf:1: unknown directive 'bogus-directive'"),
    ("<domain *>\n  max-smtp-out lots\n</domain>\n", "mta.conf:2: 'max-smtp-out': expected a whole number"),
    ("<domain *>\n  max-msg-rate 5/fortnight\n</domain>\n", "mta.conf:2: 'max-msg-rate': expected a rate"),
    ("<domain *>\n  bounce-after soon\n</domain>\n", "mta.conf:2: 'bounce-after': expected a duration"),
    ("<domain *>\n  smtp-hosts [not-an-ip]:25\n</domain>\n", "mta.conf:2: 'smtp-hosts'"),
    ("<source 10.0.0.0/8>\n  max-smtp-out 3\n</source>\n", "mta.conf:2: 'max-smtp-out' is not allowed in <source 10.0.0.0/8>"),
    ("<domain *>\n  always-allow-relaying yes\n</domain>\n", "mta.conf:2: 'always-allow-relaying' is not allowed in <domain *>"),
    ("max-smtp-out 3\n", "mta.conf:1: 'max-smtp-out' is not allowed in the global level"),
    ("<domain *>\n  <source 1.2.3.4>\n  </source>\n</domain>\n", "mta.conf:2: <source> is not allowed inside <domain *>"),
    ("<domain *>\n", "mta.conf:1: <domain> is never closed"),
    ("</domain>\n", "mta.conf:1: unexpected </domain>"),
    ("<bounce-thing x>\n</bounce-thing>\n", "mta.conf:1: unknown block <bounce-thing>"),
    ("smtp-listener localhost\n", "mta.conf:1: 'smtp-listener': expected IP:PORT"),
    ("<acct-file /tmp/a.csv>\n  records d,x\n</acct-file>\n", "mta.conf:2: 'records': expected record types"),
    ("<domain bad..^name>\n</domain>\n", "mta.conf:1: <domain bad..^name>: expected *, name"),
    ("<virtual-mta-pool p>\n  virtual-mta nope\n</virtual-mta-pool>\n", "mta.conf:1: <virtual-mta-pool p>: unknown virtual-mta 'nope'"),
    ('host-name "unterminated\n', "mta.conf:1: unbalanced quote"),
])
def test_errors_name_file_line_and_what_was_expected(tmp_path, text, expected):
    errs = errors(tmp_path, text)
    assert any(e.startswith(f"{tmp_path}/{expected}") for e in errs), errs


def test_all_errors_are_reported_at_once(tmp_path):
    errs = errors(tmp_path, "one 1\ntwo 2\n<domain *>\n  three 3\n</domain>\n")
    assert len(errs) == 3


def big_config(n: int) -> str:
    parts = ["smtp-listener 127.0.0.1:2525", "<domain *>", "  max-smtp-out 10", "</domain>"]
    for i in range(n):
        parts += [f"<domain d{i}.example.com>", f"  max-smtp-out {i % 50 + 1}",
                  "  max-msg-rate 1000/h", "  retry-after 10m,30m,1h", "  bounce-after 2d",
                  f"  smtp-hosts [192.0.2.{i % 250 + 1}]:25", "</domain>"]
    return "\n".join(parts) + "\n"


def test_a_real_world_sized_config(tmp_path):
    c = load(tmp_path, big_config(5000))
    assert len(c.domains) == 5001
    assert c.effective("d4999.example.com").max_smtp_out == 4999 % 50 + 1
    assert c.effective("unlisted.example.com").max_smtp_out == 10


def test_check_config_command(tmp_path):
    p = tmp_path / "mta.conf"
    p.write_text(FULL)
    out = subprocess.run([sys.executable, "-m", "bounceproc", "mta", "check-config", str(p),
                          "--domain", "gmail.com", "--vmta", "v1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "max-smtp-out 3" in out.stdout and "retry-after 10m,10m,1h,4h,12h" in out.stdout
    p.write_text("<domain *>\n  max-smtp-out x\n</domain>\n")
    out = subprocess.run([sys.executable, "-m", "bounceproc", "mta", "check-config", str(p)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"{p}:2:" in out.stderr
