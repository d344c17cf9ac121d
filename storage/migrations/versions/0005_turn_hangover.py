"""turns.hangover_ms: the silence that closed the caller's turn

Revision ID: 0005
Revises: 0004

The endpoint wait depends on which hangover applied (short after a finished sentence, the
usual one, long mid-number); storing it lets the wait be read per kind.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("hangover_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("hangover_ms")
