"""Clocks for the MTA's scheduler: the real one, and one tests advance instead of sleeping.

Adapter layer (asyncio). `now()` is epoch seconds; `sleep_until(t)` returns at or after `t`.
Socket timeouts (connect, greeting, data) stay on real time: they bound waits on real peers.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class RealClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        delay = t - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class FakeClock:
    """Time moves only when a test calls advance(); sleepers wake when their time has come."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._sleepers: list = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, t: float) -> None:
        if t <= self._now:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Call from the MTA's loop (loop.call_soon_threadsafe(clock.advance, s) from a test)."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
