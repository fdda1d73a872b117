"""Connectors to one-stop systems. Adding a vendor = one module (a `Connector` declaring its
`Capabilities`, and its wire format registered in `connectors.wire` when it has its own) + one
`register()` line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    PageConnectorAdapter,
    SourceError,
)
from services.ingest.connectors.igate import IGateConnector
from services.ingest.connectors.national import NationalJsonConnector
from services.ingest.connectors.opencps import OpenCPSConnector
from services.ingest.connectors.portal766 import Portal766Connector
from services.ingest.connectors.push import NationalPushConnector
from services.ingest.connectors.wire import WIRE_FORMATS, PageContext, WireFormat

ConnectorFactory = Callable[[ConnectorConfig], Connector]
_REGISTRY: dict[str, ConnectorFactory] = {}
_CAPABILITIES: dict[str, Capabilities] = {}


def register(
    kind: str, factory: Callable[[ConnectorConfig], Any], capabilities: Capabilities | None = None
) -> None:
    """Register a connector kind with what it declares (known before any source exists, so
    the API can list kinds and the scheduler can tell pulled sources from pushing ones).

    Without `capabilities` the kind is a *page* connector of the earlier seam (`fetch_page`
    returning national-field records): it is adapted to the national wire format, so such a
    module keeps working unchanged (its records take the reference decode, not the typed
    fast path's body hand-off)."""
    if capabilities is None:
        page_factory = factory
        capabilities = PageConnectorAdapter.capabilities

        def factory(config: ConnectorConfig) -> Connector:
            return PageConnectorAdapter(page_factory(config))

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
register(Portal766Connector.kind, Portal766Connector)

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
