"""The SMTP sink's revision: intentionally no schema change.

Revision ID: 2026_11_25_02_sink
Revises: 2026_11_25_01_initial

The sink stores raw messages in `intake` (kind "message"), its events in `events` (the
`message_id` partial index serves FBL recipient recovery), unreadable messages in `quarantine`.
Unattributed complaints are `complained` events with recipient "" (attrs.unattributed), and
complaint rates are computed from `events` over a time window (BRIN on occurred_at), so no
counter table is needed. The revision is kept so that the chain of revisions stays as planned.
"""
from __future__ import annotations

revision = "2026_11_25_02_sink"
down_revision = "2026_11_25_01_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
