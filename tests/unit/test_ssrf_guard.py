"""The webhook SSRF guard (outbound/ssrf.py) refuses every special-purpose address, IPv4 and IPv6,
in every spelling, and judges IPv6 forms that embed IPv4 by the IPv4 inside (issue 13, item 11).
Only IP literals and numeric host forms are used: nothing is looked up in the DNS."""
from __future__ import annotations

import ipaddress

import pytest

from bounceproc.outbound.ssrf import UnsafeTarget, check_url, embedded_ipv4, is_public

# One address from every IANA special-purpose block, IPv4 and IPv6, and the forms that hide them.
REFUSED = [
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.255.255.254", "169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255", "192.0.0.1",
    "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.2.1", "192.31.196.1", "192.52.193.1",
    "192.88.99.1", "192.168.1.1", "192.175.48.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
    "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::127.0.0.1", "::8.8.8.8", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254",
    "::ffff:10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe", "64:ff9b::127.0.0.1",
    "64:ff9b::a9fe:a9fe", "64:ff9b::10.1.2.3", "64:ff9b:1::1", "64:ff9b:1::808:808", "100::1",
    "100:0:0:1::1", "2001::1", "2001:1::1", "2001:2::1", "2001:3::1", "2001:4:112::1", "2001:10::1",
    "2001:20::1", "2001:30::1", "2001:db8::1", "2001:db8:ffff::1", "2002:7f00:1::", "2002:7f00:0001::1",
    "2002:a9fe:a9fe::1", "2002:0a00:0001::", "2002:c0a8:0101::1", "2002::", "2620:4f:8000::1",
    "3fff::1", "3fff:fff::1", "5f00::1", "fc00::1", "fd12:3456:789a::1", "fe80::1", "febf::1",
    "fec0::1", "feff::1", "ff02::1", "ff05::1:3", "ff0e::1", "1::1", "4000::1", "e000::1",
    # Teredo: server 65.54.227.120 (public), client 127.0.0.1 / 10.0.0.1 (bits inverted)
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    # Teredo with a private server address
    "2001:0:0a00:0001:8000:63bf:f7f7:f7f7",
]

ACCEPTED = [
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.15.255.255",
    "172.32.0.1", "192.0.1.255", "192.0.3.1", "192.167.255.255", "192.169.0.1", "198.17.255.255",
    "198.20.0.1", "223.255.255.254",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e", "2001:200::1",
    "::ffff:8.8.8.8", "::ffff:0:808:808", "64:ff9b::8.8.8.8", "2002:0808:0808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",       # Teredo: server and client (8.8.8.8) public
]


@pytest.mark.parametrize("text", REFUSED)
def test_special_purpose_addresses_are_not_public(text):
    assert not is_public(ipaddress.ip_address(text))
    url = f"http://[{text}]:8080/hook" if ":" in text else f"https://{text}/hook"
    with pytest.raises(UnsafeTarget):
        check_url(url)


@pytest.mark.parametrize("text", ACCEPTED)
def test_public_addresses_are_accepted(text):
    ip = ipaddress.ip_address(text)
    assert is_public(ip)
    url = f"http://[{text}]/hook" if ":" in text else f"https://{text}/hook"
    assert check_url(url) == [ip]


@pytest.mark.parametrize("host", [
    "2130706433", "0x7f000001", "017700000001", "127.1", "0177.0.0.1", "0x7f.0.0.1",   # 127.0.0.1
    "0", "0x0", "10.1", "167772161", "3232235777", "2852039166", "0xa9fea9fe",           # 0.0.0.0, 10/8, 192.168, 169.254
    "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]",
    "[2002:7F00:1::]", "[FEC0::1]", "[0000:0000:0000:0000:0000:0000:0000:0001]",
])
def test_numeric_spellings_are_resolved_then_refused(host):
    with pytest.raises(UnsafeTarget):
        check_url(f"http://{host}/hook")


def test_embedded_ipv4_is_unwrapped():
    v4 = ipaddress.IPv4Address
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:192.0.2.1")) == (v4("192.0.2.1"),)
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::c000:201")) == (v4("192.0.2.1"),)
    assert embedded_ipv4(ipaddress.IPv6Address("2002:c000:0201::1")) == (v4("192.0.2.1"),)
    assert embedded_ipv4(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:3fff:fdd2")) == (
        v4("65.54.227.120"), v4("192.0.2.45"))                 # RFC 4380 §4 example
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) is None


def test_allow_list_still_admits_a_private_target():
    assert check_url("http://127.0.0.1:9/hook", allow=["127.0.0.0/8"]) == [ipaddress.ip_address("127.0.0.1")]
    assert check_url("http://[2002:7f00:1::]/hook", allow=["2002::/16"])
