"""Tables of the ingest service (schema `ingest`).

- `sources`: one-stop systems we pull from (connection, credentials, agency mapping, schedule,
  rate limit, health). Credentials are never returned by the API nor logged.
- `watermarks`: per (source, feed), the newest `source_updated_at` fully committed.
- `checkpoints`: per (source, feed), where the walk in progress resumes (the next cursor after
  the last committed page); written in the page's own transaction.
- `runs`: one row per sync run with its outcome and counts.
- `dossiers` / `procedures` / `petitions`: the normalised records, one per (source, code);
  a newer `source_updated_at` replaces, a stale one changes nothing.
- `dossier_status_history`: every status transition we observed of a stored dossier, with the
  previous status and when it began; the trail's first entry is derived from the first
  transition (or the dossier row itself), see `api.routes.get_dossier`.
- `push_acks`: acknowledgements of committed push batches, replayed for a repeat.
- `quarantine`: records that failed validation, with reasons and the raw payload as received
  (a vendor's record also as the vendor sent it, to translate again when re-processed).
"""

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
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.events.outbox import define_event_tables

SCHEMA = "ingest"


class Base(DeclarativeBase):
    """Declarative base bound to the ``ingest`` schema (same as ``shared.db.make_base``)."""

    metadata = make_metadata(SCHEMA)
    type_annotation_map = {datetime: DateTime(timezone=True)}


outbox_table, processed_events_table = define_event_tables(Base.metadata)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="national-json")
    base_url: Mapped[str] = mapped_column(Text)
    auth: Mapped[dict[str, Any]] = mapped_column(JSONB)  # secret inside: never expose
    agencies: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # connector options (see each connector's docstring): vendor details per deployment
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    feeds: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{dossiers,procedures,petitions}'")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    schedule_s: Mapped[int] = mapped_column(Integer, server_default="900")
    lookback_s: Mapped[int] = mapped_column(Integer, server_default="3600")
    page_size: Mapped[int] = mapped_column(Integer, server_default="500")
    rate_limit_per_s: Mapped[float] = mapped_column(Float, server_default="10")
    concurrency: Mapped[int] = mapped_column(Integer, server_default="2")
    timeout_s: Mapped[float] = mapped_column(Float, server_default="30")
    health: Mapped[str] = mapped_column(Text, server_default="ok")  # ok | degraded
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    degraded_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # the source's own clock at its last completed run, and the newest NgayCapNhat seen then
    source_time: Mapped[datetime | None]
    newest_seen: Mapped[datetime | None]
    # the clock `source_time` came from: server_time | http_date | local (ingest_0013)
    lag_clock: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Watermark(Base):
    __tablename__ = "watermarks"

    source_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[str] = mapped_column(Text, primary_key=True)
    watermark: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    source_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[str] = mapped_column(Text, primary_key=True)
    run_id: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime | None]
    until: Mapped[datetime | None]
    cursor: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer, server_default="0")
    max_seen: Mapped[datetime | None]
    source_time: Mapped[datetime | None]  # the latest time the source reported in this walk
    source_clock: Mapped[str | None] = mapped_column(Text)  # server_time | http_date
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index(None, "source_id", "feed", "started_at"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, ForeignKey("sources.id", ondelete="CASCADE"))
    feed: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # incremental | backfill
    trigger: Mapped[str] = mapped_column(Text)  # schedule | manual
    status: Mapped[str] = mapped_column(Text)  # running | succeeded | partial | failed
    since: Mapped[datetime | None]
    until: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    pages: Mapped[int] = mapped_column(Integer, server_default="0")
    pulled: Mapped[int] = mapped_column(Integer, server_default="0")
    stored: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    quarantined: Mapped[int] = mapped_column(Integer, server_default="0")
    errors: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    lag_s: Mapped[float | None] = mapped_column(Float)
    lag_clock: Mapped[str | None] = mapped_column(Text)  # server_time | http_date | local
    resumes: Mapped[int] = mapped_column(Integer, server_default="0")


