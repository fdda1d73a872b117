"""Tables of the tasks service (PostgreSQL schema ``tasks``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.events.outbox import define_event_tables

SCHEMA = "tasks"


class Base(DeclarativeBase):
    """Declarative base bound to the ``tasks`` schema (same as ``shared.db.make_base``)."""

    metadata = make_metadata(SCHEMA)
    type_annotation_map = {datetime: DateTime(timezone=True)}


outbox_table, processed_events_table = define_event_tables(Base.metadata)


class UnitRow(Base):
    """The tasks service's own copy of the unit registry (seeded from units.json)."""

    __tablename__ = "units"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    aliases: Mapped[list[str]] = mapped_column(JSONB, server_default=sql_text("'[]'::jsonb"))
    # {source: code} (GSO, the national portal, a one-stop system); the lineage is UnitLineage
    external_codes: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=sql_text("'{}'::jsonb")
    )
    position: Mapped[int | None] = mapped_column(Integer)  # order in units.json (demo first)


class Conclusion(Base):
    """A conclusion notice / dispatch (Thông báo kết luận kiểm tra, công văn)."""

    __tablename__ = "conclusions"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    number: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    issued_on: Mapped[date | None] = mapped_column(Date)
    issuer: Mapped[str | None] = mapped_column(Text)
    source_text: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revision_of: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_conclusions_issuer_number", "issuer", "number"),)


class UnitLineage(Base):
    """An abolished unit's duties went to ``to_id`` from ``effective_on`` (2025 mergers)."""

    __tablename__ = "unit_lineage"
    from_id: Mapped[str] = mapped_column(Text, primary_key=True)
    to_id: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    effective_on: Mapped[date | None] = mapped_column(Date)
    # the share of from_id's duties to_id takes (derived from ward counts; tasks_0011)
    weight: Mapped[float] = mapped_column(Float, server_default=sql_text("1.0"))


class Finding(Base):
    """A shortcoming (tồn tại, hạn chế) named by a conclusion."""

    __tablename__ = "findings"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    conclusion_id: Mapped[str] = mapped_column(ForeignKey("conclusions.id", ondelete="CASCADE"))
    unit_id: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    criteria: Mapped[list[str]] = mapped_column(JSONB, server_default=sql_text("'[]'::jsonb"))


class Item(Base):
    """A remediation item assigned to one lead unit."""

    __tablename__ = "items"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    conclusion_id: Mapped[str | None] = mapped_column(ForeignKey("conclusions.id"))
    finding_id: Mapped[str | None] = mapped_column(ForeignKey("findings.id"))
    origin: Mapped[str] = mapped_column(Text, server_default="conclusion")
    alert_id: Mapped[str | None] = mapped_column(Text, unique=True)
    indicator: Mapped[str | None] = mapped_column(Text)
    period: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    lead_unit_id: Mapped[str] = mapped_column(Text)
    supporting_unit_ids: Mapped[list[str]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    # units that follow the item (read only): e.g. the inspecting agency, a supervising office
    monitoring_unit_ids: Mapped[list[str]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    responsible_person: Mapped[str | None] = mapped_column(Text)
    criteria: Mapped[list[str]] = mapped_column(JSONB, server_default=sql_text("'[]'::jsonb"))
    priority: Mapped[str] = mapped_column(Text, server_default="normal")
    deadline: Mapped[date | None] = mapped_column(Date)
    # the deadline on-time is judged by: the first one, moved only by changes made before it
    # passed (an extension granted after the deadline does not erase the lateness)
    original_deadline: Mapped[date | None] = mapped_column(Date)
    recurrence: Mapped[str | None] = mapped_column(Text)
    parent_item_id: Mapped[str | None] = mapped_column(ForeignKey("items.id"))
    period_key: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="not_started")
    progress_percent: Mapped[int] = mapped_column(Integer, server_default="0")
    completed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("parent_item_id", "period_key", name="uq_items_parent_period"),
        Index("ix_items_lead_status", "lead_unit_id", "status"),
        Index(
            "ix_items_open_deadline",
            "deadline",
            postgresql_where=sql_text(
                "status IN ('not_started','in_progress','reported') AND deadline IS NOT NULL"
            ),
        ),
        Index("ix_items_updated", "updated_at", "id"),
        Index("ix_items_conclusion", "conclusion_id"),
        Index("ix_items_supporting_units", "supporting_unit_ids", postgresql_using="gin"),
        Index("ix_items_criteria", "criteria", postgresql_using="gin"),
    )


class ItemHistory(Base):
    """Every change of an item, in order."""

    __tablename__ = "item_history"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))


