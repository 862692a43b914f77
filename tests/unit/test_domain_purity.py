"""The domain core stays pure: nothing under bounceproc/domain imports I/O frameworks."""
from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"celery", "sqlalchemy", "aiosmtpd", "redis", "psycopg", "fastapi", "starlette",
             "uvicorn", "httpx", "alembic", "aiosmtplib", "socket", "requests"}
DOMAIN = Path(__file__).resolve().parents[2] / "bounceproc" / "domain"


def test_domain_imports_no_io_frameworks():
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in FORBIDDEN or (n.startswith("bounceproc.") and not n.startswith("bounceproc.domain")):
                    offenders.append(f"{path.relative_to(DOMAIN)}: {n}")
    assert offenders == []
