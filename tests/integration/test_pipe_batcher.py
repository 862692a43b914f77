"""The pipe's batch cutting and its local journal (no database): record boundaries with quoted
newlines, header lines mid-stream, offsets for import checkpoints, fsynced journal files."""
from __future__ import annotations

import random

from bounceproc.entrypoints.acct_pipe import Batcher, Journal

H1 = b"type,timeLogged,rcpt,dsnDiag\r\n"
H2 = b"type,rcpt,timeLogged\r\n"


def rec(i: int, multiline: bool = False) -> bytes:
    diag = '"smtp;550 first\r\nsecond ""quoted"" line"' if multiline else "smtp;250 ok"
    return f"d,2024-03-01 10:00:00+0000,u{i}@example.com,{diag}\r\n".encode()


def feed_all(b: Batcher, data: bytes, chunk: int) -> list:
    out = []
    for i in range(0, len(data), chunk):
        out += b.feed(data[i:i + chunk])
    return out + b.finish()


def test_batches_keep_records_whole_and_follow_the_header():
    body = [H1] + [rec(i, multiline=(i % 7 == 3)) for i in range(40)] + [H2] + [b"d,u99@example.com,1709287200\r\n"]
    data = b"".join(body)
    for chunk in (1, 3, 17, 4096):
        batches = feed_all(Batcher(max_lines=10), data, chunk)
        assert b"".join(x.payload for x in batches) == data.replace(H1, b"").replace(H2, b"")
        assert {x.header for x in batches[:-1]} == {H1.decode().strip()}
        assert batches[-1].header == H2.decode().strip() and batches[-1].payload.startswith(b"d,u99")
        for x in batches:
            assert x.payload.count(b'"') % 2 == 0                 # never cut inside quotes
            assert x.lines == x.payload.count(b"\n")
        # line numbers: physical lines of the stream, header lines included
        assert batches[0].first_line == 2
        assert batches[-1].first_line == data.count(b"\n")
        for a, b in zip(batches, batches[1:]):
            assert b.first_line in (a.first_line + a.lines, a.first_line + a.lines + 1)


def test_offsets_allow_an_exact_resume():
    data = H1 + b"".join(rec(i, multiline=(i % 5 == 0)) for i in range(100))
    batches = feed_all(Batcher(max_lines=9), data, 1000)
    for x in batches[:-1]:
        # resuming at end_offset with next_line/next_header reproduces the rest exactly
        rest = feed_all(Batcher(header=x.next_header, line_no=x.next_line, offset=x.end_offset, max_lines=9),
                        data[x.end_offset:], 333)
        assert b"".join(r.payload for r in rest) == data[x.end_offset:]
        assert rest[0].first_line == x.next_line
        assert rest[-1].end_offset == len(data)


def test_partial_last_line_is_left_for_later_when_asked():
    data = H1 + rec(1) + b"d,2024-03-01 10:00:00+0000,u2@exa"
    b = Batcher()
    out = b.feed(data) + b.finish(partial_line=False)
    assert [x.payload for x in out] == [rec(1)] and out[0].end_offset == len(H1 + rec(1))
    b = Batcher()
    out = b.feed(data) + b.finish()
    assert out[0].payload.endswith(b"u2@exa")


def test_a_stray_quote_cannot_swallow_a_header_line():
    data = H1 + b'd,2024,"broken@example.com,x\r\n' + rec(2) + H2 + b"d,u3@example.com,1709287200\r\n"
    out = feed_all(Batcher(), data, 7)
    assert out[-1].header == H2.decode().strip() and out[-1].payload == b"d,u3@example.com,1709287200\r\n"


def test_unterminated_quote_is_bounded():
    data = H1 + b'd,"open\r\n' + b"".join(rec(i) for i in range(500))
    out = feed_all(Batcher(max_lines=100), data, 4096)
    assert b"".join(x.payload for x in out) == data[len(H1):]
    assert max(x.lines for x in out) <= 300


def test_journal_append_read_remove_and_slots(tmp_path):
    j = Journal(tmp_path / "journal")
    b = feed_all(Batcher(), H1 + rec(1) + rec(2, True), 100)[0]
    p = j.append(b)
    meta, payload = Journal.read(p)
    key = meta.pop("key")
    assert key.startswith("pipe:") and len(key) <= 64          # fits intake.batch_key
    assert payload == b.payload and meta == {"header": b.header, "first_line": 2, "lines": b.lines}
    assert Journal.read(j.append(b))[0]["key"] != key           # every batch gets its own
    other = Journal(tmp_path / "journal")          # a second pipe on the same data dir
    assert other.dir != j.dir and other.entries() == []
    for e in j.entries():
        j.remove(e)
    assert j.entries() == []
    (j.dir / "000000000009.tmp").write_bytes(b"half")      # a write cut by a crash
    j.close()
    again = Journal(tmp_path / "journal")
    assert again.dir == j.dir and not list(again.dir.glob("*.tmp"))
    again.close()
    other.close()


def test_random_chunking_is_equivalent():
    rnd = random.Random(3)
    data = H1 + b"".join(rec(i, multiline=rnd.random() < 0.2) for i in range(300)) + H2 + b"d,x@example.com,1\r\n"
    ref = feed_all(Batcher(max_lines=50), data, len(data))
    for _ in range(20):
        b = Batcher(max_lines=50)
        out, i = [], 0
        while i < len(data):
            n = rnd.randrange(1, 200)
            out += b.feed(data[i:i + n])
            i += n
        out += b.finish()
        assert [(x.first_line, x.payload, x.header) for x in out] == [(x.first_line, x.payload, x.header) for x in ref]
