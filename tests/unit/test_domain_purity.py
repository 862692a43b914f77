"""The domain core stays pure: what it loads, and what it names, is stdlib (and flufl.bounce).

Two checks: importing every `bounceproc.domain` module in a fresh interpreter (and calling
nothing) leaves no I/O framework in `sys.modules`; and no import statement under domain/, at
module level or inside a function, names an I/O framework or a bounceproc module outside
domain/ (a function-level import only loads when called, so the first check cannot see it).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "bounceproc" / "domain"
FORBIDDEN = {"celery", "sqlalchemy", "aiosmtpd", "redis", "psycopg", "fastapi", "starlette",
             "uvicorn", "httpx", "alembic", "aiosmtplib", "socket", "requests", "kombu",
             "psycopg_binary", "prometheus_client", "dns", "orjson"}
# Loaded by the standard library itself on some paths; never a sign of I/O in the domain.
LOADED_FORBIDDEN = FORBIDDEN - {"socket"}

PROBE = """
import importlib, json, pkgutil, sys
import bounceproc.domain as d
names = sorted(m.name for m in pkgutil.walk_packages(d.__path__, "bounceproc.domain."))
for n in names:
    importlib.import_module(n)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def _domain_modules() -> list[str]:
    out = []
    for path in sorted(DOMAIN.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


def test_importing_the_domain_loads_no_io_framework():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["imported"]) | {"bounceproc.domain"} == set(_domain_modules())
    loaded = {m for m in report["modules"] if m.split(".")[0] in LOADED_FORBIDDEN}
    assert loaded == set()
    outside = {m for m in report["modules"]
               if m.startswith("bounceproc.") and not m.startswith("bounceproc.domain")}
    assert outside == set()


def _imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        # `from bounceproc import bootstrap` imports bounceproc.bootstrap.
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return []


def _offends(name: str) -> bool:
    if name.split(".")[0] in FORBIDDEN:
        return True
    return name.startswith("bounceproc.") and not (name == "bounceproc.domain"
                                                   or name.startswith("bounceproc.domain."))


def test_domain_names_no_io_framework_and_nothing_outside_itself():
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            offenders += [f"{path.relative_to(DOMAIN)}: {n}" for n in _imported_names(node) if _offends(n)]
    assert offenders == []


def test_the_static_check_sees_function_level_project_imports():
    tree = ast.parse("def f():\n    from bounceproc import bootstrap\n")
    names = [n for node in ast.walk(tree) for n in _imported_names(node)]
    assert [n for n in names if _offends(n)] == ["bounceproc.bootstrap"]


def test_the_domain_leaves_library_loggers_alone():
    import logging

    from bounceproc.domain.parse.legacy import flufl_addresses
    before = logging.getLogger("flufl.bounce")
    state = (before.disabled, before.level)
    flufl_addresses(b"From: MAILER-DAEMON@example.net\nSubject: failure\n\nno address here\n")
    assert (before.disabled, before.level) == state
