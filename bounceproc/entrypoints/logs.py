"""Process-wide logging choices for libraries, made once where a process starts.

Called by the CLI (entrypoints/cli/main.py) and the Celery worker (workers/celery_app.py), never
by the domain. flufl.bounce logs a traceback for every detector that trips on odd input, while
its answer is all we use (domain/parse/legacy.py: a failed scan gives no address).
"""
from __future__ import annotations

import logging


def quiet_library_logs() -> None:
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
