"""`bounceproc serve` on the embedded default (SQLite, no broker), as README command one runs it:
a subprocess on free ports; an API key from the CLI; a suppression and a one-click unsubscribe
through HTTP; the webhooks delivered by the in-process sender to a real receiver."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from bp_testing import free_port, listening_port, start_serve, stop_process
from test_api_support import receiver  # noqa: F401

from bounceproc.domain.webhook_signing import verify


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update({"BOUNCEPROC_DATA_DIR": str(tmp_path / "data"), "BOUNCEPROC_WEBHOOK_ALLOW": "127.0.0.0/8",
                "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def test_serve_runs_api_sink_worker_and_webhooks_in_one_process(tmp_path, receiver):
    api_port, smtp_port = free_port(), free_port()
    env = _env(tmp_path, BOUNCEPROC_PUBLIC_URL=f"http://127.0.0.1:{api_port}")
    proc = start_serve(["serve", "--api", f"127.0.0.1:{api_port}", "--smtp", f"127.0.0.1:{smtp_port}",
                        "--accept", "bounces.example.net"], env, tmp_path, tmp_path / "serve.log")
    try:
        out = (tmp_path / "serve.log").read_text()
        assert "API listening" in out, out
        assert "mode embedded" in out and "database sqlite:///" in out
        assert f"SMTP sink listening on 127.0.0.1:{smtp_port}" in out
        key = subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "apikey", "create", "--scope", "admin"],
                             env=env, capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path
                             ).stdout.strip().splitlines()[-1]
        assert key.startswith("bp_")
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"},
                          trust_env=False, timeout=30) as c:
            ep = c.post("/v1/webhook-endpoints", json={"url": receiver.url("/ok")}).json()
            assert c.put("/v1/suppressions/a@example.com", json={}).status_code == 201
            url = subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "unsubscribe-url", "--to", "b@example.com",
                                  "--list", "news", "--json"], env=env, capture_output=True, text=True, check=True,
                                 timeout=60, cwd=tmp_path).stdout
            import json
            link = json.loads(url)["url"]
            assert httpx.post(link, content=b"List-Unsubscribe=One-Click", trust_env=False,
                              headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
            assert c.get("/v1/suppressions/b@example.com", params={"scope": "list:news"}).status_code == 200
        deadline = time.monotonic() + 30
        while len(receiver.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        types = sorted(json.loads(r["body"])["type"] for r in receiver.requests)
        assert types == ["recipient.suppressed", "recipient.suppressed", "recipient.unsubscribed"]
        for r in receiver.requests:
            verify([ep["secret"]], r["headers"], r["body"], int(time.time()))
    finally:
        stop_process(proc)


def test_api_listening_is_said_once_the_port_is_bound(tmp_path):
    """The line comes from uvicorn's startup, after the bind: one request right after it is
    answered, no retry. With port 0 the line names the port the kernel chose."""
    proc = start_serve(["serve", "--api", "127.0.0.1:0", "--no-sink"], _env(tmp_path), tmp_path,
                       tmp_path / "serve.log")
    try:
        out = (tmp_path / "serve.log").read_text()
        port = listening_port(out)
        assert port != 0, out
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False, timeout=30).json() == {"ok": True}
    finally:
        stop_process(proc)


def test_serve_refuses_a_bad_listen_address(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "serve", "--api", "nonsense"], env=_env(tmp_path),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "HOST:PORT" in r.stderr


def test_serve_fails_when_the_sink_cannot_start(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        smtp_port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "serve",
                               "--api", f"127.0.0.1:{free_port()}", "--smtp", f"127.0.0.1:{smtp_port}"],
                              env=_env(tmp_path), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"SMTP sink could not start on 127.0.0.1:{smtp_port}" in proc.stderr
    assert "API listening" not in proc.stdout
