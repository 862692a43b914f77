"""The MTA's recent notable events (suppressed recipients skipped, queues entering or leaving
backoff, operator actions), kept in memory for `bounceproc mta show status` and the management
HTTP. Adapter layer; stdlib only. Bounded: the last `size` events."""
from __future__ import annotations

import threading
import time
from collections import deque


class Activity:
    def __init__(self, size: int = 200) -> None:
        self._events: deque[dict] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.totals: dict[str, int] = {}

    def add(self, kind: str, queue: str = "", rcpt: str = "", detail: str = "", at: float | None = None) -> None:
        with self._lock:
            self.totals[kind] = self.totals.get(kind, 0) + 1
            self._events.append({"time": at if at is not None else time.time(), "event": kind,
                                 "queue": queue, "rcpt": rcpt, "detail": detail})

    def recent(self, n: int = 50) -> list[dict]:
        with self._lock:
            return list(self._events)[-n:][::-1]
