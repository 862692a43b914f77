"""Placeholder revision 2026_11_25_03_api (filled in by its owner).

Revision ID: 2026_11_25_03_api
Revises: 2026_11_25_02_sink
"""
from __future__ import annotations

revision = "2026_11_25_03_api"
down_revision = "2026_11_25_02_sink"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
