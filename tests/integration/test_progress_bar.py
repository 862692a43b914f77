"""Progress bars of `import`, `reprocess` and `suppressions import`: drawn on stderr when it is a
terminal (a real pseudo-terminal here), and nothing more than before when it is not.

Embedded settings (SQLite, no broker): the command is the whole system under test.
"""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from bounceproc import bootstrap
from bounceproc.app.intake import process_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BAR = "━"          # rich draws its bars with this character
ESC = "\x1b"


def _env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOUNCEPROC_", "NO_COLOR", "FORCE_COLOR"))}
    env.update(BOUNCEPROC_DATABASE_URL=settings.db_url, BOUNCEPROC_DATA_DIR=settings.data_dir,
               TERM="xterm-256color", COLUMNS="160")
    return env


def _command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("bounceproc")), *args]


def on_terminal(settings, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe): (exit status, stdout, what the terminal
    received without its colour and cursor sequences)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(_command(*args), env=_env(settings), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        for _ in range(100_000):                # until the terminal closes (EIO) or the deadline
            if time.monotonic() > deadline:
                break
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, out.decode(), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))


def piped(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), env=_env(settings), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def test_import_draws_a_bar_on_a_terminal_only(make_settings, sqlite_url, tmp_path):
    settings = make_settings(database_url=sqlite_url)
    files = [str(FIXTURES / "acct" / name) for name in ("pmta-union-all-types.csv", "pmta-v5-d-b-t.csv")]
    size = sum(Path(f).stat().st_size for f in files)

    status, out, terminal = on_terminal(settings, "import", *files)
    assert status == 0, terminal
    assert out == ""
    assert BAR in terminal and f"{size / 1000:.1f}/{size / 1000:.1f} kB" in terminal
    assert "pmta-v5-d-b-t.csv: 17 lines" in terminal                       # the file and the lines read
    assert "pmta-union-all-types.csv: 10 lines in 1 batches" in terminal   # the usual lines, above the bar
    assert "records:" in terminal.split(BAR)[-1]                           # the summary after it

    again = piped(settings, "import", "--restart", *files)
    assert again.returncode == 0 and again.stdout == ""
    assert BAR not in again.stderr and ESC not in again.stderr
    lines = again.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["bounceproc import"] * len(lines)
    assert any(line.endswith(" lines in 1 batches") for line in lines) and "records:" in lines[-1]

    quiet = on_terminal(settings, "import", "--quiet", "--restart", *files)
    assert quiet[0] == 0 and BAR not in quiet[2]


def test_reprocess_draws_a_bar_on_a_terminal_only(make_settings, sqlite_url):
    settings = make_settings(database_url=sqlite_url)
    with bootstrap.engine(settings).begin() as conn:
        ids = [bootstrap.insert_intake(conn, "message", (FIXTURES / "sink" / name).read_bytes(),
                                       origin="sink:192.0.2.1", meta={"rcpt_tos": ["fbl@example.net"]})
               for name in ("arf-redacted-tracking-header.eml", "arf-redacted-unattributed.eml")]
    process_messages(settings, ids)

    status, out, terminal = on_terminal(settings, "reprocess", "--since", "1h")
    assert status == 0, terminal
    assert BAR in terminal and "2/2 messages" in terminal
    assert out.startswith("2 messages re-classified; 0 changed")         # stdout as before

    plain = piped(settings, "reprocess", "--since", "1h")
    assert plain.returncode == 0 and plain.stderr == ""                  # < 1000 messages: no progress line
    assert plain.stdout == out


def test_suppressions_import_draws_a_bar_on_a_terminal_only(make_settings, sqlite_url, tmp_path):
    settings = make_settings(database_url=sqlite_url)
    csv_file = tmp_path / "list.csv"
    rows = [f"user{i}@example.com,unsubscribe,list:news" for i in range(600)] + ["not-an-address,manual,"]
    csv_file.write_text("address,reason,scope\n" + "\n".join(rows) + "\n")

    status, out, terminal = on_terminal(settings, "suppressions", "import", str(csv_file))
    assert status == 1, terminal                                         # one row failed
    assert BAR in terminal and "601/601 rows" in terminal
    assert "line 602:" in terminal                                      # the failed row, on stderr
    assert ": done, 601 rows: 600 changed, 0 unchanged, 1 failed" in out
    assert "user7@example.com,list:news,unsubscribe" in piped(settings, "suppressions", "export").stdout

    again = piped(settings, "suppressions", "import", str(csv_file))
    assert again.returncode == 1 and ": done, 601 rows: 0 changed, 600 unchanged, 1 failed" in again.stdout
    assert BAR not in again.stderr and ESC not in again.stderr
    assert again.stderr.splitlines() == [line for line in again.stderr.splitlines() if line.startswith("  line 602:")]
    assert len(again.stderr.splitlines()) == 1

    missing = piped(settings, "suppressions", "import", str(tmp_path / "absent.csv"))
    assert missing.returncode == 2
    assert missing.stderr == f"bounceproc suppressions import: {tmp_path / 'absent.csv'}: No such file or directory\n"
    no_header = tmp_path / "bare.csv"
    no_header.write_text("alice@example.com\n")
    bare = piped(settings, "suppressions", "import", str(no_header))
    assert bare.returncode == 2 and "address" in bare.stderr
