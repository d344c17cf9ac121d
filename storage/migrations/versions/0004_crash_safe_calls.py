"""crash-safe calls: wide caller ids, transcript lines as they happen, call liveness

Revision ID: 0004
Revises: 0003

- Caller-supplied numbers go from 32 to 255 characters: a SIP caller id
  (`sip:customer-line-7@pbx.example.com:5060`) is longer than E.164, and PostgreSQL refused
  it while SQLite took it. SQLite ignores VARCHAR lengths, so there the types are left as
  they are (changing them would rebuild `calls`, whose rebuild under `foreign_keys=ON`
  deletes the transcript lines that cascade from it).
- `transcript_segments.provisional`: a line written as it was said, before the call ended.
- `calls.last_activity_at`, `calls.owner`: when a call last showed a sign of life and which
  process holds its stream, so a call left open by a crash can be told from a live one.
- `calls.erased`: the caller's data was deleted while the call was live; whatever the call
  still produces is stored without personal data.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WIDENED = [
    ("calls", "from_number"),
    ("calls", "to_number"),
    ("bookings", "phone"),
    ("messages", "callback_number"),
    ("consent_records", "phone"),
    ("sms_messages", "to_number"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, column in WIDENED:
            op.alter_column(
                table, column, type_=sa.String(length=255), existing_type=sa.String(length=32)
            )
    # Plain ADD COLUMN, not batch: SQLite's batch mode would rebuild these tables for the
    # expression default, and rebuilding `calls` deletes what cascades from it.
    op.add_column(
        "transcript_segments",
        sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("calls", sa.Column("last_activity_at", sa.DateTime(timezone=True)))
    op.add_column("calls", sa.Column("owner", sa.String(length=128), nullable=True))
    op.add_column(
        "calls", sa.Column("erased", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35 has it): a batch rebuild of `calls` would cascade.
    for column in ("erased", "owner", "last_activity_at"):
        op.drop_column("calls", column)
    op.drop_column("transcript_segments", "provisional")
    if op.get_bind().dialect.name != "sqlite":
        # Fails if a longer number is stored: shortening would lose it.
        for table, column in WIDENED:
            op.alter_column(
                table, column, type_=sa.String(length=32), existing_type=sa.String(length=255)
            )
