"""`bounceproc serve`: the API, the SMTP sink and an inline worker in one process.

Adapter layer (CLI). On the embedded default (no broker) everything runs here: the API (uvicorn),
the SMTP sink (its own thread and event loop), an inline worker thread that processes intake ids
as they are committed (plus the periodic sweep of pending intake and the expiry of suppressions),
and the webhook sender loop. With a broker (`BOUNCEPROC_BROKER_URL`) the API and the sink run
here and Celery workers do the rest.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time

log = logging.getLogger("bounceproc.serve")

SWEEP_EVERY = 30.0
PRUNE_EVERY = 3600.0
GRACEFUL_SECONDS = 5        # requests still open when SIGTERM comes get this long to finish


class InlineWorker:
    """Processes intake ids on a thread (embedded default); sweeps and prunes on a timer; beats
    (app/heartbeats.py) between batches."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self._ids: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bounceproc-inline-worker", daemon=True)
        self.processed = 0

    def start(self) -> "InlineWorker":
        self._thread.start()
        return self

    def submit(self, ids: list[int]) -> None:
        for i in ids:
            self._ids.put(int(i))

    def stop(self, timeout: float = 30.0) -> None:
        self._ids.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        from bounceproc import bootstrap
        from bounceproc.app import alerts, maintenance
        from bounceproc.app.heartbeats import Heartbeat
        from bounceproc.app.intake import pending_intake_ids, process_messages
        next_sweep, next_prune = time.monotonic(), time.monotonic() + 60
        heartbeat = Heartbeat(self.settings, "inline")
        while True:
            heartbeat.beat()        # between batches: a loop stuck on one stops beating
            try:
                item = self._ids.get(timeout=1.0)
            except queue.Empty:
                item = 0
            if item is None:
                heartbeat.stop()
                return
            batch = [item] if item else []
            while item and len(batch) < 200:     # whatever else is waiting, in one transaction
                try:
                    nxt = self._ids.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._ids.put(None)
                    break
                batch.append(nxt)
            try:
                if batch:
                    self.processed += process_messages(self.settings, batch)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_EVERY
                    self.submit(pending_intake_ids(self.settings, self.settings.sweep_after_seconds))
                    maintenance.compact_counts(self.settings)
                    alerts.evaluate_now(self.settings)
                if now >= next_prune:
                    next_prune = now + PRUNE_EVERY
                    with bootstrap.engine(self.settings).begin() as conn:
                        maintenance.prune(conn, self.settings)
                    maintenance.prune_events(self.settings, budget_seconds=20)   # the queue waits meanwhile
            except Exception:  # the row stays pending; the sweep retries it
                log.exception("inline worker: intake %s failed", batch)


