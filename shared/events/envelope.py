"""CloudEvents 1.0 in Kafka binary mode: attributes travel as `ce_*` headers, data as the value.

The partition key is the agency's unit id, so one agency's events stay ordered.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared.events.failures import InvalidEvent
from shared.events.payloads import PAYLOADS_BY_TYPE, Payload

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class UndecodableEvent(InvalidEvent):
    """A message that is not a CloudEvent we understand: it goes to the dead-letter topic."""


@dataclass(frozen=True)
class CloudEvent:
    type: str
    source: str
    data: dict[str, Any]
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = CONTENT_TYPE
    # CloudEvents distributed-tracing extension: the W3C traceparent of the span that wrote it
    traceparent: str | None = None

    @classmethod
    def of(cls, payload: Payload, *, source: str, subject: str | None = None) -> CloudEvent:
        return cls(
            type=payload.event_type,
            source=source,
            subject=subject,
            data=payload.model_dump(mode="json"),
        )

    def headers(self) -> list[tuple[str, bytes]]:
        h = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("content-type", self.datacontenttype.encode()),
        ]
        if self.subject is not None:
            h.append(("ce_subject", self.subject.encode()))
        if self.traceparent:
            h.append(("ce_traceparent", self.traceparent.encode()))
        return h

    def value(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_kafka(
        cls, headers: list[tuple[str, bytes]] | tuple[Any, ...], value: bytes | None
    ) -> CloudEvent:
        h = {k: v.decode("utf-8", "replace") for k, v in headers or ()}
        missing = [k for k in ("ce_id", "ce_source", "ce_type", "ce_specversion") if k not in h]
        if missing:
            raise UndecodableEvent(f"missing CloudEvents headers: {', '.join(missing)}")
        if h["ce_specversion"] != SPEC_VERSION:
            raise UndecodableEvent(f"unsupported specversion {h['ce_specversion']}")
        try:
            data = json.loads(value or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UndecodableEvent(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UndecodableEvent("value is not a JSON object")
        try:
            time = datetime.fromisoformat(h["ce_time"]) if "ce_time" in h else datetime.now(UTC)
        except ValueError as exc:
            raise UndecodableEvent(f"bad ce_time: {exc}") from exc
        return cls(
            type=h["ce_type"],
            source=h["ce_source"],
            id=h["ce_id"],
            subject=h.get("ce_subject"),
            time=time,
            data=data,
            datacontenttype=h.get("content-type", CONTENT_TYPE),
            traceparent=h.get("ce_traceparent"),
        )

    def payload(self) -> Payload:
        """Parse the data into its typed model; unknown fields are ignored, bad ones refused."""
        model = PAYLOADS_BY_TYPE.get(self.type)
        if model is None:
            raise UndecodableEvent(f"unknown event type {self.type}")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise UndecodableEvent(f"invalid {self.type} payload: {exc}") from exc
