"""The channels: Web Push (VAPID, for the app's browser shell), e-mail (SMTP) and an outbound
webhook (a province's SMART app, a Zalo OA or Telegram bot behind a small relay)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

import aiosmtplib
import httpx

from services.tasks.config import TasksSettings
from services.tasks.domain import notifications as dn


@dataclass(frozen=True)
class Outgoing:
    """One delivery: the notification's content and where it goes."""

    delivery_id: int
    notification_id: int
    kind: str
    title: str
    body: str
    item_id: str | None
    data: dict[str, Any]
    created_at: datetime
    channel: str
    address: str
    secret: str | None
    keys: dict[str, Any]

    def document(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.notification_id,
            "delivery_id": self.delivery_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "item_id": self.item_id,
            "url": f"{base_url}/api/v1/items/{self.item_id}" if self.item_id else None,
            "data": self.data,
            "created_at": self.created_at.isoformat(),
        }


class DeliveryFailed(Exception):
    """The channel could not deliver (the message is kept for the delivery row)."""


class Channel(Protocol):
    name: str

    async def send(self, out: Outgoing) -> None: ...


class WebhookChannel:
    """POST the notification as JSON, signed: `X-CCHC-Signature: sha256=<HMAC of
    "<timestamp>.<body>">`, with `X-CCHC-Delivery` for the receiver to drop repeats."""

    name = dn.Channel.webhook.value

    def __init__(self, settings: TasksSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.delivery_timeout_s)

    async def send(self, out: Outgoing) -> None:
        body = json.dumps(
            out.document(self.settings.public_base_url), ensure_ascii=False, separators=(",", ":")
        ).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "cchc-monitor-tasks",
            "X-CCHC-Event": out.kind,
            "X-CCHC-Delivery": str(out.delivery_id),
            "X-CCHC-Timestamp": ts,
        }
        if out.secret:
            headers["X-CCHC-Signature"] = dn.webhook_signature(out.secret, ts, body)
        try:
            res = await self.client.post(out.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if res.status_code >= 300:
            raise DeliveryFailed(f"HTTP {res.status_code}")

    async def close(self) -> None:
        await self.client.aclose()


class EmailChannel:
    name = dn.Channel.email.value

    def __init__(self, settings: TasksSettings) -> None:
        self.settings = settings

    async def send(self, out: Outgoing) -> None:
        s = self.settings
        if not s.smtp_host:
            raise DeliveryFailed("no SMTP server configured (TASKS_SMTP_HOST)")
        msg = EmailMessage()
        msg["From"] = s.smtp_sender
        msg["To"] = out.address
        msg["Subject"] = out.title
        msg["Date"] = format_datetime(out.created_at)
        # one id per delivery: a re-sent message is recognisably the same one
        msg["Message-ID"] = make_msgid(idstring=f"cchc-{out.delivery_id}", domain="cchc-monitor")
        msg["X-CCHC-Delivery"] = str(out.delivery_id)
        doc = out.document(s.public_base_url)
        link = f"\n\n{doc['url']}" if doc["url"] else ""
        msg.set_content(f"{out.body}{link}\n")
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                start_tls=s.smtp_starttls,
                timeout=s.delivery_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def vapid_key(private_key: str) -> Any:
    """The VAPID key from TASKS_VAPID_PRIVATE_KEY: a PEM, or base64url DER / raw."""
    from py_vapid import Vapid02

    if "BEGIN" in private_key:
        return Vapid02.from_pem(private_key.encode())
    return Vapid02.from_string(private_key)


def vapid_public_key(private_key: str) -> str:
    """The applicationServerKey the browser subscribes with (base64url, uncompressed)."""
    from cryptography.hazmat.primitives import serialization
    from py_vapid import b64urlencode

    raw = vapid_key(private_key).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(raw))


class WebPushChannel:
    """Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291),
    by pywebpush, to the subscription's push service endpoint."""

    name = dn.Channel.webpush.value

    def __init__(self, settings: TasksSettings) -> None:
        self.settings = settings

    async def send(self, out: Outgoing) -> None:
        from pywebpush import WebPushException, webpush_async

        if not self.settings.vapid_private_key:
            raise DeliveryFailed("no VAPID key configured (TASKS_VAPID_PRIVATE_KEY)")
        payload = json.dumps(out.document(self.settings.public_base_url), ensure_ascii=False)
        try:
            await webpush_async(
                subscription_info={"endpoint": out.address, "keys": out.keys},
                data=payload,
                vapid_private_key=vapid_key(self.settings.vapid_private_key),
                vapid_claims={"sub": self.settings.vapid_subject},
                timeout=self.settings.delivery_timeout_s,
                ttl=24 * 3600,
            )
        except WebPushException as exc:
            raise DeliveryFailed(f"push service refused: {exc}") from exc
        except Exception as exc:  # aiohttp's connection errors have no common base we import
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def default_channels(settings: TasksSettings) -> dict[str, Channel]:
    return {
        dn.Channel.webhook.value: WebhookChannel(settings),
        dn.Channel.email.value: EmailChannel(settings),
        dn.Channel.webpush.value: WebPushChannel(settings),
    }