class Dossier(Base):
    __tablename__ = "dossiers"
    # (code, source_id): the one index serves tracking by code and the upsert's conflict check.
    __table_args__ = (PrimaryKeyConstraint("code", "source_id"),)

    # Compared bytewise: the key index takes thousands of inserts and probes per page.
    source_id: Mapped[str] = mapped_column(Text(collation="C"))
    code: Mapped[str] = mapped_column(Text(collation="C"))
    unit_id: Mapped[str] = mapped_column(Text)
    procedure_code: Mapped[str] = mapped_column(Text)
    field_code: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    submitted_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    supplement_count: Mapped[int] = mapped_column(SmallInteger)
    supplement_days: Mapped[float] = mapped_column(Float)
    apology_count: Mapped[int] = mapped_column(SmallInteger)
    has_fee: Mapped[bool] = mapped_column(Boolean)
    paid_online: Mapped[int] = mapped_column(SmallInteger)
    digitised: Mapped[bool] = mapped_column(Boolean)
    reused_data: Mapped[bool] = mapped_column(Boolean)
    has_e_result: Mapped[bool] = mapped_column(Boolean)
    synced_national: Mapped[bool] = mapped_column(Boolean)
    vneid_verified: Mapped[bool] = mapped_column(Boolean)
    pds_synced: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    citizen_data_used: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    source_updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    run_id: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When the current status began (`source_updated_at` of the version that brought it).
    status_since: Mapped[datetime | None]
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # names, fees, supplements and processing steps as the source sent them, in national
    # fields: JSON text (`domain.details`), read by the dossier view only
    details: Mapped[str | None] = mapped_column(Text)


class DossierStatusChange(Base):
    __tablename__ = "dossier_status_history"
    __table_args__ = (Index(None, "source_id", "code", "source_updated_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(SmallInteger)
    previous_status: Mapped[int | None] = mapped_column(SmallInteger)
    previous_status_since: Mapped[datetime | None]  # when the previous status began
    source_updated_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Procedure(Base):
    __tablename__ = "procedures"

    source_id: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    field_code: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[str] = mapped_column(Text)
    online_level: Mapped[str] = mapped_column(Text)
    has_fee: Mapped[bool] = mapped_column(Boolean)
    result_type: Mapped[str | None] = mapped_column(Text)
    published_on: Mapped[date | None] = mapped_column(Date)
    publish_due_on: Mapped[date | None] = mapped_column(Date)
    public_on: Mapped[date | None] = mapped_column(Date)
    public_due_on: Mapped[date | None] = mapped_column(Date)
    content_complete: Mapped[bool] = mapped_column(Boolean)
    full_online_eligible: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    citizen_data_connected: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    certification: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    e_certified_copy: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    source_updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    run_id: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Petition(Base):
    __tablename__ = "petitions"

    source_id: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    unit_id: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(Text)
    source_updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    run_id: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Quarantined(Base):
    __tablename__ = "quarantine"
    # one open entry per record (code) and per payload (ingest_0011)
    __table_args__ = (
        Index(
            "ix_quarantine_open_fingerprint",
            "source_id",
            "feed",
            "fingerprint",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        Index(
            "ix_quarantine_open_code",
            "source_id",
            "feed",
            "code",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, ForeignKey("sources.id", ondelete="CASCADE"))
    feed: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text))
    raw: Mapped[str] = mapped_column(Text)  # JSON text as received (NUL bytes stay escaped)
    # a vendor source's record as it sent it (`raw` is then its national translation)
    source_raw: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text)  # md5 of `raw`
    status: Mapped[str] = mapped_column(Text, server_default="open")  # open|resolved|superseded
    run_id: Mapped[str | None] = mapped_column(Text)
    seen_count: Mapped[int] = mapped_column(Integer, server_default="1")
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    resolved_at: Mapped[datetime | None]


class PushAck(Base):
    """The acknowledgement of a committed push batch that named its session: the same batch
    (same session, same content) sent again is answered with it (ingest_0013)."""

    __tablename__ = "push_acks"

    source_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    service: Mapped[str] = mapped_column(Text, primary_key=True)
    session: Mapped[str] = mapped_column(Text, primary_key=True)
    digest: Mapped[str] = mapped_column(Text, primary_key=True)  # sha256 of the batch
    ack: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
