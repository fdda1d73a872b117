"""Connectors to one-stop systems. Adding a vendor = one module (a `Connector` declaring its
`Capabilities`, and its wire format registered in `connectors.wire` when it has its own) + one
`register()` line here."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from services.ingest.connectors.base import (
    ApiKeyAuth,
    BasicAuth,
    Capabilities,
    Connector,
    ConnectorConfig,
    Feed,
    OAuth2ClientCredentials,
    Page,
    SourceError,
)
from services.ingest.connectors.igate import IGateConnector
from services.ingest.connectors.national import NationalJsonConnector
from services.ingest.connectors.opencps import OpenCPSConnector
from services.ingest.connectors.push import NationalPushConnector
from services.ingest.connectors.wire import WIRE_FORMATS, PageContext, WireFormat

ConnectorFactory = Callable[[ConnectorConfig], Connector]
_REGISTRY: dict[str, ConnectorFactory] = {}
_CAPABILITIES: dict[str, Capabilities] = {}


def register(kind: str, factory: ConnectorFactory, capabilities: Capabilities) -> None:
    """Register a connector kind with what it declares (known before any source exists, so
    the API can list kinds and the scheduler can tell pulled sources from pushing ones)."""
    if kind in _REGISTRY:
        raise ValueError(f"connector kind {kind!r} already registered")
    if capabilities.wire not in WIRE_FORMATS:
        raise ValueError(f"connector kind {kind!r}: unknown wire format {capabilities.wire!r}")
    _REGISTRY[kind] = factory
    _CAPABILITIES[kind] = capabilities


def capabilities(kind: str) -> Capabilities:
    return _CAPABILITIES[kind]


def push_kinds() -> list[str]:
    """Kinds whose sources push to us: never pulled by the scheduler."""
    return sorted(k for k, c in _CAPABILITIES.items() if not c.pull)


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def create_connector(config: ConnectorConfig) -> Connector:
    try:
        factory = _REGISTRY[config.kind]
    except KeyError:
        raise ValueError(f"unknown connector kind {config.kind!r}; known: {kinds()}") from None
    try:
        return factory(config)
    except (httpx.InvalidURL, ValueError) as exc:  # a base URL no HTTP client can use
        raise SourceError("client", f"invalid source URL: {type(exc).__name__}") from exc


register(NationalJsonConnector.kind, NationalJsonConnector, NationalJsonConnector.capabilities)
register(IGateConnector.kind, IGateConnector, IGateConnector.capabilities)
register(OpenCPSConnector.kind, OpenCPSConnector, OpenCPSConnector.capabilities)
register(NationalPushConnector.kind, NationalPushConnector, NationalPushConnector.capabilities)

__all__ = [
    "WIRE_FORMATS",
    "ApiKeyAuth",
    "BasicAuth",
    "Capabilities",
    "Connector",
    "ConnectorConfig",
    "Feed",
    "OAuth2ClientCredentials",
    "Page",
    "PageContext",
    "SourceError",
    "WireFormat",
    "capabilities",
    "create_connector",
    "kinds",
    "push_kinds",
    "register",
]
