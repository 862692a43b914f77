"""The commands shown in README.md and docs/*.md run, as shown, against a real `bounceproc serve`.

Fenced blocks marked ```sh test are concatenated per file and run by bash (`set -euo pipefail`) in a
temporary directory holding a `fixtures` link, with the venv's `bounceproc` first on PATH and HOME /
XDG_DATA_HOME in the temporary directory. The file's ```sh serve block (or, if it has none,
DEFAULT_SERVE) is started first, in its own process group, and stopped at the end. The example ports
(API 8025, sink 2525, webhook receiver 8026) are replaced by free ones so that parallel runs do not
collide (the commands that rely on the default addresses get them through BOUNCEPROC_API_LISTEN and
BOUNCEPROC_SINK_LISTEN). Background jobs a block starts are killed by the script's EXIT trap.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bp_testing import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```sh (test|serve)\n(.*?)^```", re.S | re.M)
EXAMPLE_PORTS = ("8025", "2525", "8026")
DEFAULT_SERVE = ("BOUNCEPROC_WEBHOOK_ALLOW=127.0.0.1 bounceproc serve "
                 "--accept bounces.example.net --accept fbl@example.net")
# What the prose around the blocks promises, per file.
EXPECTED = {
    "README.md": [
        "carol@example.org,global,hard_bounce", "dave@example.com,global,hard_bounce",
        "henry@example.com,global,complaint", "ivy@example.com,list:news,unsubscribe",
        '{"address":"alice@example.com","suppressed":false}',
        "recipient.hard_bounced dave@example.com global", "recipient.complained henry@example.com global",
        "recipient.unsubscribed ivy@example.com list:news",
    ],
}


def blocks(path: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(path.read_text())


def documented_files() -> list[Path]:
    return [p for p in DOC_FILES if any(kind == "test" for kind, _ in blocks(p))]


def _with_ports(text: str, ports: dict[str, str]) -> str:
    for example, real in ports.items():
        text = re.sub(rf"\b{example}\b", real, text)
    return text


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOUNCEPROC_", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg-data"), PYTHONUNBUFFERED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group this test started (by its leader's id)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_readme_has_the_quick_start_blocks():
    kinds = [kind for kind, _ in blocks(ROOT / "README.md")]
    assert kinds.count("serve") == 1 and kinds.count("test") >= 5
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("doc", documented_files(), ids=lambda p: p.name)
def test_documented_commands_run(doc: Path, tmp_path: Path):
    if shutil.which("curl") is None:
        pytest.skip("the documented commands use curl, which is not installed")
    ports = {example: str(free_port()) for example in EXAMPLE_PORTS}
    found = blocks(doc)
    serve = next((body for kind, body in found if kind == "serve"), DEFAULT_SERVE)
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "".join(
        body for kind, body in found if kind == "test")
    work = tmp_path / "work"
    work.mkdir()
    (work / "fixtures").symlink_to(ROOT / "fixtures")
    env = _env(tmp_path)
    env.update(BOUNCEPROC_API_LISTEN=f"127.0.0.1:{ports['8025']}", BOUNCEPROC_SINK_LISTEN=f"127.0.0.1:{ports['2525']}")
    serve_log = tmp_path / "serve.log"
    with open(serve_log, "w") as log:
        server = subprocess.Popen(["bash", "-c", _with_ports(serve, ports)], cwd=work, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "API listening" not in serve_log.read_text() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "API listening" in serve_log.read_text(), serve_log.read_text()
        runner = subprocess.Popen(["bash", "-c", _with_ports(script, ports)], cwd=work, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = runner.communicate(timeout=180)
        finally:
            _stop(runner)
        assert runner.returncode == 0, f"{doc.name} commands failed:\n{out}\n--- serve log:\n{serve_log.read_text()}"
        for expected in EXPECTED.get(doc.name, []):
            assert expected in out, f"{doc.name}: {expected!r} not in the output:\n{out}"
    finally:
        _stop(server)
