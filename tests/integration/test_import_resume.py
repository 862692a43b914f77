"""Issue 13, item 6: a suppression CSV import (POST /v1/imports) interrupted by a restart of
`bounceproc serve` (embedded default) resumes after it, and applies every row once; SIGTERM stops
`serve` promptly even while an import runs. A real `serve` subprocess on free ports; every wait
is bounded; the process is stopped by its PID."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select
from bp_testing import start_serve
from test_api_support import free_port

from bounceproc import bootstrap
from bounceproc.config import load_settings
from bounceproc.storage.tables import suppression_history, suppressions

ROWS = 20_000
CLI = [sys.executable, "-m", "bounceproc.entrypoints.cli.main"]


class Serve:
    def __init__(self, tmp_path, env: dict, api_port: int):
        self.log_path = tmp_path / f"serve-{time.monotonic_ns()}.log"
        self.proc = start_serve(["serve", "--api", f"127.0.0.1:{api_port}", "--smtp", f"127.0.0.1:{free_port()}"],
                                env, tmp_path, self.log_path)
        assert "API listening" in self.log(), "serve did not start:\n" + self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def ensure_stopped(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def job(c, job_id: str) -> dict:
    return c.get(f"/v1/imports/{job_id}").json()


def wait_for(c, job_id: str, pred, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    j = job(c, job_id)
    while not pred(j) and time.monotonic() < deadline:
        time.sleep(0.05)
        j = job(c, job_id)
    return j


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_an_interrupted_import_resumes_after_a_restart_and_applies_each_row_once(tmp_path, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    env.update(BOUNCEPROC_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    api_port = free_port()
    serve = Serve(tmp_path, env, api_port)
    try:
        key = subprocess.run([*CLI, "apikey", "create", "--scope", "admin"], env=env, capture_output=True, text=True,
                             check=True, timeout=60, cwd=tmp_path).stdout.strip().splitlines()[-1]
        csv = "address,reason,note\n" + "".join(f"user{i}@example.com,manual,row {i}\n" for i in range(ROWS))
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"},
                          trust_env=False, timeout=30) as c:
            r = c.post("/v1/imports", content=csv.encode(), headers={"content-type": "text/csv"})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            j = wait_for(c, job_id, lambda j: j["total"] >= 1000 or j["state"] == "done", 120)
        assert j["state"] == "running" and j["total"] < ROWS, j         # interrupted mid-way
        if how == "sigterm":
            t0 = time.monotonic()
            serve.signal(signal.SIGTERM)
            assert serve.wait(30) == 0, serve.log()
            stopped_after = time.monotonic() - t0
        else:
            serve.signal(signal.SIGKILL)
            serve.wait(30)
        serve = Serve(tmp_path, env, api_port)                          # the restart resumes the job
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"},
                          trust_env=False, timeout=30) as c:
            j = wait_for(c, job_id, lambda j: j["state"] in ("done", "failed"), 300)
        assert j["state"] == "done", j
        assert j["total"] == ROWS and j["changed"] + j["unchanged"] == ROWS and j["failed"] == 0, j
        settings = load_settings(data_dir=str(tmp_path / "data"))
        with bootstrap.engine(settings).connect() as conn:
            n_sup = conn.execute(select(func.count()).select_from(suppressions)).scalar_one()
            n_hist = conn.execute(select(func.count()).select_from(suppression_history)).scalar_one()
        assert n_sup == ROWS and n_hist == ROWS                          # each row applied once
        if how == "sigterm":
            print(f"serve stopped {stopped_after:.1f}s after SIGTERM")   # the bound is the wait above
    finally:
        serve.ensure_stopped()
