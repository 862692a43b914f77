"""Placeholder revision 2026_11_25_02_sink (filled in by its owner).

Revision ID: 2026_11_25_02_sink
Revises: 2026_11_25_01_initial
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
