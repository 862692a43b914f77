"""/readyz checks: can this process do its work? Database reachable, schema at this version's
head, broker reachable (when one is configured). Each check is one line of text: "ok" or why not.

Adapter layer. /healthz (liveness) checks nothing and stays in app.py.
"""
from __future__ import annotations

from bounceproc.config import Settings


def _database(settings: Settings) -> tuple[bool, str, bool]:
    """(database ok, its text, schema ok and its text folded in)."""
    from bounceproc import dbsetup
    try:
        current, head = dbsetup.schema_state(settings)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return False, dbsetup.explain(exc, settings), False
    return True, "ok", current == head


def _broker(settings: Settings) -> tuple[bool, str]:
    if settings.embedded:
        return True, "none (embedded mode)"
    from kombu import Connection
    try:
        with Connection(settings.broker_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, "ok"
    except Exception as exc:  # noqa: BLE001
        from bounceproc.dbsetup import redacted
        return False, f"cannot reach {redacted(settings.broker_url)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def readiness(settings: Settings) -> tuple[bool, dict[str, str]]:
    from bounceproc import dbsetup
    db_ok, db_text, schema_ok = _database(settings)
    broker_ok, broker_text = _broker(settings)
    checks = {"database": db_text,
              "migrations": ("ok" if schema_ok else dbsetup.schema_line(settings)) if db_ok else "unknown",
              "broker": broker_text}
    return db_ok and schema_ok and broker_ok, checks
