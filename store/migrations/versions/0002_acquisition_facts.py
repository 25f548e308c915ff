"""acquisition facts: what a pick was chosen with, as columns instead of prose.

μ and σ were columns already; this adds the believer's σ, the acquisition's value and its
parts (expected improvement and the threshold it improves on, the cost), and the fidelity the
pick asked for. Rows written before this revision keep NULL there: nothing is parsed out of
their reason text, which stays for people.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FLOAT_COLUMNS = ("believer_sigma_ev", "value", "ei_ev", "threshold_ev", "cost")


def upgrade() -> None:
    with op.batch_alter_table("acquisition", schema=None) as batch_op:
        for name in _FLOAT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fidelity", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("acquisition", schema=None) as batch_op:
        batch_op.drop_column("fidelity")
        for name in reversed(_FLOAT_COLUMNS):
            batch_op.drop_column(name)
