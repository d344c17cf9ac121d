"""businesses.vocabulary: the words a business's callers say (streets, towns, brands)

Revision ID: 0007
Revises: 0006

Recognition is biased toward them, and a misheard street is matched against them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("businesses") as batch:
        batch.add_column(sa.Column("vocabulary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("businesses") as batch:
        batch.drop_column("vocabulary")