class ProgressNote(Base):
    __tablename__ = "progress_notes"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    author: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)
    percent: Mapped[int | None] = mapped_column(Integer)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    # who wrote it: the author's unit and its role on the item (lead | supporting | inspector
    # | system); `kind` is progress or report (the remediation report that moves it to reported)
    unit_id: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="progress")


class EvidenceFile(Base):
    """An uploaded evidence file (minh chứng); its bytes are in `evidence_chunks` or S3."""

    __tablename__ = "evidence_files"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    note_id: Mapped[int | None] = mapped_column(
        ForeignKey("progress_notes.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    storage: Mapped[str] = mapped_column(Text)  # postgres | s3
    storage_key: Mapped[str] = mapped_column(Text)
    scan: Mapped[str] = mapped_column(Text, server_default="not_scanned")
    uploaded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EvidenceChunk(Base):
    """The bytes of a file kept in PostgreSQL, in chunks so neither side holds it whole."""

    __tablename__ = "evidence_chunks"
    storage_key: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(BYTEA)


class DeadlineChange(Base):
    __tablename__ = "deadline_changes"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    previous_deadline: Mapped[date | None] = mapped_column(Date)
    new_deadline: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    extension_id: Mapped[str | None] = mapped_column(Text)


class ExtensionRequest(Base):
    __tablename__ = "extension_requests"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    requested_deadline: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "uq_extension_requests_one_pending",
            "item_id",
            unique=True,
            postgresql_where=sql_text("status = 'pending'"),
        ),
    )


class NotificationSent(Base):
    """One row per (item, kind, threshold): reminders/overdue notices are sent once."""

    __tablename__ = "notifications_sent"
    item_id: Mapped[str] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(Text, primary_key=True)  # reminder | overdue | escalation
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True)
    deadline: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Draft(Base):
    """Draft items proposed by the parser, waiting for an inspector to confirm them."""

    __tablename__ = "drafts"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    issued_on: Mapped[date | None] = mapped_column(Date)
    source_text: Mapped[str] = mapped_column(Text)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    conclusion_id: Mapped[str | None] = mapped_column(Text)
    # the confirmation plan shown with the draft (number, issuer, province, as_of, per-item
    # target units, warnings): confirming creates exactly this
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))


class IdempotencyKey(Base):
    """Responses of writes made with an Idempotency-Key, replayed on retry until `expires_at`.

    Written in the same transaction as the write's effects: claimed (status NULL) first, so a
    concurrent retry waits on the row lock, then filled with the response.
    """

    __tablename__ = "idempotency_keys"
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    endpoint: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    body: Mapped[bytes | None] = mapped_column(BYTEA)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(
        server_default=sql_text("now() + interval '24 hours'"), index=True
    )


# ----------------------------------------------------------------- notifications


class Notification(Base):
    """A message for people: a unit (`unit:P21.SNV`), a role (`role:inspector`) or one user
    (`user:<sub>`). `dedup_key` makes each fact notified once (replays, several schedulers)."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    audience: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    dedup_key: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_notifications_audience", "audience", "created_at", "id"),)


class NotificationRead(Base):
    __tablename__ = "notification_reads"
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    read_at: Mapped[datetime] = mapped_column(server_default=func.now())


class NotificationTarget(Base):
    """Where an audience's notifications go: a Web Push subscription, an e-mail address or a
    webhook (a province's SMART app, a chat bot). The webhook secret is write-only."""

    __tablename__ = "notification_targets"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    audience: Mapped[str] = mapped_column(Text, index=True)
    channel: Mapped[str] = mapped_column(Text)  # webpush | email | webhook
    address: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    keys: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("true"))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("audience", "channel", "address", name="uq_target"),)


class NotificationDelivery(Base):
    """One notification through one target: pending → delivered | failed (after retries)."""

    __tablename__ = "notification_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    target_id: Mapped[str] = mapped_column(
        ForeignKey("notification_targets.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("notification_id", "target_id", name="uq_delivery_once"),
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=sql_text("status = 'pending'"),
        ),
    )


class UnitScore(Base):
    """The latest total and rank per (unit, period, profile), from scoring.snapshots events
    (tasks never calls scoring's API), with the previous value for the digest's change."""

    __tablename__ = "unit_scores"
    unit_id: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    profile: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    total: Mapped[float | None] = mapped_column()
    max_total: Mapped[float] = mapped_column()
    rank: Mapped[int | None] = mapped_column(Integer)
    previous_total: Mapped[float | None] = mapped_column()
    previous_rank: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
