"""Answers and verdicts.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("sop_instance_uid_sha256", sa.String(64)),
        sa.Column("format", sa.String(8)),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("modality", sa.String(16)),
        sa.Column("manufacturer", sa.String(64)),
        sa.Column("manufacturer_model", sa.String(64)),
        sa.Column("view_position", sa.String(16)),
        sa.Column("photometric_interpretation", sa.String(16)),
        sa.Column("bits_stored", sa.Integer),
        sa.Column("age_band", sa.String(8)),
        sa.Column("mean_logit", sa.Float),
        sa.Column("probability", sa.Float),
        sa.Column("label", sa.String(16)),
        sa.Column("threshold", sa.Float),
        sa.Column("ood_score", sa.Float),
        sa.Column("in_distribution", sa.Boolean),
        sa.Column("population_score", sa.Float),
        sa.Column("refusal_code", sa.String(32)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("image_stats", sa.JSON),
        sa.Column("feature_summary", sa.JSON),
        sa.Column("timings_ms", sa.JSON),
    )
    op.create_index("ix_answers_created_at", "answers", ["created_at"])
    op.create_index("ix_answers_upload_sha256", "answers", ["upload_sha256"])
    op.create_index("ix_answers_sop_instance_uid_sha256", "answers", ["sop_instance_uid_sha256"])
    op.create_index("ix_answers_refusal_code", "answers", ["refusal_code"])
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.String(64),
            sa.ForeignKey("answers.request_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reader", sa.String(128), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "reader", name="one_verdict_per_reader"),
    )
    op.create_index("ix_verdicts_request_id", "verdicts", ["request_id"])


def downgrade() -> None:
    op.drop_table("verdicts")
    op.drop_table("answers")
