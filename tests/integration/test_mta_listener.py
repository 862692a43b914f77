"""The injection listener's shortcuts around aiosmtpd give aiosmtpd's own answers.

bounceproc/mta/listener.py reads plain `<local@domain> [params]` paths itself and lists only the
prefixed names in `dir()` of its session and handler (both for speed, bench/mta_relay); aiosmtpd's
own parser and tables are the reference here.
"""
from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from bounceproc.mta.listener import InjectionHandler, _MtaSMTP

PATHS = ["<a@b.c>", "<a@b.c> SIZE=100 BODY=8BITMIME", "<a@b.c>(comment)", "<a@b.c>  ", "  <A.B+c@Ex.com>",
         "<a..b@c.d>", "<.a@c.d>", "<a.@b.c>", "<a@[192.0.2.1]>", "<>", "<@x,@y:a@b.c>", "a@b.c",
         '<"q x"@b.c>', "<a@b.c> SIZE=1 ", "<a@b..c>", "<a@-b.c>", "<1rcpt@example.net>", "<a@b.c>x",
         "", "<a@b.c> (c) SIZE=1", "<a@b.c>\tSMTPUTF8", "<" + "l" * 70 + "@b.c>", "<ü@b.c>", "<a@b>"]


class _PlainHandler(InjectionHandler):
    """The handler with Python's default dir(), for the tables aiosmtpd builds on its own."""

    def __dir__(self):
        return object.__dir__(self)


def _sessions():
    async def make():
        ours = _MtaSMTP(InjectionHandler(None, None), hostname="h")
        theirs = SMTP(_PlainHandler(None, None), hostname="h")
        return ours, theirs
    return asyncio.run(make())


@pytest.mark.parametrize("path", PATHS)
def test_paths_read_as_aiosmtpd_reads_them(path):
    ours, theirs = _sessions()
    (a, ap), (b, bp) = ours._getaddr(path), theirs._getaddr(path)
    assert a == b
    assert (ap is None) == (bp is None) and (ap or "").split() == (bp or "").split()


def test_command_auth_and_hook_tables_are_aiosmtpds():
    ours, theirs = _sessions()
    assert ours._smtp_methods.keys() == theirs._smtp_methods.keys()
    assert ours._auth_methods.keys() == theirs._auth_methods.keys()
    assert ours._handle_hooks.keys() == theirs._handle_hooks.keys() == {"MAIL", "RCPT", "DATA"}
