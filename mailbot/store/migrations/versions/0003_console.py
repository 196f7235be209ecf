"""staff console: accounts, sessions, notes, corrections

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    )
    op.create_table('staff_session',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('token_hash'),
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_session_expires_at'), ['expires_at'], unique=False)
    op.create_table('case_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_note_case_id'), ['case_id'], unique=False)
    op.create_table('correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=True),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('mailbot_said', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('staff_said', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('correction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_correction_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_correction_mail_id'), ['mail_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_correction_created_at'), ['created_at'], unique=False)
    op.create_table('mail_text',
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ),
    sa.PrimaryKeyConstraint('mail_id'),
    )
    with op.batch_alter_table('mail_text', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_text_case_id'), ['case_id'], unique=False)
    # Full-text search over mail_text: not in the SQLModel metadata (autogenerate does not see it).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            "CREATE VIRTUAL TABLE mail_text_fts USING fts5("
            "body, content='mail_text', content_rowid='mail_id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER mail_text_fts_insert AFTER INSERT ON mail_text BEGIN "
            "INSERT INTO mail_text_fts(rowid, body) VALUES (new.mail_id, new.body); END"
        )
        op.execute(
            "CREATE TRIGGER mail_text_fts_delete AFTER DELETE ON mail_text BEGIN "
            "INSERT INTO mail_text_fts(mail_text_fts, rowid, body) VALUES ('delete', old.mail_id, old.body); END"
        )
    else:
        op.execute("CREATE INDEX ix_mail_text_fts ON mail_text USING gin (to_tsvector('simple', body))")
    # The queue is read newest first, filtered by status: keyset pagination walks this index.
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_case_status_created', ['status', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_case_assignee', ['assignee'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_assignee')
        batch_op.drop_index('ix_case_status_created')
        batch_op.drop_column('resolved_at')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS mail_text_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS mail_text_fts_insert")
        op.execute("DROP TABLE IF EXISTS mail_text_fts")
    op.drop_table('mail_text')
    op.drop_table('correction')
    op.drop_table('case_note')
    op.drop_table('staff_session')
    op.drop_table('staff_user')
