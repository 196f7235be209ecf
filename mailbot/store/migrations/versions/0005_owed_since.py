"""due times restart when the buyer writes again: case.owed_since; the missing-due-time index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for every existing case: its clock started when it was opened (created_at).
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owed_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # Asked before every console page: "which cases owe an answer and have no due time?" The plain
    # due_at index walks every closed case (all NULL) to answer "none"; this one holds only those.
    where = sa.text("due_at IS NULL AND status IN ('new', 'open')")
    op.create_index('ix_case_due_missing', 'case', ['id'], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index('ix_case_due_missing', table_name='case')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('owed_since')
