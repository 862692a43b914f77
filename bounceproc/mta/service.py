"""Run the MTA: engine + listeners on one event loop, signals, reload; in the foreground
(`bounceproc mta`) or on a background thread (`bounceproc serve`, tests).

Adapter layer (wiring). SIGTERM / SIGINT: stop accepting (listeners close), finish the
transactions in flight, close spool and acct files, exit. SIGHUP: re-read the config file; queues
pick up their new settings at their next connection (listeners and spool stay as they were).
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading

from bounceproc.domain.mta.config import ConfigError
from bounceproc.mta.config_reader import read_config
from bounceproc.mta.engine import Mta
from bounceproc.mta.listener import start_listeners

log = logging.getLogger("bounceproc.mta")


class MtaService:
    def __init__(self, config_path: str, *, clock=None, hooks=None) -> None:
        self.config_path = config_path
        self.config = read_config(config_path)
        self.clock, self.hooks = clock, hooks
        self.management = None        # bounceproc.mta.management.Management, started with the engine
        self.mta: Mta | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.servers: list = []
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self.servers]

    async def _main(self, install_signals: bool) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.mta = Mta(self.config, clock=self.clock, hooks=self.hooks)
        await self.mta.start()
        self.servers = await start_listeners(self.mta)
        if self.management is not None:
            await self.management.start()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(sig, self._stopped.set)
            self.loop.add_signal_handler(signal.SIGHUP, self.reload)
        self._ready.set()
        await self._stopped.wait()
        log.info("MTA stopping: finishing the transactions in flight")
        for s in self.servers:
            s.close()
        if self.management is not None:
            await self.management.stop()
        await self.mta.stop()

    def reload(self) -> None:
        try:
            config = read_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, the config has errors:\n%s", exc)
            return
        for w in config.warnings:
            log.warning("%s", w)
        self.config = config
        self.mta.reload(config)
        log.info("MTA configuration reloaded from %s", self.config_path)

    def run(self) -> int:
        """Foreground: until SIGTERM."""
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        asyncio.run(self._main(install_signals=True))
        return 0

    def start(self, timeout: float = 30.0) -> "MtaService":
        """Background thread; returns once listening."""
        def target():
            try:
                asyncio.run(self._main(install_signals=False))
            except BaseException as exc:   # reported by start()
                self._error = exc
                self._ready.set()
        self._thread = threading.Thread(target=target, name="mta", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise RuntimeError(f"MTA did not start: {self._error}")
        return self

    def call(self, fn, *args):
        """Run fn(*args) on the MTA's loop and return its result (tests, management)."""
        import concurrent.futures
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)
        self.loop.call_soon_threadsafe(run)
        return fut.result(30)

    def stop(self, timeout: float = 60.0) -> None:
        if self._thread is None:
            return
        if self.loop and self._stopped and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:      # the loop closed meanwhile
                pass
        self._thread.join(timeout)
        self._thread = None
