"""Packaging (issue 14, item 10): a wheel built from the project's files installs into a fresh venv
and works there: `bounceproc --version`, `classify` on a fixture, `db create` (the migrations are in
the wheel) and `show status`; the version has one source; LICENSE matches pyproject.toml. If a
Docker daemon answers, the image builds and prints its version.

The fresh venv gets the wheel (no dependencies) and, through a .pth line, the test venv's
site-packages for the dependencies, so no index is needed; .pth files there (the editable install
of this checkout) are not processed, so `bounceproc` can only come from the wheel."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

import bounceproc

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "bounceproc", "workers", "migrations")


def _run(*args, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return r


def test_license_and_one_version():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert "version" in meta["dynamic"] and "version" not in meta
    assert re.search(rf"^## {re.escape(bounceproc.__version__)}\b", (ROOT / "CHANGELOG.md").read_text(), re.M)


def test_wheel_installs_in_a_fresh_venv_and_runs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", src)
    wheel = next((tmp_path / "dist").glob("bounceproc-*.whl"))
    assert wheel.name.startswith(f"bounceproc-{bounceproc.__version__}-")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOUNCEPROC_", "XDG_", "PYTHON"))}
    env["HOME"] = str(tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    cli = venv / "bin" / "bounceproc"
    where = _run(python, "-c", "import bounceproc, migrations; print(bounceproc.__file__, migrations.__path__[0])",
                 env=env, cwd=work).stdout
    assert str(ROOT) not in where and str(venv) in where, where
    assert _run(cli, "--version", env=env, cwd=work).stdout.strip() == f"bounceproc {bounceproc.__version__}"
    out = _run(cli, "classify", "--json", ROOT / "fixtures/dsn/postfix-user-unknown.eml", env=env, cwd=work).stdout
    assert '"userunknown"' in out
    _run(cli, "db", "create", env=env, cwd=work)
    assert "Suppressions by reason" in _run(cli, "show", "status", env=env, cwd=work).stdout


def test_docker_image_builds_and_prints_its_version(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no Docker daemon answers on this machine (docker info failed)")
    tag = f"bounceproc-test:{tmp_path.name.lower()}"
    _run("docker", "build", "-q", "-t", tag, ROOT, timeout=1800)
    try:
        out = _run("docker", "run", "--rm", tag, "--version", timeout=300).stdout.strip()
        assert out == f"bounceproc {bounceproc.__version__}"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
