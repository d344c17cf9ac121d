"""webhook_parked: deliveries a worker shutting down hands to the others

Revision ID: 0006
Revises: 0005

A worker that drains for a deployment may still be retrying CRM deliveries; it parks them
here instead of dropping them, and any worker takes them up.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_parked",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Integer(),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("business_id", sa.Integer(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts_done", sa.Integer(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_parked_endpoint_id", "webhook_parked", ["endpoint_id"])
    op.create_index("ix_webhook_parked_business_id", "webhook_parked", ["business_id"])


def downgrade() -> None:
    op.drop_table("webhook_parked")
