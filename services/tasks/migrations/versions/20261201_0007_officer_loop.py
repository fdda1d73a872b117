"""The officer's loop: idempotency for every write (expiry, stored headers and raw body), item
roles (monitoring units), the on-time deadline kept apart from the current one, progress notes'
unit and role, evidence files (chunked bytea), notifications with their targets and deliveries,
and the unit scores the leaders' digest reads (from scoring.snapshots events).

Revision ID: tasks_0007
Revises: tasks_0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tasks_0007"
down_revision: str | None = "tasks_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "tasks"
JSONB_EMPTY_LIST = sa.text("'[]'::jsonb")
JSONB_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    # --- idempotency: claimed first (status NULL), any response replayed, keys expire
    op.alter_column("idempotency_keys", "status_code", nullable=True, schema=S)
    op.alter_column("idempotency_keys", "response", nullable=True, schema=S)
    op.add_column("idempotency_keys", sa.Column("body", postgresql.BYTEA(), nullable=True), schema=S)
    op.add_column(
        "idempotency_keys",
        sa.Column("headers", postgresql.JSONB(), server_default=JSONB_EMPTY, nullable=False),
        schema=S,
    )
    op.add_column(
        "idempotency_keys",
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now() + interval '24 hours'"),
            nullable=False,
        ),
        schema=S,
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], schema=S)

    # --- items: monitoring units, the on-time deadline
    op.add_column(
        "items",
        sa.Column("monitoring_unit_ids", postgresql.JSONB(), server_default=JSONB_EMPTY_LIST, nullable=False),
        schema=S,
    )
    op.add_column("items", sa.Column("original_deadline", sa.Date(), nullable=True), schema=S)
    # Backfill: the deadline an item was judged by is its first deadline, moved only by the
    # changes made before that deadline had passed (replayed in order per item).
    op.execute(
        """
        WITH RECURSIVE ch AS (
            SELECT item_id, at, previous_deadline, new_deadline,
                   row_number() OVER (PARTITION BY item_id ORDER BY at, id) AS n
            FROM tasks.deadline_changes
        ), walk AS (
            SELECT c.item_id, c.n,
                   CASE WHEN c.previous_deadline IS NULL
                          OR timezone('Asia/Ho_Chi_Minh', c.at)::date <= c.previous_deadline
                        THEN c.new_deadline ELSE c.previous_deadline END AS on_time
            FROM ch c WHERE c.n = 1
            UNION ALL
            SELECT c.item_id, c.n,
                   CASE WHEN w.on_time IS NULL
                          OR timezone('Asia/Ho_Chi_Minh', c.at)::date <= w.on_time
                        THEN c.new_deadline ELSE w.on_time END
            FROM walk w JOIN ch c ON c.item_id = w.item_id AND c.n = w.n + 1
        ), last AS (
            SELECT DISTINCT ON (item_id) item_id, on_time FROM walk ORDER BY item_id, n DESC
        )
        UPDATE tasks.items i
        SET original_deadline = COALESCE(
            (SELECT l.on_time FROM last l WHERE l.item_id = i.id), i.deadline)
        """
    )

    # --- progress notes: the author's unit and role, progress or report
    op.add_column("progress_notes", sa.Column("unit_id", sa.Text(), nullable=True), schema=S)
    op.add_column("progress_notes", sa.Column("role", sa.Text(), nullable=True), schema=S)
    op.add_column(
        "progress_notes",
        sa.Column("kind", sa.Text(), server_default="progress", nullable=False),
        schema=S,
    )

    # --- evidence files
    op.create_table(
        "evidence_files",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("note_id", sa.BigInteger(), nullable=True),
        sa.Column("unit_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("storage", sa.Text(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("scan", sa.Text(), server_default="not_scanned", nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["tasks.items.id"], name=op.f("fk_evidence_files_item_id_items"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["note_id"], ["tasks.progress_notes.id"], name=op.f("fk_evidence_files_note_id_progress_notes"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_files")),
        schema=S,
    )
    op.create_index(op.f("ix_evidence_files_item_id"), "evidence_files", ["item_id"], schema=S)
    op.create_index(op.f("ix_evidence_files_note_id"), "evidence_files", ["note_id"], schema=S)
    op.create_table(
        "evidence_chunks",
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", postgresql.BYTEA(), nullable=False),
        sa.PrimaryKeyConstraint("storage_key", "seq", name=op.f("pk_evidence_chunks")),
        schema=S,
    )
    # the chunks are already compressed formats (PDF, images, zips): don't try again
    op.execute("ALTER TABLE tasks.evidence_chunks ALTER COLUMN data SET STORAGE EXTERNAL")

    # --- notifications
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(), server_default=JSONB_EMPTY, nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["tasks.items.id"], name=op.f("fk_notifications_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
        schema=S,
    )
    op.create_index("ix_notifications_audience", "notifications", ["audience", "created_at", "id"], schema=S)
    op.create_table(
        "notification_reads",
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["tasks.notifications.id"], name=op.f("fk_notification_reads_notification_id_notifications"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notification_id", "subject", name=op.f("pk_notification_reads")),
        schema=S,
    )
    op.create_table(
        "notification_targets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("keys", postgresql.JSONB(), server_default=JSONB_EMPTY, nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_targets")),
        sa.UniqueConstraint("audience", "channel", "address", name="uq_target"),
        schema=S,
    )
    op.create_index(op.f("ix_notification_targets_audience"), "notification_targets", ["audience"], schema=S)
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["tasks.notifications.id"], name=op.f("fk_notification_deliveries_notification_id_notifications"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["tasks.notification_targets.id"], name=op.f("fk_notification_deliveries_target_id_notification_targets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint("notification_id", "target_id", name="uq_delivery_once"),
        schema=S,
    )
    op.create_index(op.f("ix_notification_deliveries_notification_id"), "notification_deliveries", ["notification_id"], schema=S)
    op.create_index(
        "ix_deliveries_due",
        "notification_deliveries",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )

    # --- unit scores for the digest (from scoring.snapshots)
    op.create_table(
        "unit_scores",
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("max_total", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("previous_total", sa.Float(), nullable=True),
        sa.Column("previous_rank", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", "period", "profile", name=op.f("pk_unit_scores")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("unit_scores", schema=S)
    op.drop_table("notification_deliveries", schema=S)
    op.drop_table("notification_targets", schema=S)
    op.drop_table("notification_reads", schema=S)
    op.drop_table("notifications", schema=S)
    op.drop_table("evidence_chunks", schema=S)
    op.drop_table("evidence_files", schema=S)
    op.drop_column("progress_notes", "kind", schema=S)
    op.drop_column("progress_notes", "role", schema=S)
    op.drop_column("progress_notes", "unit_id", schema=S)
    op.drop_column("items", "original_deadline", schema=S)
    op.drop_column("items", "monitoring_unit_ids", schema=S)
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys", schema=S)
    op.execute("DELETE FROM tasks.idempotency_keys WHERE status_code IS NULL OR response IS NULL")
    op.drop_column("idempotency_keys", "expires_at", schema=S)
    op.drop_column("idempotency_keys", "headers", schema=S)
    op.drop_column("idempotency_keys", "body", schema=S)
    op.alter_column("idempotency_keys", "response", nullable=False, schema=S)
    op.alter_column("idempotency_keys", "status_code", nullable=False, schema=S)
