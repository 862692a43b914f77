"""A quarantined record is kept once per source, line and raw text (quarantine.raw_key).

Revision ID: 2026_12_03_02_quarantine_once
Revises: 2026_12_03_01_operator

Importing the same accounting file again (`bounceproc import --restart`, or the same lines piped
twice) made new intake rows, and every bad line of it a second quarantine entry. raw_key is the
SHA-256 of (origin, line_no, raw) and unique; existing entries get theirs here, and of entries
that were the same only the oldest is kept.
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "2026_12_03_02_quarantine_once"
down_revision = "2026_12_03_01_operator"
branch_labels = None
depends_on = None

CHUNK = 5000


def _key(origin: str, line_no: int, raw: str) -> str:
    # As storage/intake_rows.quarantine_key, frozen here (a migration must not change with the code).
    return hashlib.sha256(f"{origin}\n{line_no}\n{raw}".encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("raw_key", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    q = sa.table("quarantine", sa.column("id", sa.BigInteger), sa.column("origin", sa.String),
                 sa.column("line_no", sa.BigInteger), sa.column("raw", sa.Text), sa.column("raw_key", sa.String))
    seen: set[str] = set()
    last = 0
    while True:
        rows = conn.execute(sa.select(q.c.id, q.c.origin, q.c.line_no, q.c.raw).where(q.c.id > last)
                            .order_by(q.c.id).limit(CHUNK)).all()
        if not rows:
            break
        last = rows[-1].id
        keep, repeats = [], []
        for r in rows:
            key = _key(r.origin or "", r.line_no or 0, r.raw or "")
            if key in seen:
                repeats.append(r.id)
            else:
                seen.add(key)
                keep.append({"b_id": r.id, "b_key": key})
        if repeats:
            conn.execute(sa.delete(q).where(q.c.id.in_(repeats)))
        if keep:
            conn.execute(sa.update(q).where(q.c.id == sa.bindparam("b_id")).values(raw_key=sa.bindparam("b_key")), keep)
    op.create_index("uq_quarantine_raw_key", "quarantine", ["raw_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_quarantine_raw_key", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("raw_key")
