"""Connectors to one-stop systems. Adding a vendor = one module + one `register()` line here."""

from __future__ import annotations

from collections.abc import Callable

from services.ingest.connectors.base import (
    ApiKeyAuth,
    Connector,
    ConnectorConfig,
    Feed,
    OAuth2ClientCredentials,
    Page,
    SourceError,
)
from services.ingest.connectors.national import NationalJsonConnector
from services.ingest.connectors.portal766 import Portal766Connector

ConnectorFactory = Callable[[ConnectorConfig], Connector]
_REGISTRY: dict[str, ConnectorFactory] = {}


def register(kind: str, factory: ConnectorFactory) -> None:
    if kind in _REGISTRY:
        raise ValueError(f"connector kind {kind!r} already registered")
    _REGISTRY[kind] = factory


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def create_connector(config: ConnectorConfig) -> Connector:
    try:
        factory = _REGISTRY[config.kind]
    except KeyError:
        raise ValueError(f"unknown connector kind {config.kind!r}; known: {kinds()}") from None
    return factory(config)


register(NationalJsonConnector.kind, NationalJsonConnector)
register(Portal766Connector.kind, Portal766Connector)

__all__ = [
    "ApiKeyAuth",
    "Connector",
    "ConnectorConfig",
    "Feed",
    "OAuth2ClientCredentials",
    "Page",
    "SourceError",
    "create_connector",
    "kinds",
    "register",
]
