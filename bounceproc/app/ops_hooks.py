"""Registration hooks of the operations view, for parts that are not always running (the sending
core in bounceproc/mta/): their metric families on /metrics and their queues on the dashboard.

Application layer, stdlib only. A part registers at import or start-up, in the API process:

    from bounceproc.app import ops_hooks
    ops_hooks.register_metrics("mta", collect)      # collect(conn) -> iterable of prometheus_client
                                                    # metric families (e.g. GaugeMetricFamily)
    ops_hooks.register_queues("mta", queues)        # queues(conn) -> list of dicts: {"queue",
                                                    # "provider", "source_ip", "state" ("backoff"|...),
                                                    # "since" (ISO time), "reply", "size"}

Registering the same name again replaces the earlier function (a reload keeps one). A source
that raises is left out of that scrape or page (logged), never the whole response.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("bounceproc.ops")

_metrics: dict[str, Callable] = {}
_queues: dict[str, Callable] = {}


def register_metrics(name: str, collect: Callable) -> None:
    _metrics[name] = collect


def register_queues(name: str, queues: Callable) -> None:
    _queues[name] = queues


def unregister(name: str) -> None:
    _metrics.pop(name, None)
    _queues.pop(name, None)


def extra_metrics(conn) -> list:
    out: list = []
    for name, collect in list(_metrics.items()):
        try:
            out.extend(collect(conn))
        except Exception:       # one broken source must not take /metrics down
            log.exception("metrics source %s failed", name)
    return out


def queues(conn) -> list[dict] | None:
    """Queues reported by the registered sources; None when no source is registered."""
    if not _queues:
        return None
    out: list[dict] = []
    for name, fn in list(_queues.items()):
        try:
            out.extend(fn(conn))
        except Exception:
            log.exception("queue source %s failed", name)
    return out