def _announcing_server(config, on_bound):
    """A uvicorn server that calls `on_bound(port)` once its socket is bound and the app has
    started (so the "API listening" line is true when printed; the port is the bound one, also
    with port 0). uvicorn is imported only by `serve`."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_bound(self.servers[0].sockets[0].getsockname()[1])

    return _Server(config)


def _hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def cmd_serve(args) -> int:
    import uvicorn

    from bounceproc import bootstrap, dbsetup, logs
    from bounceproc.outbound import webhooks
    from bounceproc.entrypoints.http.app import create_app
    from bounceproc.config import load_settings

    overrides = {}
    if args.api:
        overrides["api_listen"] = args.api
    if args.smtp:
        overrides["sink_listen"] = args.smtp
    if args.accept:
        overrides["sink_accept"] = tuple(args.accept)
    settings = load_settings(**overrides)
    try:
        api_host, api_port = _hostport(settings.api_listen, "--api")
        _hostport(settings.sink_listen, "--smtp")
    except ValueError as exc:
        print(f"bounceproc serve: {exc}", file=sys.stderr)
        return 2
    logs.configure(*logs.from_environment("info"))
    say = lambda msg: print(f"bounceproc serve: {msg}", flush=True)  # noqa: E731
    say(dbsetup.where(settings))
    bootstrap.ensure_schema(settings)
    say(dbsetup.schema_line(settings))
    settings, accepting = _sink_accept(settings)

    inline = loop = sink = imports = None
    if settings.embedded:
        from bounceproc.entrypoints.http.imports import ImportRunner
        inline = InlineWorker(settings).start()
        loop = webhooks.DeliveryLoop(settings).start()
        imports = ImportRunner(settings, webhooks.kicker(settings, loop)).start()   # resumes unfinished jobs
        say("mode embedded: intake, webhooks, imports and expiry run in this process (no broker)")
    else:
        say(f"mode broker: tasks go to queue {settings.queue!r} on {dbsetup.redacted(settings.broker_url)}; "
            "run `celery -A workers worker -B` to process them")
    if args.no_sink:
        say("SMTP sink not started (--no-sink)")
    else:
        try:
            from bounceproc.entrypoints import smtp_sink
            sink = smtp_sink.start_sink(settings, dispatch=inline.submit if inline is not None else None)
        except Exception as exc:  # no SMTP intake: refuse to run half a service
            log.error("SMTP sink could not start on %s: %s", settings.sink_listen, exc)
            print(f"bounceproc serve: SMTP sink could not start on {settings.sink_listen}: {exc}", file=sys.stderr)
            if inline is not None:
                inline.stop()
            if loop is not None:
                loop.stop()
            return 1
        say(f"SMTP sink listening on {sink.host}:{sink.port}, accepting {accepting}")
    mailboxes = _start_mailboxes(settings, say, inline)
    mta = _start_mta(settings, say)
    public = settings.public_url or f"http://{settings.api_listen}"

    def listening(port: int) -> None:
        say(f"API listening on http://{api_host}:{port} (OpenAPI at /openapi.json, docs at /docs; "
            f"unsubscribe links under {public.rstrip('/')}/u/)")
        say("create an API key with `bounceproc apikey create --scope admin`; Ctrl-C stops")

    app = create_app(settings, kick_webhooks=webhooks.kicker(settings, loop), import_runner=imports)
    server = _announcing_server(uvicorn.Config(app, host=api_host, port=api_port, log_level="warning",
                                                access_log=False, lifespan="on",
                                                timeout_graceful_shutdown=GRACEFUL_SECONDS), listening)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so that the
    # sink, the inline worker and the webhook loop below are stopped too.
    signal.signal(signal.SIGTERM, _exit_on_term)
    _freeze_startup_heap()
    try:
        server.run()
    finally:
        say("stopping")
        if imports is not None:
            imports.stop()          # the running import returns after its chunk; resumed at start
        if sink is not None:
            sink.stop()
        mailboxes.set()
        if mta is not None:
            mta.stop()
        if inline is not None:
            inline.stop()
        if loop is not None:
            loop.stop()
    return 0


def _freeze_startup_heap() -> None:
    """Keep what start-up built (modules, the app, the classifier's rules) out of the cyclic
    garbage collector's passes: they live as long as the process, and traversing them again and
    again was ~15 % of the API's CPU under load (perf, docs/esp-webhooks.md)."""
    import gc

    from bounceproc.domain.classify import default_classifier
    default_classifier()            # built now rather than by the first request
    gc.collect()
    gc.freeze()


def _start_mailboxes(settings, say, inline=None) -> threading.Event:
    """A reader thread per configured mailbox (settings `mailboxes`); returns their stop event."""
    from bounceproc.entrypoints.mailbox import MailboxReader, intake_committer, specs_from_settings
    stop = threading.Event()
    for spec in specs_from_settings(settings):
        reader = MailboxReader(spec, intake_committer(settings, inline.submit if inline else None), stop)
        threading.Thread(target=reader.run, name=f"mailbox {spec.name}", daemon=True).start()
        say(f"reading mailbox {spec.scheme}://{spec.name}")
    return stop


def _start_mta(settings, say):
    """The bundled MTA (docs/sending-core.md) when `mta_config` is set; SIGHUP reloads its config."""
    if not settings.mta_config:
        return None
    from bounceproc.mta.service import MtaService
    try:
        from prometheus_client.parser import text_string_to_metric_families

        from bounceproc.app import ops_hooks
        from bounceproc.domain.providers import provider_of
        from bounceproc.entrypoints.cli.mta import close_the_loop
        mta = MtaService(settings.mta_config)
        close_the_loop(mta)
        mta.start()
        # its counters on /metrics (the MTA's own exposition, read back as metric families) and its
        # queues on the dashboard's blocks panel (app/ops_hooks.py)
        ops_hooks.register_metrics("mta", lambda _conn: list(text_string_to_metric_families(
            mta.call(mta.management.view, "metrics"))))
        ops_hooks.register_queues("mta", lambda _conn: [
            {"queue": q["queue"], "provider": provider_of(q["domain"]), "source_ip": "", "state": q["mode"],
             "since": "", "reply": q["last_error"], "size": q["rcpt"]}
            for q in mta.call(mta.management.view, "queues")])
    except Exception as exc:  # the API still runs without the MTA
        say(f"MTA not started ({settings.mta_config}): {exc}")
        return None
    for w in mta.config.warnings:
        say(w)
    signal.signal(signal.SIGHUP, lambda *_: mta.loop.call_soon_threadsafe(mta.reload))
    say(f"MTA listening on {', '.join(f'{l.host}:{l.port}' for l in mta.config.listeners)} "
        f"(config {settings.mta_config}, spool {mta.config.spool_dir})")
    return mta


def _sink_accept(settings):
    """(settings, what the start line says the sink accepts). With nothing configured, a sink on a
    loopback address accepts any recipient (it never relays, and only this machine can reach it:
    the quick start needs no flag); on another address it accepts nothing until told."""
    import dataclasses
    import ipaddress
    if settings.sink_accept:
        return settings, ", ".join(settings.sink_accept)
    hint = "set --accept or BOUNCEPROC_SINK_ACCEPT to your bounce domains and feedback-loop addresses"
    host = settings.sink_listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return settings, f"nothing ({hint})"
    return (dataclasses.replace(settings, sink_accept=("*",)),
            f"any recipient, as it listens on loopback only ({hint} before listening on a public address)")


def _exit_on_term(_signum, _frame) -> None:
    raise SystemExit(0)


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the API, the SMTP sink and an inline worker in one process",
                       description=__doc__.splitlines()[0])
    p.add_argument("--api", metavar="HOST:PORT", help="API listen address (default api_listen, 127.0.0.1:8025)")
    p.add_argument("--smtp", metavar="HOST:PORT", help="SMTP sink listen address (default sink_listen, 127.0.0.1:2525)")
    p.add_argument("--accept", action="extend", nargs="+", metavar="DOMAIN_OR_ADDRESS",
                   help="recipient domains or addresses the sink accepts; repeatable (default sink_accept)")
    p.add_argument("--no-sink", action="store_true",
                   help="run only the API (and, without a broker, the inline worker); `bounceproc sink` runs the sink")
    p.set_defaults(func=cmd_serve)
