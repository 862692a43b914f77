"""Raw message in the intake -> events (placeholder until the SMTP sink issue lands)."""
from __future__ import annotations


def events_from_message(conn, row, settings) -> list:
    return []
