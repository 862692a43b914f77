"""Logging an operator can follow: one line per processed message or batch at info level, as text
or JSON lines (`--log-format json`), and no library noise at info level.

Wiring layer, the one home of logging set-up. `quiet_parser_noise` runs first thing in every
process (the CLI's main and the Celery worker's start); `configure` is then called once by the
commands that log (serve, sink, pipe, mailbox...) and the worker quiets its libraries the same
way. The domain never touches a logger's level; the application layer logs through
`bounceproc.*` loggers only.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries that talk too much at info level: aiosmtpd logs every SMTP session and command and
# "Available AUTH mechanisms" (AUTH is never offered); Celery logs every task received/succeeded
# (the webhook retry task every 5 s) and every beat tick; uvicorn every request; alembic each step.
QUIET = ("mail.log", "aiosmtpd", "celery.app.trace", "celery.worker.strategy", "celery.beat",
         "celery.worker.consumer", "uvicorn.access", "uvicorn.error", "alembic", "httpx", "kombu")

# Silenced in every process, whatever the level: flufl.bounce logs a traceback for every detector
# that trips on odd input, while its answer is all we use (domain/parse/legacy.py: a failed scan
# gives no address).
SILENT = ("flufl.bounce",)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str | int = "info", fmt: str = "text", stream=None) -> None:
    """Root handler on stderr (or `stream`) with the chosen format; quiet libraries above info."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    quiet_libraries()


def quiet_parser_noise() -> None:
    for name in SILENT:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def quiet_libraries() -> None:
    quiet_parser_noise()
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def from_environment(default_level: str) -> tuple[str, str]:
    """(level, format) from BOUNCEPROC_LOG_LEVEL / BOUNCEPROC_LOG_FORMAT (the CLI's --log-level and
    --log-format set them), else `default_level` and text."""
    import os
    return (os.environ.get("BOUNCEPROC_LOG_LEVEL") or default_level,
            os.environ.get("BOUNCEPROC_LOG_FORMAT") or "text")
