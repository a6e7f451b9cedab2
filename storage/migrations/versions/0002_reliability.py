"""reliability: timer attempts and backoff, login throttle per (account, address), inbox by conversation

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 06:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Timers get what inbox rows have: attempts, the last error, and (state) "failed" after N tries.
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=False, server_default=''))
    # Console login throttle: growing delays per (login, client address), instead of a hard lock-out
    # that anyone can trigger against the real admin.
    op.create_table('login_throttle',
    sa.Column('login', sa.String(length=60), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('next_allowed_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('login', 'address')
    )
    # A conversation's history by id, for the flood check and the failure apology (whatever its state).
    op.create_index('ix_inbox_conversation', 'inbox', ['conversation', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbox_conversation', table_name='inbox')
    op.drop_table('login_throttle')
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
