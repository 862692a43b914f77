"""Where an entrypoint's committed intake ids go in the embedded mode (no broker).

bootstrap.enqueue_intake sends ids to the broker, or, embedded, to the `inline` callable its
caller passes. `process_now` is the default inline: process the ids in this process before
returning (`bounceproc pipe`, `import`, `sink`). `bounceproc serve` passes its background
worker's `submit` instead.
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bootstrap imports SQLAlchemy; the pipe imports this module before it needs it
    from bounceproc.bootstrap import Dispatch
    from bounceproc.config import Settings


def process_now(settings: "Settings") -> "Dispatch":
    """Process ids synchronously with the settings given (app.intake.process_messages)."""
    from bounceproc.app.intake import process_messages
    return partial(process_messages, settings)
